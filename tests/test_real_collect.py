"""The perturbed twin ("a built robot") and `facetwin real collect` through the emulated bus."""

import json

import numpy as np
import pytest

from facetwin.app.cli import main
from facetwin.dataset import check, load_arrays
from facetwin.expression import BLENDSHAPE_NAMES
from facetwin.app.live.real_collect import CAPTURE_FRAME, COLLECTION_PATH
from facetwin.motion import make_strategy
from facetwin.motion.strategy import strategy_settings
from facetwin.motion.poses import named_pose
from facetwin.sim.perturb import NOMINAL, Perturbation, apply_perturbation
from facetwin.sim.twin import FaceTwin

JAW_OPEN = BLENDSHAPE_NAMES.index("jawOpen")


@pytest.fixture(scope="module")
def own_twin():
    t = FaceTwin()  # not the session twin: these tests change its model
    yield t
    t.close()


def _smile(twin, p):
    apply_perturbation(twin, p)
    twin.reset()
    return twin.apply(named_pose("smile", twin.spec)).expression.vector


def test_random_perturbation_is_reproducible_by_seed(own_twin):
    a, b, c = (Perturbation.for_twin(own_twin, s) for s in (3, 3, 4))
    assert a == b and a != c
    assert len(a.servo_offset_deg) == own_twin.spec.n and len(a.guide_offset_mm) == len(own_twin.geometry.cables)
    assert np.array_equal(_smile(own_twin, a), _smile(own_twin, b))
    assert Perturbation.from_json(json.loads(json.dumps(a.to_json()))) == a


def test_perturbation_changes_the_face_and_nominal_restores_it(own_twin):
    nominal = _smile(own_twin, NOMINAL)
    perturbed = _smile(own_twin, Perturbation.for_twin(own_twin, 3))
    assert np.abs(perturbed[1:52] - nominal[1:52]).mean() > 0.01  # a visibly different smile
    offset = np.zeros(own_twin.spec.n)
    offset[own_twin.spec.names.index("jaw_open")] = 5.0
    apply_perturbation(own_twin, Perturbation(servo_offset_deg=tuple(offset)))
    own_twin.reset()
    assert own_twin.apply(np.zeros(own_twin.spec.n)).expression.blendshapes[JAW_OPEN] > nominal[JAW_OPEN] + 0.01  # at rest
    # applying twice does not compound, and NOMINAL gives back the CAD twin exactly
    again = _smile(own_twin, Perturbation.for_twin(own_twin, 3))
    assert np.array_equal(again, perturbed)
    assert np.array_equal(_smile(own_twin, NOMINAL), nominal)


def test_real_collect_virtual_writes_a_checked_dataset_and_resumes(tmp_path, capsys):
    out = tmp_path / "real"
    args = ["real", "collect", "--port", "virtual", "--episodes", "2", "--frames-per-episode", "10", "--out", str(out),
            "--render-size", "256", "--perturb-seed", "1"]
    assert main(args) == 0
    report = check(out)
    assert report.ok, report.problems
    data = load_arrays(out)
    assert data.n_episodes == 2 and len(data) == 20 - int(capsys.readouterr().out.split(" dropped")[0].split()[-1])
    # rows are the expert's commands; the state is what the bus measured, close to them once tracked
    expert = make_strategy("expert", None, 0)
    frames = data.extra[CAPTURE_FRAME].reshape(-1)
    for ep in (0, 1):
        rows = data.episode_index == ep
        np.testing.assert_allclose(data.action[rows], expert.episode(ep, 10, 10)[frames[rows]], atol=1e-6)
    assert np.abs(data.state - data.action).mean() < 0.1
    assert data.expression[:, 1:52].std(0).max() > 0.01  # the face moved, and perception saw it
    record = json.loads((out / COLLECTION_PATH).read_text())
    assert Perturbation.from_json(record["perturbation"]).seed == 1
    # an interrupted collection continues after its last whole episode, keeping what is there
    before = data.action.copy()
    assert main(args[:5] + ["3"] + args[6:] + ["--resume"]) == 0
    again = load_arrays(out)
    assert again.n_episodes == 3 and check(out).ok
    np.testing.assert_array_equal(again.action[again.episode_index < 2], before)
    # episodes the expert played with other settings (an earlier version's defaults) are not continued
    record = json.loads((out / COLLECTION_PATH).read_text())
    assert record["motion"] == strategy_settings(expert)
    record["motion"]["full_prob"] = 0.0
    (out / COLLECTION_PATH).write_text(json.dumps(record))
    assert main(args[:5] + ["4"] + args[6:] + ["--resume"]) == 2
    assert "mix two motion distributions" in capsys.readouterr().err
