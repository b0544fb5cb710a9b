"""Any face: every packaged robot face runs through the whole pipeline unchanged, selected by `--face`.

The default face (rena, 25 servos) and a second one of another layout (eva, 26 actuators: lower lids, one
corrugator for both brows, a 13-servo mouth, no neck roll) are held to the same specification: the spec
loads, the twin compiles, every servo moves the skin, every named pose the face has the mechanism for
reads back through the pixels, a dataset recorded on the face trains a policy that drives its twin, and
its servo bus round-trips through the emulator. Data and models made for one face are refused by the other.
"""

import json

import numpy as np
import pytest

from facetwin.app.bench.twin import POSE_CHECKS
from facetwin.app.cli import main
from facetwin.spec import REGIONS, SpecError, face_names, face_spec_path, load_face

FACES = ("rena", "eva")
LAYOUTS = {  # servos per region, as each robot is built
    "rena": {"eyes": 4, "eyelids": 2, "brows": 4, "mouth": 12, "neck": 3},
    "eva": {"eyes": 4, "eyelids": 4, "brows": 3, "mouth": 13, "neck": 2},
}


def test_the_packaged_faces_are_found_by_name():
    assert set(FACES) <= set(face_names())
    assert face_names()[0] == "rena"  # the default face comes first
    with pytest.raises(SpecError, match="no face named 'bob'.*rena, eva"):
        load_face("bob")


@pytest.mark.parametrize("face", FACES)
def test_a_face_spec_loads_with_its_own_layout(face):
    spec = load_face(face)
    assert spec.face == face
    assert {r: len(spec.region_indices(r)) for r in REGIONS} == LAYOUTS[face]
    assert sorted(s.bus_id for s in spec.servos) == list(range(1, spec.n + 1))
    by_path = load_face(str(face_spec_path(face)))  # a lab's own face is selected by its file's path
    assert by_path.fingerprint == spec.fingerprint and by_path.names == spec.names


def test_the_two_faces_differ_in_more_than_their_servo_count():
    rena, eva = load_face("rena"), load_face("eva")
    assert (rena.n, eva.n) == (25, 26)
    assert not {"lower_lid_right", "brow_furrow", "cheek_left", "lip_pucker"} & set(rena.names)
    assert "neck_roll" in rena.names and "neck_roll" not in eva.names


@pytest.fixture(scope="module")
def spec_checks():
    """`facetwin spec check` of each face, run once (app.spec_check)."""
    from facetwin.app.spec_check import check_face

    return {face: check_face(load_face(face)) for face in FACES}


@pytest.mark.parametrize("face", FACES)
def test_spec_check_finds_each_face_built_moving_and_seen(face, spec_checks):
    """Compiles, every servo reaches its goal and moves the skin, one face seen in every named pose."""
    report = spec_checks[face]
    assert all(f.ok for f in report.findings if f.check != "pixels"), "\n".join(report.lines())
    assert len(report.faces_detected) == 18 and set(report.faces_detected.values()) == {1}
    assert len(report.pixel_rises) == 12  # both faces have every mechanism the pixel checks need


PIXEL_CHECKS = [f"{pose}.{key}" for pose, key, _ in POSE_CHECKS]


@pytest.mark.parametrize("face, check", [(face, check) for face in FACES for check in PIXEL_CHECKS])
def test_named_poses_read_through_the_pixels_at_the_first_faces_thresholds(face, check, spec_checks):
    from facetwin.app.spec_check import RISE_SLACK

    rise = spec_checks[face].pixel_rises[check]
    assert rise["pixel_rise"] >= rise["least"] - RISE_SLACK * max(1.0, rise["least"]), rise


def test_a_lab_face_given_by_path_is_checked_and_a_broken_one_named(tmp_path, capsys):
    text = face_spec_path("eva").read_text()
    good = tmp_path / "mine.yaml"
    good.write_text(text.replace("name: eva26", "name: mine26"))
    assert main(["spec", "check", "--face", str(good), "--no-pixels"]) == 0
    assert "sound" in capsys.readouterr().out
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("smile: {corner_right: 1.0", "smile: {corner_rigth: 1.0"))
    assert main(["spec", "check", "--face", str(broken)]) == 2
    assert "primitive smile: drives unknown servo(s) corner_rigth" in capsys.readouterr().err


