"""Fit a policy to (expression -> servo command) pairs and write a run directory.

`train_from_arrays` is the whole pipeline on arrays; `train_from_dataset` reads a facetwin dataset
(LeRobot-v3 style, via facetwin.dataset.load_arrays) first. Both are configured by one `TrainConfig`
(config.py). Validation rows are whole episodes when episode indices are given, so frames of one
episode never sit on both sides of the split.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from facetwin.expression import EXPRESSION_DIM
from facetwin.spec import FaceSpec, default_spec

from facetwin.agents.forward.aggregation import AggregationRound, TwinQuery, aggregate, twin_query
from facetwin.agents.training.checkpoint import Policy, config_for, save_run
from facetwin.agents.training.config import ExpressionSettings, TrainConfig
from facetwin.agents.forward.expression_objective import Coupling, ExpressionPass, run_expression_pass
from facetwin.agents.forward.direct import ForwardModel, save_forward, score_forward
from facetwin.agents.forward.landmark import LandmarkForward, save_teacher
from facetwin.agents.training.minibatch import FitHistory
from facetwin.agents.policies.kinds import build_model
from facetwin.agents.policies.kan_attention import servo_regions


@dataclass
class TrainResult:
    policy: Policy
    history: FitHistory
    val_mse: float
    mean_baseline_val_mse: float  # predicting the training mean command for every frame
    n_train: int
    n_val: int
    run_dir: Path | None = None
    expression: ExpressionPass | None = None  # the expression-space pass, with objective="expression"
    aggregation: list[AggregationRound] | None = None  # its rounds of twin queries, when it had any


def split_validation(n: int, val_fraction: float, seed: int = 0,
                     episode_index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows). With episode_index, whole episodes go to validation."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    if episode_index is None:
        order = rng.permutation(n)
        n_val = int(round(n * val_fraction)) if n > 1 else 0
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    episodes = np.unique(episode_index)
    if len(episodes) < 2 and val_fraction > 0:
        raise ValueError("validation by episode needs at least 2 episodes; record more, or pass no episode index")
    shuffled = rng.permutation(episodes)
    n_val_ep = min(len(episodes) - 1, max(1, int(round(len(episodes) * val_fraction)))) if val_fraction > 0 else 0
    is_val = np.isin(episode_index, shuffled[:n_val_ep])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def train_from_arrays(
    expression: np.ndarray,
    action: np.ndarray,
    config: TrainConfig = TrainConfig(),
    *,
    spec: FaceSpec | None = None,
    out_dir: str | Path | None = None,
    episode_index: np.ndarray | None = None,
    landmarks: np.ndarray | None = None,
    forward: ForwardModel | None = None,
    teacher: LandmarkForward | None = None,
    query: TwinQuery | None = None,
    readout: str = "fast",
) -> TrainResult:
    """Fit `config.model` on expression (N, 55) -> action (N, S); write a run to out_dir when given.

    objective "expression": after the supervised fit, a forward model is fitted on the same pairs and the
    policy fine-tuned through it in expression space (expression_objective; `config.expression` and
    `config.forward` tune that pass and its forward model). With `landmarks` ((N, 478, >=2) pixels, as
    datasets record them) the forward model is the landmark-structured one (`landmark_forward`); a given
    `forward` (another run's, on the same data, with its `teacher` if it has one) skips fitting one;
    `config.forward_model` "direct" fits the direct model even where landmarks are given.
    `config.aggregation` rounds (`aggregation.py`) then query the twin through `query` where the policy goes,
    refit the forward models there and tune the policy again; every query counts as a twin sample in the config.
    """
    spec = default_spec() if spec is None else spec
    settings = config.fit
    x, y = _check_arrays(expression, action, spec)
    rounds = config.rounds
    if rounds and query is None:
        raise ValueError("aggregation rounds query the twin: pass query (aggregation.twin_query()) or set rounds to 0")
    ep = None if episode_index is None else np.asarray(episode_index).reshape(-1)
    if ep is not None and len(ep) != len(x):
        raise ValueError(f"episode_index has {len(ep)} rows, expression has {len(x)}")
    if landmarks is not None and (len(landmarks) != len(x) or np.ndim(landmarks) != 3):
        raise ValueError(f"landmarks must be (N, 478, 2 or 3) with N = {len(x)} rows, got shape {np.shape(landmarks)}")
    if config.max_samples is not None and len(x) > config.max_samples:
        keep = np.sort(np.random.default_rng(settings.seed).choice(len(x), config.max_samples, replace=False))
        x, y, ep = x[keep], y[keep], None if ep is None else ep[keep]
        landmarks = None if landmarks is None else landmarks[keep]
    if config.forward_model == "direct":
        landmarks = None  # landmarks are what the teacher is fitted on; the direct model reads commands only
    train, val = split_validation(len(x), config.val_fraction, settings.seed, ep)
    torch.manual_seed(settings.seed)  # the initial weights too, so one config and one dataset give one policy
    policy_model = build_model(config.model, spec.n, servo_regions(spec), config.hparams)
    start = time.perf_counter()
    history = policy_model.fit(x[train], y[train], x[val], y[val], settings)
    expr_pass = None
    if config.objective == "expression":
        expression_settings = config.expression or ExpressionSettings(seed=settings.seed, device=settings.device,
                                                                      progress=settings.progress)
        expr_pass = run_expression_pass(policy_model, spec, x[train], y[train], x[val], y[val], expression_settings,
                                        config.forward, landmarks=None if landmarks is None else landmarks[train],
                                        landmark_settings=config.landmark, forward=forward, teacher=teacher)
    agg_rounds = None
    if rounds:
        aggregation = replace(config.aggregation, seed=settings.seed, device=settings.device)
        agg_rounds = aggregate(policy_model, expr_pass.forward, expr_pass.teacher, Coupling(spec), query, x[train], y[train],
                               None if landmarks is None else landmarks[train], x[val], y[val], aggregation,
                               expression_settings)
    val_mse = float(np.mean((policy_model.predict(x[val]) - y[val]) ** 2)) if len(val) else float("nan")
    mean_mse = float(np.mean((y[train].mean(0) - y[val]) ** 2)) if len(val) else float("nan")
    training = {
        "settings": asdict(settings),
        "n_train": int(len(train)),
        "n_val": int(len(val)),
        "split": "episode" if ep is not None else "frame",
        "val_mse": val_mse,
        "mean_baseline_val_mse": mean_mse,
        "best_epoch": history.best_epoch,
        "epochs_run": len(history.train_loss),
        "stopped_early": history.stopped_early,
        "seconds": round(history.seconds, 3),
        "device": history.device,
        "objective": config.objective,
        "total_seconds": round(time.perf_counter() - start, 3),  # every pass, the forward model's included
    }
    if expr_pass is not None:
        training["expression"] = {
            "settings": asdict(expression_settings),
            "forward_model": asdict(expr_pass.forward_score),
            "val_expression_loss_before": expr_pass.val_expression_loss_before,
            "val_expression_loss": expr_pass.val_expression_loss,
            "best_epoch": expr_pass.history.best_epoch,
            "epochs_run": len(expr_pass.history.train_loss),
            "seconds": round(expr_pass.history.seconds, 3),
        }
    if agg_rounds is not None:
        queries = sum(r.queries for r in agg_rounds)
        student = score_forward(expr_pass.forward, y[val], x[val], x[train].mean(0)) if len(val) else (float("nan"),) * 4
        training["aggregation"] = {
            "settings": asdict(aggregation),
            "rounds": [asdict(r) for r in agg_rounds],
            "twin_queries": queries,
            "twin_samples": int(len(x)) + queries,  # recorded rows used (train and validation) + queries
            "forward_model_after": {"blendshape_mae": student[0], "head_error_deg": student[1]},
        }
    run_config = config_for(policy_model, spec, training, readout)  # readout: how `expression` was read
    result = TrainResult(Policy(policy_model, run_config, spec), history, val_mse, mean_mse, len(train), len(val),
                         expression=expr_pass, aggregation=agg_rounds)
    if out_dir is not None:
        result.run_dir = save_run(out_dir, policy_model, run_config)
        plot_losses(history, result.run_dir / "loss.png", f"{config.model}: val MSE {val_mse:.4g} (mean baseline {mean_mse:.4g})")
        if expr_pass is not None:
            save_forward(result.run_dir, expr_pass.forward, expr_pass.forward_score)
            if expr_pass.teacher is not None:
                save_teacher(result.run_dir, expr_pass.teacher)
    return result


def train_from_dataset(
    data_dir: str | Path,
    config: TrainConfig = TrainConfig(),
    *,
    spec: FaceSpec | None = None,
    out_dir: str | Path | None = None,
    forward: ForwardModel | None = None,
    teacher: LandmarkForward | None = None,
    query: TwinQuery | None = None,
) -> TrainResult:
    """Train on a facetwin dataset; it must have been recorded for the same face spec. Without a `query`,
    aggregation rounds query a twin of that face."""
    from facetwin.dataset import load_arrays  # imported here so array training never needs the dataset code

    spec = default_spec() if spec is None else spec
    # landmarks feed the teacher: its fit, or its refit in aggregation rounds
    teacher_needs = config.forward_model == "landmark" and (forward is None or (config.rounds > 0 and teacher is not None))
    arrays = load_arrays(data_dir, landmarks=config.objective == "expression" and teacher_needs)
    recorded = getattr(arrays.info, "spec_fingerprint", None)
    if recorded and recorded != spec.fingerprint:
        theirs = arrays.info.recorded_face
        raise ValueError(
            f"dataset {data_dir} was recorded on face {theirs or arrays.info.spec_name!r} (spec {arrays.info.spec_name!r}, "
            f"fingerprint {recorded}), but training is for face {spec.face!r} (spec {spec.name!r}, fingerprint "
            f"{spec.fingerprint}); train with `--face {theirs}`, or record a dataset for this face "
            f"(`facetwin collect --face {spec.face}`)"
        )
    if config.rounds and query is None:
        bundle = None if config.landmark is None else config.landmark.bundle
        worlds = config.aggregation.query_worlds if config.aggregation is not None else 0
        if worlds and arrays.info.readout == "fast":
            from facetwin.sim.batch.query import batch_query

            query = batch_query(spec, bundle, n_worlds=worlds)
        else:
            query = twin_query(spec, bundle, arrays.info.readout)  # the dataset's own face and readout
    return train_from_arrays(arrays.expression, arrays.action, config, spec=spec, out_dir=out_dir,
                             episode_index=arrays.episode_index, landmarks=arrays.landmarks, forward=forward,
                             teacher=teacher, query=query, readout=arrays.info.readout)


def plot_losses(history: FitHistory, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(history.train_loss) + 1)
    ax.plot(epochs, history.train_loss, label="train", marker="." if len(epochs) < 3 else None)
    ax.plot(epochs, history.val_loss, label="validation", marker="." if len(epochs) < 3 else None)
    ax.axvline(history.best_epoch + 1, color="grey", ls=":", label="kept")
    ax.set(xlabel="epoch", ylabel="MSE (commands)", title=title)
    if min(history.train_loss + history.val_loss, default=1.0) > 0:
        ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _check_arrays(expression, action, spec: FaceSpec) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(expression, np.float32)
    y = np.asarray(action, np.float32)
    if x.ndim != 2 or x.shape[1] != EXPRESSION_DIM:
        raise ValueError(f"expression must be (N, {EXPRESSION_DIM}); got {x.shape}")
    if y.shape != (len(x), spec.n):
        raise ValueError(f"action must be (N, {spec.n}) commands for face spec {spec.name!r}, matching expression's N={len(x)}; got {y.shape}")
    if len(x) < 2:
        raise ValueError("need at least 2 samples to train")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("expression/action contain NaN or inf; drop frames without a face before training")
    if np.abs(y).max() > 1.0 + 1e-6:
        raise ValueError(f"actions must be normalised commands in [-1, 1]; max |action| is {np.abs(y).max():.3g}")
    return x, y
