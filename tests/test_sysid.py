"""System identification recovers a built robot's mechanics from (servo positions, expression) rows."""

import numpy as np
import pytest

from facetwin.motion import make_strategy
from facetwin.sim.perturb import NOMINAL, Perturbation, apply_perturbation
from facetwin.sim.sysid import SysidConfig, SysidPairs, expression_error, identify, replay
from facetwin.sim.twin import FaceTwin


@pytest.fixture(scope="module")
def own_twin():
    t = FaceTwin()
    yield t
    t.close()


def _recording(twin, truth: Perturbation, episodes=4, frames=20, fps=10) -> SysidPairs:
    expert = make_strategy("expert", twin.spec, 0)
    positions = np.concatenate([expert.episode(e, frames, fps) for e in range(episodes)]).astype(np.float32)
    ep = np.repeat(np.arange(episodes), frames)
    fr = np.tile(np.arange(frames), episodes)
    blank = SysidPairs(positions, np.zeros((len(ep), 55), np.float32), ep, fr, fps)
    apply_perturbation(twin, truth)
    expression = replay(twin, blank)
    apply_perturbation(twin, NOMINAL)
    return SysidPairs(positions, expression, ep, fr, fps)


def test_replay_of_the_true_robot_has_no_error(own_twin):
    truth = Perturbation(cable_stiffness_scale=0.7)
    pairs = _recording(own_twin, truth, episodes=2, frames=8)
    apply_perturbation(own_twin, truth)
    assert expression_error(replay(own_twin, pairs), pairs.expression) < 1e-6
    apply_perturbation(own_twin, NOMINAL)
    assert expression_error(replay(own_twin, pairs), pairs.expression) > 1e-3


def test_sysid_recovers_a_servo_offset_and_the_stiffness_balance(own_twin):
    spec = own_twin.spec
    offset = np.zeros(spec.n)
    offset[spec.names.index("jaw_open")] = 4.0
    truth = Perturbation(cable_stiffness_scale=0.6, servo_offset_deg=tuple(offset))
    pairs = _recording(own_twin, truth)
    result = identify(own_twin, pairs, SysidConfig(budget=60, fit_servos=("jaw_open",), seed=0))
    fitted = result.parameters
    assert abs(fitted.servo_offset_deg[spec.names.index("jaw_open")] - 4.0) < 1.0
    # the skin moves by r*theta * k_cable / (k_cable + k_skin): the ratio is what the face shows
    ratio = fitted.cable_stiffness_scale / fitted.skin_stiffness_scale
    assert abs(ratio - 0.6) < 0.15
    assert result.val_after < result.val_before / 3
    assert result.train_after < result.train_before


def test_sysid_command_writes_parameters_that_apply_to_a_twin(own_twin, tmp_path, capsys):
    from facetwin.app.cli import main
    from facetwin.dataset import DatasetWriter, EpisodeFrames

    truth = Perturbation(skin_stiffness_scale=1.5)
    pairs = _recording(own_twin, truth, episodes=3, frames=10)
    data = tmp_path / "real"
    with DatasetWriter(data, own_twin.spec, fps=10, landmarks=False) as w:
        for ep in range(3):
            rows = pairs.episode_index == ep
            w.add_episode(EpisodeFrames(action=pairs.positions[rows], state=pairs.positions[rows],
                                        expression=pairs.expression[rows]))
    out = tmp_path / "params.json"
    assert main(["sysid", "--data", str(data), "--budget", "10", "--out", str(out), "--val-fraction", "0.34"]) == 0
    assert "held-out" in capsys.readouterr().out
    fitted = Perturbation.load(out)
    nominal_skin = own_twin.model.jnt_stiffness.max()  # the skin springs are the stiffest joints
    apply_perturbation(own_twin, fitted)
    assert own_twin.model.jnt_stiffness.max() == pytest.approx(nominal_skin * fitted.skin_stiffness_scale)
    apply_perturbation(own_twin, NOMINAL)


def test_the_camera_readout_reads_a_replayed_recording_as_a_render_read_by_the_landmarker(own_twin):
    from facetwin.perception import FacePerceiver
    from facetwin.sim.sysid import CameraRead

    recording = _recording(own_twin, NOMINAL, episodes=1, frames=6)
    every_third = (recording.frame_index % 3) == 0
    camera = CameraRead(render_size=256)
    read = replay(own_twin, recording, camera, every_third)
    assert np.isnan(read[~every_third]).all()  # rows left unread stay unread
    with FacePerceiver(mode="image") as perceiver:
        reference = perceiver.perceive(own_twin.render(256)).vector
    # the twin as the replay left it (its last frame): the shared readout reads what the render shows
    assert np.abs(camera(own_twin) - reference)[:52].mean() < 0.0076  # the landmarker's own jitter
    assert np.isfinite(read[every_third]).all()
