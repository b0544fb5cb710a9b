"""The landmark-structured forward model: servos -> landmarks -> MediaPipe's own blendshape network. Off the
recorded commands it predicts what the twin shows better than a direct fit on the same pairs, and a direct
student distilled from it keeps most of that."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facetwin.agents.training.checkpoint import load_run_policy
from facetwin.agents.forward.expression_objective import Coupling, ExpressionSettings
from facetwin.agents.forward.direct import ForwardSettings, fit_forward
from facetwin.agents.forward.landmark import (TEACHER_WEIGHTS_FILE, LandmarkSettings, broad_commands, distil,
                                              fit_landmark_forward, fit_structured_forward, load_teacher, save_teacher)
from facetwin.agents.training.minibatch import FitSettings
from facetwin.agents.forward.refine import Refiner
from facetwin.agents.training.config import TrainConfig
from facetwin.agents.training.train import train_from_arrays
from facetwin.blendshape_torch import TorchBlendshapes
from facetwin.app.cli import main
from facetwin.dataset import DatasetWriter, EpisodeFrames
from facetwin.expression import ACTIVE_BLENDSHAPES

pytestmark = pytest.mark.usefixtures("torch_one_thread")
SETTINGS = LandmarkSettings(hidden=(128, 128), epochs=60, batch_size=64, distil_samples=3000, distil_hidden=(256, 256),
                            distil_epochs=80, distil_batch_size=128)


def _rollouts(twin, commands):
    expressions, landmarks = [], []
    for c in commands:
        twin.reset(readout=False)
        e = twin.apply(c).expression
        expressions.append(np.concatenate([e.blendshapes, e.head]))
        landmarks.append(e.landmarks)
    return np.asarray(expressions, np.float32), np.asarray(landmarks, np.float32)


@pytest.fixture(scope="module")
def pairs(twin):
    """Recorded commands stay within +-0.4; the test commands reach +-0.8, as a policy's answers for people do."""
    rng = np.random.default_rng(0)
    couple = Coupling(twin.spec)
    narrow = couple(torch.as_tensor(rng.uniform(-0.4, 0.4, (1200, twin.spec.n)), dtype=torch.float32)).numpy()
    wide = couple(torch.as_tensor(rng.uniform(-0.8, 0.8, (150, twin.spec.n)), dtype=torch.float32)).numpy()
    return (narrow, *_rollouts(twin, narrow)), (wide, *_rollouts(twin, wide))


def _blendshape_error(model, command, expression):
    with torch.no_grad():
        pred = model(torch.as_tensor(command)).numpy()
    act = np.array(ACTIVE_BLENDSHAPES)
    return float(np.abs(pred[:, act] - expression[:, act]).mean())


@pytest.fixture(scope="module")
def teacher(pairs):
    (c, e, lm), _ = pairs
    return fit_landmark_forward(c, lm, e[:, 52:], TorchBlendshapes.from_bundle(), SETTINGS)


@pytest.fixture(scope="module")
def direct(pairs):
    """The unstructured alternative: an MLP from commands straight to the 55 values, on the same pairs."""
    (c, e, _), _ = pairs
    return fit_forward(c, e, c[:0], e[:0], ForwardSettings(hidden=(128, 128), epochs=60, batch_size=64))[0]


def test_off_the_recorded_commands_the_structured_model_beats_a_direct_fit(pairs, teacher, direct):
    _, (c_wide, e_wide, _) = pairs
    structured, plain = _blendshape_error(teacher, c_wide, e_wide), _blendshape_error(direct, c_wide, e_wide)
    assert structured < 0.8 * plain, (structured, plain)


def test_the_teacher_predicts_landmarks_to_about_a_pixel_on_held_out_recorded_commands(twin, teacher):
    rng = np.random.default_rng(7)
    c = Coupling(twin.spec)(torch.as_tensor(rng.uniform(-0.4, 0.4, (40, twin.spec.n)), dtype=torch.float32)).numpy()
    _, landmarks = _rollouts(twin, c)
    from facetwin.expression import BLENDSHAPE_INPUT_LANDMARKS

    with torch.no_grad():
        points, _ = teacher.landmarks_and_head(torch.as_tensor(c))
    err = np.abs(points.numpy() - landmarks[:, list(BLENDSHAPE_INPUT_LANDMARKS), :2]).mean()
    assert err < 1.5  # pixels, in the 512 x 512 read-out frame


def test_the_distilled_student_keeps_the_teachers_lead_off_the_data(pairs, teacher, direct, twin):
    """The student learns from the teacher's answers on broad commands, so off the recorded commands it
    stays closer to the twin than the direct fit on the recorded pairs, at the direct model's cost."""
    (c, _, _), (c_wide, e_wide, _) = pairs
    result = distil(teacher, c, Coupling(twin.spec), SETTINGS)
    student = _blendshape_error(result.student, c_wide, e_wide)
    assert student < _blendshape_error(direct, c_wide, e_wide), (student, result.teacher_gap)


