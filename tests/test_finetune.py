"""Fine-tuning a sim-pretrained policy on a few real rows, compared with training from scratch."""

import json

import numpy as np
import pytest

from facetwin.agents.training.checkpoint import load_run_policy
from facetwin.agents.training.minibatch import FitSettings
from facetwin.agents.training.config import TrainConfig
from facetwin.agents.training.train import train_from_arrays
from facetwin.app.cli import main
from facetwin.dataset import DatasetWriter, EpisodeFrames
from facetwin.spec import default_spec

SPEC = default_spec()
W = np.random.default_rng(0).normal(0, 1.5, (55, SPEC.n)) / np.sqrt(55)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _face(rng, n):
    """Synthetic (expression, command) rows from one fixed smooth map (blendshapes in [0, 1], head in deg)."""
    e = np.concatenate([rng.uniform(0, 1, (n, 52)), rng.normal(0, 10, (n, 3))], 1).astype(np.float32)
    return e, np.tanh((e[:, :52] - 0.5) @ W[:52] + 0.02 * e[:, 52:] @ W[52:]).astype(np.float32)


def test_finetune_beats_scratch_on_few_real_rows_and_records_both(tmp_path, capsys):
    rng = np.random.default_rng(1)
    e_sim, a_sim = _face(rng, 2000)
    pretrained = tmp_path / "sim"
    train_from_arrays(e_sim, a_sim, TrainConfig(model="mlp", hparams={"hidden": [32, 32], "dropout": 0.0},
                                                fit=FitSettings(epochs=30, progress=False), val_fraction=0.1),
                      out_dir=pretrained)
    shift = np.where(np.arange(SPEC.n) % 3 == 0, 0.15, 0.0)  # a few servos sit off on the built face
    real = tmp_path / "real"
    with DatasetWriter(real, SPEC, fps=10, landmarks=False) as w:
        for _ in range(12):
            e, a = _face(rng, 15)
            a = np.clip(a + shift, -1, 1).astype(np.float32)
            w.add_episode(EpisodeFrames(action=a, state=a, expression=e))
    out = tmp_path / "tuned"
    assert main(["finetune", "--policy", str(pretrained), "--data", str(real), "--out", str(out), "--epochs", "40"]) == 0
    comparison = json.loads((out / "config.json").read_text())["training"]["comparison"]
    mae = comparison["test_command_mae"]
    assert set(mae) == {"zero_shot", "finetuned", "scratch"}
    assert mae["finetuned"] < mae["scratch"] and mae["finetuned"] < mae["zero_shot"]
    assert "beats" in capsys.readouterr().out
    assert load_run_policy(out).kind == "mlp" and load_run_policy(out / "scratch").kind == "mlp"
