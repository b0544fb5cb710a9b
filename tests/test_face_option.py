"""`--face NAME` on every command that works on a robot face: what it makes is for that face, what it reads
(a dataset, a policy run) brings its own face, and a mismatch is one error naming both faces.

The commands about people only (perceive, coverage) have no robot face to choose, and two are about every
face at once: `spec list` lists them, `dataset info` prints the face a dataset records.
"""

import argparse
import json

import numpy as np
import pytest

from facetwin.agents.training.config import TrainConfig
from facetwin.agents.training.minibatch import FitSettings
from facetwin.agents.training.train import train_from_arrays
from facetwin.app.cli import build_parser, main
from facetwin.app.commands.bench import FACE_GROUPS
from facetwin.dataset import DatasetWriter, EpisodeFrames
from facetwin.spec import load_face

FACES = ("rena", "eva")
NO_FACE_TO_CHOOSE = {"perceive", "coverage", "spec list", "dataset info"}

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every leaf command (`real pose`, `spec check`, ...) by its full name."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {prefix.strip(): parser}
    out = {}
    for name, sub in subs[0].choices.items():
        out.update(_commands(sub, f"{prefix}{name} "))
    return out


def test_every_command_about_a_robot_face_takes_face():
    commands = _commands(build_parser())
    assert {"rl", "finetune", "bench", "export", "view", "train", "eval", "collect"} <= set(commands)
    lacking = [name for name, p in commands.items()
               if name not in NO_FACE_TO_CHOOSE and "--face" not in p._option_string_actions]
    assert not lacking, f"commands without --face: {lacking}"


def _rows(rng, spec, n):
    """Synthetic (expression, command) rows for `spec`: blendshapes in [0, 1], head in degrees."""
    e = np.concatenate([rng.uniform(0, 1, (n, 52)), rng.normal(0, 10, (n, 3))], 1).astype(np.float32)
    return e, np.tanh(rng.normal(0, 0.3, (n, spec.n))).astype(np.float32)


def _dataset(root, face, episodes=6, frames=10):
    spec, rng = load_face(face), np.random.default_rng(0)
    with DatasetWriter(root, spec, fps=10, landmarks=False) as writer:
        for _ in range(episodes):
            e, a = _rows(rng, spec, frames)
            writer.add_episode(EpisodeFrames(action=a, state=a, expression=e))
    return root


def _run(root, face, model="mlp"):
    spec = load_face(face)
    e, a = _rows(np.random.default_rng(1), spec, 200)
    hparams = {"hidden": [16], "dropout": 0.0} if model == "mlp" else {}
    train_from_arrays(e, a, TrainConfig(model=model, hparams=hparams, fit=FitSettings(epochs=2, progress=False),
                                        val_fraction=0.1), spec=spec, out_dir=root)
    return root


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A (synthetic) dataset and an mlp run for each face."""
    root = tmp_path_factory.mktemp("faces")
    return {face: {"data": _dataset(root / f"data_{face}", face), "run": _run(root / f"run_{face}", face)}
            for face in FACES}


@pytest.mark.parametrize("face", FACES)
def test_finetune_works_on_the_face_its_policy_was_trained_for(face, made, tmp_path):
    out = tmp_path / "tuned"
    assert main(["finetune", "--policy", str(made[face]["run"]), "--data", str(made[face]["data"]), "--out", str(out),
                 "--epochs", "1", "--face", face]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["face"] == face and len(config["servo_names"]) == load_face(face).n


def test_finetune_refuses_data_or_a_face_other_than_its_policys(made, tmp_path, capsys):
    out = str(tmp_path / "tuned")
    assert main(["finetune", "--policy", str(made["eva"]["run"]), "--data", str(made["rena"]["data"]),
                 "--out", out]) == 2
    assert "recorded on face 'rena', but policy" in (err := capsys.readouterr().err)
    assert "trained for face 'eva'" in err
    assert main(["finetune", "--policy", str(made["eva"]["run"]), "--data", str(made["eva"]["data"]),
                 "--out", out, "--face", "rena"]) == 2
    assert "trained for face 'eva', not 'rena'" in capsys.readouterr().err


@pytest.mark.parametrize("face", FACES)
def test_rl_without_a_policy_fits_its_base_on_the_chosen_faces_twin(face, tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    assert main(["rl", "--face", face, "--pairs", "30", "--steps", "1", "--eval-episodes", "1",
                 "--out", str(tmp_path)]) == 0
    assert f"twin samples of face {face!r}" in capsys.readouterr().out
    assert json.loads((tmp_path / "results.json").read_text())["face"] == face


def test_rl_refuses_a_policy_for_another_face(made, tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    assert main(["rl", "--policy", str(made["eva"]["run"]), "--face", "rena", "--out", str(tmp_path)]) == 2
    assert "trained for face 'eva', not 'rena'" in capsys.readouterr().err


def test_export_checks_the_face_of_the_run_it_exports(made, tmp_path, capsys):
    pytest.importorskip("onnx")
    run = _run(tmp_path / "linear_eva", "eva", model="linear")
    assert main(["export", str(run), "--onnx", "--face", "rena"]) == 2
    assert "trained for face 'eva', not 'rena'" in capsys.readouterr().err
    assert main(["export", str(run), "--onnx"]) == 0
    assert "for face 'eva' (26 servos" in capsys.readouterr().out
    assert main(["export", "--onnx", "--face", "eva", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "not 'eva'" in capsys.readouterr().err  # the shipped policy is the default face's


def test_view_takes_a_datasets_face_and_refuses_face_on_a_recording(made, tmp_path, capsys):
    recording = tmp_path / "made.rrd"
    recording.write_bytes(b"")
    assert main(["view", str(recording), "--face", "eva"]) == 2
    assert "--face is for datasets" in capsys.readouterr().err
    assert main(["view", str(made["eva"]["data"]), "--face", "rena", "--out", str(tmp_path / "x.rrd")]) == 2
    assert "recorded on face 'eva', not 'rena'" in capsys.readouterr().err


@pytest.mark.parametrize("face", FACES)
def test_bench_runs_the_groups_about_one_face_on_the_chosen_face(face, tmp_path):
    assert main(["bench", "real", "--quick", "--face", face, "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["face"] == face and results["groups"]["real"]["servos"] == load_face(face).n
    assert f"Face: {face}." in (tmp_path / "results.md").read_text()


def test_bench_refuses_face_for_groups_that_time_machinery(tmp_path, capsys):
    assert set(FACE_GROUPS) == {"sim", "range", "real", "eval"}
    assert main(["bench", "real", "collect", "--face", "eva", "--out", str(tmp_path)]) == 2
    assert "collect time(s) machinery on the default face" in capsys.readouterr().err