def test_broad_commands_reach_past_the_recorded_ones_and_stay_in_range():
    recorded = np.random.default_rng(0).uniform(-0.3, 0.3, (500, 25)).astype(np.float32)
    broad = broad_commands(recorded, 4000, np.random.default_rng(1))
    assert broad.shape == (4000, 25) and broad.dtype == np.float32
    assert broad.min() >= -1.0 and broad.max() <= 1.0
    assert (np.abs(broad) > 0.6).mean() > 0.15  # a good share lies where nothing was recorded


def test_structured_fit_reports_teacher_and_student(pairs, twin):
    (c, e, lm), (c_wide, e_wide, _) = pairs
    settings = LandmarkSettings(hidden=(64,), epochs=3, batch_size=128, distil_samples=800, distil_hidden=(64,),
                                distil_epochs=2)
    student, score, teacher = fit_structured_forward(c, lm, e, c_wide, e_wide, Coupling(twin.spec),
                                                     TorchBlendshapes.from_bundle(), settings)
    assert score.method == "landmarks" and score.n_val == len(c_wide)
    assert score.teacher_blendshape_mae is not None and score.distil_gap is not None
    assert student(torch.as_tensor(c[:3])).shape == teacher(torch.as_tensor(c[:3])).shape == (3, 55)


def test_a_saved_teacher_loads_back_and_refining_through_it_brings_the_twin_closer(pairs, teacher, twin, tmp_path):
    """The teacher is kept beside a run; gradient steps through it from the neutral face move the twin's
    own expression towards targets the recorded commands never reached."""
    _, (c_wide, e_wide, _) = pairs
    save_teacher(tmp_path, teacher)
    loaded = load_teacher(tmp_path)
    probe = torch.as_tensor(c_wide[:5])
    torch.testing.assert_close(loaded(probe), teacher(probe))
    targets = e_wide[:8]
    start = np.zeros((len(targets), twin.spec.n), np.float32)
    refined = Refiner(loaded, Coupling(twin.spec), steps=40)(targets, start)
    assert np.abs(refined).max() <= 1.0

    def twin_error(commands):
        reached, _ = _rollouts(twin, commands)
        act = np.array(ACTIVE_BLENDSHAPES)
        return float(np.abs(reached[:, act] - targets[:, act]).mean())

    assert twin_error(refined) < 0.7 * twin_error(start)


def test_an_expression_run_on_landmarked_data_keeps_its_teacher_for_refinement(pairs, tmp_path):
    (c, e, lm), _ = pairs
    tiny = LandmarkSettings(hidden=(64,), epochs=3, batch_size=128, distil_samples=800, distil_hidden=(64,), distil_epochs=2)
    config = TrainConfig(model="mlp", objective="expression", forward_model="landmark", landmark=tiny,
                         fit=FitSettings(epochs=2, progress=False), expression=ExpressionSettings(epochs=1, progress=False))
    result = train_from_arrays(e, c, config, landmarks=lm, out_dir=tmp_path / "run")
    assert (result.run_dir / TEACHER_WEIGHTS_FILE).is_file()
    policy = load_run_policy(result.run_dir, refine_steps=2, refine_through="teacher")
    commands = policy(e[:3])
    assert commands.shape == (3, 25) and np.abs(commands).max() <= 1.0
    # another policy trained on the run's forward model (`--forward`) keeps the same teacher
    data = tmp_path / "data"
    with DatasetWriter(data, fps=30, landmarks=False) as writer:
        writer.add_episode(EpisodeFrames(action=c[:300], state=c[:300], expression=e[:300]))
        writer.add_episode(EpisodeFrames(action=c[300:600], state=c[300:600], expression=e[300:600]))
    assert main(["train", "--data", str(data), "--model", "mlp", "--epochs", "1", "--expression-epochs", "1",
                 "--no-progress", "--forward", str(result.run_dir), "--out", str(tmp_path / "reuse")]) == 0
    reused = load_teacher(tmp_path / "reuse")
    torch.testing.assert_close(reused(torch.as_tensor(c[:4])), load_teacher(result.run_dir)(torch.as_tensor(c[:4])))


def test_the_direct_forward_model_can_be_chosen_on_landmarked_data(pairs, tmp_path):
    (c, e, lm), _ = pairs
    config = TrainConfig(model="mlp", objective="expression", forward_model="direct",
                         fit=FitSettings(epochs=2, progress=False), expression=ExpressionSettings(epochs=1, progress=False))
    result = train_from_arrays(e, c, config, landmarks=lm, out_dir=tmp_path / "run")
    assert result.expression.forward_score.method == "direct" and result.expression.teacher is None
    assert not (result.run_dir / TEACHER_WEIGHTS_FILE).exists()
    with pytest.raises(ValueError, match="unknown forward model 'teacher'; choose one of direct, landmark"):
        TrainConfig(forward_model="teacher")