def test_a_face_without_a_mechanism_leaves_its_primitives_out():
    from facetwin.motion.expert import ExpertStrategy
    from facetwin.motion.primitives import available, primitive

    eva = load_face("eva")
    assert "head_tilt" not in {p.name for p in available(eva)}
    with pytest.raises(KeyError, match="face 'eva' has no mechanism for motion primitive 'head_tilt'"):
        primitive("head_tilt").command(1.0, eva)
    episode = ExpertStrategy(eva, seed=3).episode(0, 300, 30.0)
    assert episode.shape == (300, 26)
    assert np.abs(episode).max() <= 1.0 and not any(eva.coupling_violations(c) for c in episode)


@pytest.mark.parametrize("face", FACES)
def test_collect_train_eval_and_replay_run_unchanged_for_each_face(face, tmp_path, faces_dir, capsys):
    data, run, report = tmp_path / "data", tmp_path / "run", tmp_path / "eval.json"
    assert main(["collect", "--face", face, "--episodes", "2", "--frames-per-episode", "20", "--out", str(data),
                 "--no-progress"]) == 0
    info = json.loads((data / "meta" / "info.json").read_text())
    assert info["facetwin"]["face"] == face
    assert len(info["features"]["action"]["names"]) == load_face(face).n
    assert main(["dataset", "check", str(data)]) == 0
    # the face comes from the dataset; kan-attn reads the face's regions for its servo queries
    assert main(["train", "--data", str(data), "--model", "kan-attn", "--objective", "supervised", "--epochs", "2",
                 "--out", str(run), "--no-progress"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["face"] == face and len(config["servo_names"]) == load_face(face).n
    assert main(["eval", "--policy", str(run), "--faces", str(faces_dir / "images"), "--max-faces", "2",
                 "--oracle-budget", "0", "--out", str(report)]) == 0
    assert json.loads(report.read_text())["n_faces"] == 2
    assert main(["real", "play", str(data), "--port", "virtual", "--episode", "0"]) == 0
    assert "played 20 frames" in capsys.readouterr().out


def test_a_dataset_or_a_run_for_one_face_is_refused_by_the_other(tmp_path, faces_dir, capsys):
    from facetwin.agents.training.checkpoint import SpecMismatchError, load_run_policy

    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["collect", "--face", "eva", "--episodes", "2", "--frames-per-episode", "10", "--readout", "fast",
                 "--out", str(data), "--no-progress"]) == 0
    assert main(["train", "--data", str(data), "--face", "rena", "--model", "linear", "--out", str(tmp_path / "x")]) == 2
    assert "dataset" in (err := capsys.readouterr().err) and "recorded on face 'eva', not 'rena'" in err
    assert main(["train", "--data", str(data), "--model", "linear", "--out", str(run), "--no-progress"]) == 0
    assert main(["eval", "--policy", str(run), "--face", "rena", "--faces", str(faces_dir / "images"),
                 "--out", str(tmp_path / "e.json")]) == 2
    assert "trained for face 'eva', not 'rena'" in capsys.readouterr().err
    with pytest.raises(SpecMismatchError, match="trained for face 'eva'.*this face is 'rena'.*--face eva"):
        load_run_policy(run, load_face("rena"))
    assert main(["collect", "--face", "rena", "--episodes", "3", "--frames-per-episode", "10", "--out", str(data),
                 "--resume", "--no-progress"]) == 2
    assert "recorded on face 'eva', not 'rena'" in capsys.readouterr().err


@pytest.mark.parametrize("face", FACES)
def test_the_servo_bus_round_trips_every_servo_of_each_face(face):
    from facetwin.motion.poses import named_pose
    from facetwin.real.calibration import Calibration
    from facetwin.real.emulator import ServoEmulator
    from facetwin.real.robot import FaceRobot

    spec = load_face(face)
    calibration = Calibration.from_spec(spec)
    assert len(calibration.ids) == spec.n
    with ServoEmulator(calibration=calibration) as emu, FaceRobot(emu.port, calibration) as robot:
        assert sorted(emu.positions()) == list(range(1, spec.n + 1))
        smile = named_pose("smile", spec)
        reached = robot.move_to(smile)
        np.testing.assert_allclose(reached, smile, atol=0.02)
        assert np.abs(robot.neutral()).max() <= 0.02


def test_render_names_the_face_it_draws(tmp_path, capsys):
    out = tmp_path / "eva.png"
    assert main(["render", "--face", "eva", "--pose", "smile", "--size", "128", "--out", str(out)]) == 0
    assert out.is_file()
    assert main(["render", "--face", "bob", "--pose", "smile", "--out", str(out)]) == 2
    assert "no face named 'bob'" in capsys.readouterr().err
