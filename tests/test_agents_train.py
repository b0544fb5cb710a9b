"""Training: on a synthetic face every policy kind beats predicting the mean; runs round-trip and know their face."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from facetwin.agents.training.checkpoint import RunConfig, SpecMismatchError, load_run_policy
from facetwin.agents.training.config import AggregationSettings, ExpressionSettings, FitSettings, TrainConfig
from facetwin.agents.policies.kinds import DEFAULT_HPARAMS
from facetwin.agents.forward.synthetic_face import SyntheticFace
from facetwin.agents.training.train import split_validation, train_from_arrays
from facetwin.expression import EXPRESSION_NAMES
from facetwin.spec import default_spec

FACE = SyntheticFace()


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def data():
    return FACE.sample(1500, seed=0)


@pytest.fixture(scope="module")
def kan_attn_run(data, tmp_path_factory):
    x, y = data
    out = tmp_path_factory.mktemp("runs") / "kan-attn"
    settings = FitSettings(epochs=10, batch_size=64, patience=10, seed=0, progress=False)
    return train_from_arrays(x, y, TrainConfig(model="kan-attn", fit=settings), out_dir=out)


def test_kan_attn_loss_falls_and_beats_the_mean(kan_attn_run):
    h = kan_attn_run.history
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]
    assert kan_attn_run.val_mse < 0.5 * kan_attn_run.mean_baseline_val_mse


@pytest.mark.parametrize("kind,epochs", [("mlp", 12), ("kan", 6), ("linear", 1)])
def test_baselines_beat_the_mean(kind, epochs, data):
    x, y = data
    result = train_from_arrays(x, y, TrainConfig(model=kind, fit=FitSettings(epochs=epochs, progress=False)))
    assert result.val_mse < 0.8 * result.mean_baseline_val_mse
    assert result.policy(x[:3]).shape == (3, 25)


def test_nearest_neighbours_recall_training_pairs_and_beat_the_mean_where_data_is_dense():
    rng = np.random.default_rng(0)
    commands = np.zeros((1500, 25), np.float32)
    commands[:, [0, 15, 20]] = rng.uniform(-1, 1, (1500, 3))  # three servos move: the data covers their space
    x = FACE.expressions(commands)
    result = train_from_arrays(x, commands, TrainConfig(model="knn", fit=FitSettings(progress=False)))
    assert result.val_mse < 0.2 * result.mean_baseline_val_mse
    train, _ = split_validation(len(x), 0.1, seed=0)
    np.testing.assert_array_equal(result.policy(x[train[:5]]), commands[train[:5]])


def test_run_directory_round_trips(kan_attn_run, data):
    run = kan_attn_run.run_dir
    assert {p.name for p in run.iterdir()} >= {"model.safetensors", "config.json", "loss.png"}
    config = RunConfig.read(run)
    spec = default_spec()
    assert config.model == "kan-attn" and config.hparams == DEFAULT_HPARAMS["kan-attn"]
    assert config.spec_fingerprint == spec.fingerprint and config.servo_names == list(spec.names)
    assert config.expression_names == list(EXPRESSION_NAMES)
    assert config.training["n_val"] == kan_attn_run.n_val and config.training["settings"]["seed"] == 0
    loaded = load_run_policy(run)
    x = data[0][:20]
    np.testing.assert_allclose(loaded(x), kan_attn_run.policy(x), atol=1e-6)
    single = loaded(x[0])
    assert single.shape == (25,) and np.abs(single).max() <= 1.0


def test_a_run_for_another_face_spec_refuses_to_load(kan_attn_run):
    spec = default_spec()
    swapped = replace(spec, servos=spec.servos[1::-1] + spec.servos[2:], fingerprint="0123456789abcdef")
    with pytest.raises(SpecMismatchError) as err:
        load_run_policy(kan_attn_run.run_dir, spec=swapped)
    message = str(err.value)
    assert spec.fingerprint in message and "0123456789abcdef" in message
    assert "eye_right_yaw vs eye_right_pitch" in message
    retuned = replace(spec, fingerprint="fedcba9876543210")
    with pytest.raises(SpecMismatchError, match="limits or geometry differ"):
        load_run_policy(kan_attn_run.run_dir, spec=retuned)


def test_validation_takes_whole_episodes():
    episodes = np.repeat(np.arange(10), 7)
    train, val = split_validation(len(episodes), 0.2, seed=1, episode_index=episodes)
    assert set(episodes[train]).isdisjoint(episodes[val])
    assert len(set(episodes[val])) == 2 and len(train) + len(val) == 70


def test_bad_training_arrays_are_named(data):
    x, y = data
    with pytest.raises(ValueError, match=r"\(N, 25\)"):
        train_from_arrays(x, y[:, :24], TrainConfig(model="linear"))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        train_from_arrays(x, y * 3, TrainConfig(model="linear"))


def test_config_json_is_plain_json(kan_attn_run):
    raw = json.loads((kan_attn_run.run_dir / "config.json").read_text())
    assert raw["format"] == "facetwin-policy/1" and raw["model"] == "kan-attn"


def test_a_config_refuses_what_no_run_could_do():
    with pytest.raises(ValueError, match="choose one of kan-attn, kan, mlp, linear, knn"):
        TrainConfig(model="transformer")
    with pytest.raises(ValueError, match="choose one of supervised, expression"):
        TrainConfig(objective="imitation")
    with pytest.raises(ValueError, match="objective 'supervised'"):
        TrainConfig(model="knn", objective="expression")
    # aggregation rounds refit forward models, which only the expression objective has
    assert TrainConfig(aggregation=AggregationSettings()).rounds == 0
    assert TrainConfig(model="mlp", objective="expression", aggregation=AggregationSettings()).rounds == AggregationSettings().rounds


def test_train_cli_takes_its_defaults_from_the_config_without_importing_torch():
    code = ("import sys; from facetwin.app.cli import build_parser; "
            "args = build_parser().parse_args(['train', '--data', 'd', '--out', 'o']); "
            "print('torch' in sys.modules, args.model, args.epochs, args.batch_size, args.patience, args.seed, "
            "args.val_fraction, args.expression_epochs, args.anchor, args.aggregate_targets)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    config, fit, expression = TrainConfig(), FitSettings(), ExpressionSettings()
    assert out == [str(v) for v in (False, config.model, fit.epochs, fit.batch_size, fit.patience, fit.seed,
                                    config.val_fraction, expression.epochs, expression.anchor,
                                    AggregationSettings().targets)]


@pytest.mark.parametrize("kind", ["kan-attn", "mlp"])
def test_one_config_and_one_dataset_train_one_policy(kind, data):
    x, y = data
    config = TrainConfig(model=kind, fit=FitSettings(epochs=2, batch_size=64, seed=3, progress=False))
    first, again = (train_from_arrays(x[:400], y[:400], config) for _ in range(2))
    other_seed = train_from_arrays(x[:400], y[:400], replace(config, fit=replace(config.fit, seed=4)))
    # The KAN layer's backward accumulates with index_add_, whose summation order torch does not fix on
    # the CPU: the same seed agrees to float noise, not to the bit.
    same = np.abs(first.policy(x[:50]) - again.policy(x[:50])).max()
    other = np.abs(first.policy(x[:50]) - other_seed.policy(x[:50])).max()
    assert same < 5e-3 < other
