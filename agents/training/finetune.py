"""Sim-to-real transfer: continue training a sim-pretrained policy on real rows, and measure what it bought.

Real episodes are split three ways, whole episodes each: a held-out test part (`val_fraction`), and
the rest into fitting rows and a small early-stopping part. On the very same fitting rows two models
are trained: the pretrained policy, fine-tuned (lower learning rate, KAN grids kept as pretrained),
and the same model kind and hyper-parameters from scratch (its own default learning rate and grid
fitting). Both, and the pretrained policy untouched (zero-shot), are scored on the test episodes in
command space: MAE and MSE between predicted and recorded commands.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from facetwin.spec import FaceSpec

from facetwin.agents.training.checkpoint import Policy, config_for, load_run_policy, save_run
from facetwin.agents.training.config import FINETUNE_LR_FACTOR, FinetuneSettings
from facetwin.agents.training.minibatch import FitSettings
from facetwin.agents.policies.kinds import DEFAULT_LR, build_model
from facetwin.agents.policies.kan_attention import servo_regions
from facetwin.agents.training.train import _check_arrays, split_validation

SCRATCH_DIR = "scratch"

@dataclass
class Score:
    mae: float
    mse: float

    @classmethod
    def of(cls, predicted: np.ndarray, target: np.ndarray) -> Score:
        err = np.asarray(predicted, np.float64) - np.asarray(target, np.float64)
        return cls(float(np.abs(err).mean()), float((err ** 2).mean()))


@dataclass
class FinetuneResult:
    finetuned: Policy
    scratch: Policy
    zero_shot: Score  # the pretrained policy on the test episodes, untouched
    finetuned_score: Score
    scratch_score: Score
    n_train: int
    n_stop: int
    n_test: int
    test_episodes: list[int]
    run_dir: Path | None = None

    def summary(self) -> dict:
        return comparison(self.zero_shot, self.finetuned_score, self.scratch_score, self.n_train, self.n_stop,
                          self.n_test, self.test_episodes)


def comparison(zero_shot: Score, finetuned: Score, scratch: Score, n_train: int, n_stop: int, n_test: int,
               test_episodes: list[int]) -> dict:
    """The numbers a fine-tuning run records in its config and prints."""
    return {
        "test_command_mae": {"zero_shot": zero_shot.mae, "finetuned": finetuned.mae, "scratch": scratch.mae},
        "test_command_mse": {"zero_shot": zero_shot.mse, "finetuned": finetuned.mse, "scratch": scratch.mse},
        "n_train": n_train, "n_stop": n_stop, "n_test": n_test, "test_episodes": test_episodes,
    }


def split_three(episode_index: np.ndarray, settings: FinetuneSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fit rows, early-stopping rows, test rows), whole episodes each."""
    ep = np.asarray(episode_index).reshape(-1)
    if len(np.unique(ep)) < 3:
        raise ValueError("fine-tuning needs at least 3 real episodes (fit, early stopping, test); record more")
    rest, test = split_validation(len(ep), settings.val_fraction, settings.seed, ep)
    fit_rel, stop_rel = split_validation(len(rest), settings.stop_fraction, settings.seed + 1, ep[rest])
    fit = rest[fit_rel]
    if settings.max_train_samples is not None and len(fit) > settings.max_train_samples:
        fit = np.sort(np.random.default_rng(settings.seed).choice(fit, settings.max_train_samples, replace=False))
    return fit, rest[stop_rel], test


def finetune_from_arrays(pretrained: Policy, expression: np.ndarray, action: np.ndarray, episode_index: np.ndarray,
                         settings: FinetuneSettings = FinetuneSettings(), *, out_dir: str | Path | None = None,
                         source: dict | None = None) -> FinetuneResult:
    """Fine-tune `pretrained` on real (expression, action) rows and compare with training from scratch."""
    spec: FaceSpec = pretrained.spec
    if pretrained.kind not in DEFAULT_LR:
        raise ValueError(f"fine-tuning continues gradient training; a {pretrained.kind} policy is fitted in closed form "
                         "(retrain it on the real data with `facetwin train` instead)")
    x, y = _check_arrays(expression, action, spec)
    fit, stop, test = split_three(episode_index, settings)
    base = FitSettings(epochs=settings.epochs, batch_size=settings.batch_size, patience=settings.patience,
                       seed=settings.seed, device=settings.device, progress=settings.progress)

    tuned_model = copy.deepcopy(pretrained.model)
    lr = settings.lr or FINETUNE_LR_FACTOR * DEFAULT_LR[pretrained.kind]
    # grids stay where pretraining put them: refitting them to a few real rows would reshape the whole map
    tuned_hist = tuned_model.fit(x[fit], y[fit], x[stop], y[stop], replace(base, lr=lr, grid_update_epochs=()))

    scratch_model = build_model(pretrained.kind, spec.n, servo_regions(spec), pretrained.config.hparams)
    scratch_hist = scratch_model.fit(x[fit], y[fit], x[stop], y[stop], base)

    zero_shot = Score.of(pretrained.model.predict(x[test]), y[test])
    tuned_score = Score.of(tuned_model.predict(x[test]), y[test])
    scratch_score = Score.of(scratch_model.predict(x[test]), y[test])
    test_episodes = sorted(int(e) for e in np.unique(np.asarray(episode_index)[test]))
    summary = comparison(zero_shot, tuned_score, scratch_score, len(fit), len(stop), len(test), test_episodes)
    common = {"settings": asdict(settings), "source": source or {}, "comparison": summary}
    tuned_cfg = config_for(tuned_model, spec, {**common, "objective": "finetune", "lr": lr,
                                               "best_epoch": tuned_hist.best_epoch, "epochs_run": len(tuned_hist.train_loss),
                                               "pretraining": pretrained.config.training})
    scratch_cfg = config_for(scratch_model, spec, {**common, "objective": "scratch (same real rows)",
                                                   "best_epoch": scratch_hist.best_epoch,
                                                   "epochs_run": len(scratch_hist.train_loss)})
    result = FinetuneResult(Policy(tuned_model, tuned_cfg, spec), Policy(scratch_model, scratch_cfg, spec), zero_shot,
                            tuned_score, scratch_score, len(fit), len(stop), len(test), test_episodes)
    if out_dir is not None:
        result.run_dir = save_run(out_dir, tuned_model, tuned_cfg)
        save_run(Path(out_dir) / SCRATCH_DIR, scratch_model, scratch_cfg)
    return result


def finetune_from_dataset(policy_dir: str | Path, data_dir: str | Path, settings: FinetuneSettings = FinetuneSettings(),
                          *, out_dir: str | Path | None = None, spec: FaceSpec | None = None) -> FinetuneResult:
    from facetwin.dataset import load_arrays

    pretrained = load_run_policy(policy_dir, spec)
    arrays = load_arrays(data_dir, landmarks=False)
    recorded = getattr(arrays.info, "spec_fingerprint", None)
    if recorded and recorded != pretrained.spec.fingerprint:
        raise ValueError(f"dataset {data_dir} was recorded for face spec fingerprint {recorded}, the policy is for "
                         f"{pretrained.spec.fingerprint}: record the real data for the same face")
    source = {"policy": str(policy_dir), "data": str(data_dir), "rows": len(arrays), "episodes": arrays.n_episodes}
    return finetune_from_arrays(pretrained, arrays.expression, arrays.action, arrays.episode_index, settings,
                                out_dir=out_dir, source=source)
