"""`facetwin train` and `facetwin export`: a recorded dataset in, a checked ONNX policy out that computes the same commands."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

from facetwin.agents.training.checkpoint import load_run_policy
from facetwin.agents.forward.synthetic_face import SyntheticFace
from facetwin.app.cli import main
from facetwin.dataset import DatasetWriter, EpisodeFrames
from facetwin.spec import default_spec


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "synthetic"
    face = SyntheticFace()
    with DatasetWriter(root, fps=30, landmarks=False) as writer:
        for ep in range(6):
            expression, commands = face.sample(60, seed=ep)
            writer.add_episode(EpisodeFrames(action=commands, state=commands, expression=expression))
    return root


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "kan-attn"
    # a made-up face's data: there is no twin of it to query in aggregation rounds
    code = main(["train", "--data", str(dataset), "--model", "kan-attn", "--out", str(out), "--epochs", "3",
                 "--val-fraction", "0.34", "--seed", "1", "--no-progress", "--aggregate-rounds", "0"])
    assert code == 0
    return out


def test_train_cli_writes_a_run_split_by_episode(run, capsys):
    policy = load_run_policy(run)
    assert policy.kind == "kan-attn"
    assert policy.config.training["split"] == "episode"
    assert policy.config.training["n_val"] == 120  # 2 of 6 episodes of 60 frames


def test_onnx_export_is_checked_and_computes_the_policy(run, tmp_path):
    out = tmp_path / "policy.onnx"
    assert main(["export", str(run), "--onnx", "--out", str(out)]) == 0
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["face_spec_fingerprint"] == default_spec().fingerprint
    assert meta["servo_names"].split(",") == list(default_spec().names)
    x = SyntheticFace().sample(5, seed=99)[0]
    (commands,) = ReferenceEvaluator(model).run(None, {"expression": x})
    np.testing.assert_allclose(commands, load_run_policy(run)(x), atol=1e-5)


def test_hyper_parameters_are_set_from_the_command_line_and_kept_in_the_run(dataset, tmp_path):
    out = tmp_path / "mlp"
    assert main(["train", "--data", str(dataset), "--model", "mlp", "--out", str(out), "--epochs", "1",
                 "--objective", "supervised", "--hparam", "hidden=[16,8]", "--hparam", "dropout=0.1", "--no-progress"]) == 0
    policy = load_run_policy(out)
    assert policy.config.hparams["hidden"] == [16, 8] and policy.config.hparams["dropout"] == 0.1
    assert [m.out_features for m in policy.model.module.net if hasattr(m, "out_features")] == [16, 8, 25]


def test_errors_are_one_line_with_exit_status_2(dataset, tmp_path, capsys):
    knn = tmp_path / "knn"
    assert main(["train", "--data", str(dataset), "--model", "knn", "--out", str(knn), "--no-progress"]) == 0
    assert main(["export", str(knn), "--onnx"]) == 2
    assert "has no ONNX form" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "no dataset directory" in capsys.readouterr().err
    assert main(["train", "--data", str(dataset), "--model", "mlp", "--out", str(tmp_path / "y"), "--hparam", "width=3"]) == 2
    assert "mlp has no hyper-parameter(s) ['width']" in capsys.readouterr().err
    assert main(["train", "--data", str(dataset), "--model", "mlp", "--out", str(tmp_path / "y"), "--hparam", "hidden"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
