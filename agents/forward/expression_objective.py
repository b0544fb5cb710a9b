"""Training a policy in expression space: pi is fitted so that f(pi(e)) ~ e, with f a frozen forward model.

Supervised training on (expression, command) pairs only ever shows the policy expressions the face
reached; a person's expression lies outside that set (brows and eyes above all), and an inverse
model extrapolates there. Scoring pi through the forward model instead asks, for any target, for the
commands whose expression is closest in the closed loop's own terms (`forward_model.expression_loss`),
which is the oracle's question, answered once for a whole distribution of targets:

    targets e: dataset expressions, convex mixes of them, per-coefficient noise, sparse random
               activations in [0, 1], head angles across the dataset's range, and on half of them an
               emotion prototype's co-activations (`prototypes`), as people show them  (`TargetSampler`)
    loss     = expression_loss(f(couple(pi(e))), e)  +  anchor x MSE(pi(x), y) on real pairs

f is the landmark-structured forward model's distilled student when the data has landmarks
(`landmark_forward`), accurate well away from the recorded commands; the anchor (0 by default)
can still hold pi near the recorded commands when f is a direct fit that is not. `couple` is the
spec's jaw/corner limit (motion.constraints.limit_coupling) in torch, since the face applies it to
every command it gets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from facetwin.blendshape_torch import TorchBlendshapes
from facetwin.expression import ACTIVE_BLENDSHAPES, N_BLENDSHAPES
from facetwin.spec import FaceSpec

from facetwin.agents.forward.direct import ForwardModel, ForwardScore, ForwardSettings, expression_loss, fit_forward, score_forward
from facetwin.agents.forward.landmark import LandmarkForward, LandmarkSettings, fit_structured_forward
from facetwin.agents.training.minibatch import BestEpoch, FitHistory, resolve_device
from facetwin.agents.training.config import OBJECTIVES, ExpressionSettings  # torch-free, for the CLI's defaults
from facetwin.agents.forward.prototypes import overlay_prototypes


@dataclass
class TargetMix:
    """Shares of each kind of training target (normalised), and how strong the perturbations are."""

    data: float = 0.3  # dataset expressions as recorded
    mix: float = 0.25  # convex mixes of 2-3 dataset expressions
    noise: float = 0.25  # a dataset expression plus per-coefficient Gaussian noise
    sparse: float = 0.2  # a dataset expression with a few coefficients set anywhere in [0, 1]
    noise_std: float = 0.1
    sparse_max: int = 4  # at most this many coefficients re-drawn per sparse target
    head_uniform: float = 0.3  # share of targets whose head angles are drawn across the dataset's range
    prototype: float = 0.5  # share of targets (of any kind above) overlaid with an emotion prototype


@dataclass
class Confirmed:
    """Targets and, for each, the command that read closest to it through the twin: what the policy and its
    forward model proposed, judged by the readout. The expression pass pulls the policy's answer to each
    target toward its command with `weight` (a command MSE next to the expression loss)."""

    targets: np.ndarray  # (N, 55)
    commands: np.ndarray  # (N, n_servos)
    weight: float


class TargetSampler:
    """Draws target expressions (N, 55) around a set of recorded ones, reaching outside what the face can do."""

    def __init__(self, expressions: np.ndarray, mix: TargetMix | None = None):
        self.base = np.asarray(expressions, np.float32)
        self.mix = mix or TargetMix()
        shares = np.array([self.mix.data, self.mix.mix, self.mix.noise, self.mix.sparse], np.float64)
        if (shares < 0).any() or shares.sum() <= 0:
            raise ValueError(f"target shares must be >= 0 and not all 0, got {shares.tolist()}")
        self.shares = shares / shares.sum()
        self.head_low, self.head_high = self.base[:, N_BLENDSHAPES:].min(0), self.base[:, N_BLENDSHAPES:].max(0)
        self.active = np.array(ACTIVE_BLENDSHAPES)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        out = self.base[rng.integers(len(self.base), size=n)].copy()
        kind = rng.choice(4, size=n, p=self.shares)
        rows = np.flatnonzero(kind == 1)
        if len(rows):  # convex mixes of 2 or 3 recorded expressions (Dirichlet weights)
            parts = rng.integers(2, 4, size=len(rows))
            w = rng.dirichlet(np.ones(3), size=len(rows)) * (np.arange(3) < parts[:, None])
            w /= w.sum(1, keepdims=True)
            others = self.base[rng.integers(len(self.base), size=(len(rows), 2))]
            out[rows] = w[:, :1] * out[rows] + np.einsum("nk,nkd->nd", w[:, 1:], others)
        rows = np.flatnonzero(kind == 2)
        if len(rows):
            noise = rng.normal(0.0, self.mix.noise_std, (len(rows), N_BLENDSHAPES)).astype(np.float32)
            out[rows, :N_BLENDSHAPES] = np.clip(out[rows, :N_BLENDSHAPES] + noise, 0.0, 1.0)
        rows = np.flatnonzero(kind == 3)
        for r in rows:  # few rows per batch: a loop is clearer than fancy indexing here
            k = rng.integers(1, self.mix.sparse_max + 1)
            out[r, rng.choice(self.active, size=k, replace=False)] = rng.uniform(0.0, 1.0, k)
        rows = np.flatnonzero(rng.random(n) < self.mix.head_uniform)
        out[rows, N_BLENDSHAPES:] = rng.uniform(self.head_low, self.head_high, (len(rows), 3))
        overlay_prototypes(out, np.flatnonzero(rng.random(n) < self.mix.prototype), rng)
        out[:, 0] = 0.0  # _neutral is not scored and recorded as 0
        return out


class Coupling(nn.Module):
    """The spec's coupling limit as a differentiable map: |c_i| <= limit - max(c_partner, 0)."""

    def __init__(self, spec: FaceSpec):
        super().__init__()
        pairs = [(i, spec.index(s.coupling.with_servo), s.coupling.limit) for i, s in enumerate(spec.servos) if s.coupling]
        self.register_buffer("limited", torch.tensor([p[0] for p in pairs], dtype=torch.long))
        self.register_buffer("partner", torch.tensor([p[1] for p in pairs], dtype=torch.long))
        self.register_buffer("limit", torch.tensor([p[2] for p in pairs], dtype=torch.float32))

    def forward(self, command: torch.Tensor) -> torch.Tensor:
        if not len(self.limited):
            return command
        # a partner above the limit is cut to it first (limit_coupling); tanh outputs never are
        allowed = self.limit - torch.clamp(command[:, self.partner], 0.0, None).clamp(max=self.limit)
        limited = torch.maximum(torch.minimum(command[:, self.limited], allowed), -allowed)
        return command.index_copy(1, self.limited, limited)


def fit_expression_module(module: nn.Module, forward: ForwardModel, coupling: Coupling,
                          x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                          settings: ExpressionSettings, mix: TargetMix | None = None,
                          confirmed: Confirmed | None = None) -> FitHistory:
    """Train `module` in place on expression_loss(f(couple(pi(e))), e) + anchor x command MSE (+ confirmed.weight x
    the command MSE to the confirmed answers, a batch of them each step).

    Validation: the same loss on targets drawn (with a fixed seed) around the held-out expressions;
    the module ends holding its best validation epoch's weights, on the CPU.
    """
    dev = resolve_device(settings.device)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    module.to(dev)
    forward = forward.to(dev).eval()
    for p in forward.parameters():
        p.requires_grad_(False)
    coupling = coupling.to(dev)
    sampler = TargetSampler(x, mix)
    val_source = x_val if len(x_val) else x
    val_targets = torch.as_tensor(TargetSampler(val_source, mix).sample(settings.val_targets, np.random.default_rng(settings.seed + 1)), device=dev)
    xt, yt = torch.as_tensor(x, device=dev), torch.as_tensor(y, device=dev)
    xv, yv = torch.as_tensor(x_val, device=dev), torch.as_tensor(y_val, device=dev)

    if confirmed is not None and len(confirmed.targets):
        ct = torch.as_tensor(confirmed.targets, dtype=torch.float32, device=dev)
        cc = torch.as_tensor(confirmed.commands, dtype=torch.float32, device=dev)
    else:
        confirmed = None

    def objective(targets, xs, ys):
        reached = forward(coupling(module(targets)))
        loss = expression_loss(reached, targets) + settings.anchor * nn.functional.mse_loss(module(xs), ys)
        if confirmed is not None:
            pick = torch.as_tensor(rng.integers(len(ct), size=len(targets)), device=dev)
            loss = loss + confirmed.weight * nn.functional.mse_loss(module(ct[pick]), cc[pick])
        return loss

    @torch.no_grad()
    def validate() -> float:
        module.eval()
        anchor = nn.functional.mse_loss(module(xv), yv) if len(xv) else torch.zeros((), device=dev)
        return float(expression_loss(forward(coupling(module(val_targets))), val_targets) + settings.anchor * anchor)

    opt = torch.optim.Adam(module.parameters(), lr=settings.lr or 3e-3, foreach=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings.epochs)
    keeper = BestEpoch(module, opt, FitHistory(device=str(dev)), settings.patience, plateau=False)
    bs = settings.batch_size
    bar = tqdm(range(settings.epochs), desc=f"{type(module).__name__} (expression)", disable=not settings.progress, leave=False)
    for epoch in bar:
        if epoch in settings.grid_update_epochs and hasattr(module, "update_grids"):
            module.eval()
            module.update_grids(torch.as_tensor(sampler.sample(settings.grid_samples, rng), device=dev))
            if epoch == 0:  # the grids moved: score the starting point again on them
                keeper.restart(validate())
        module.train()
        order = torch.as_tensor(rng.permutation(len(xt)), device=dev)
        targets = torch.as_tensor(sampler.sample(len(xt), rng), device=dev)
        total = 0.0
        for s in range(0, len(xt), bs):
            idx = order[s : s + bs]
            opt.zero_grad(set_to_none=True)
            loss = objective(targets[s : s + bs], xt[idx], yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        if keeper.end_epoch(epoch, total / len(xt), validate(), bar):
            break
    return keeper.finish(bar)


@dataclass
class ExpressionPass:
    """What the expression-space pass made and measured, for the run's config and its report."""

    forward: ForwardModel
    forward_score: ForwardScore
    history: FitHistory
    val_expression_loss: float  # f-scored expression loss on the held-out perturbed targets, after the pass
    val_expression_loss_before: float  # the same for the supervised policy it started from
    teacher: LandmarkForward | None = None  # the landmark-structured model the forward model was distilled from


def run_expression_pass(model, spec: FaceSpec, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                        settings: ExpressionSettings | None = None, forward_settings: ForwardSettings | None = None,
                        mix: TargetMix | None = None, landmarks: np.ndarray | None = None,
                        landmark_settings: LandmarkSettings | None = None,
                        forward: ForwardModel | None = None, teacher: LandmarkForward | None = None) -> ExpressionPass:
    """Fit the forward model on the training pairs, then fine-tune the (supervised) `model` through it.

    With `landmarks` (the training rows' (N, 478, >=2) pixel landmarks) the forward model is the
    landmark-structured teacher's distilled student; without, a direct fit on the pairs. A given
    `forward` (e.g. another run's on the same data, with its `teacher` if it has one) is used as it is,
    scored on the held-out pairs."""
    settings = settings or ExpressionSettings()
    coupling = Coupling(spec)
    if forward is not None:
        start = time.perf_counter()
        scores = score_forward(forward, y_val, x_val, x.mean(0)) if len(x_val) else (float("nan"),) * 4
        score = ForwardScore(*scores, n_val=len(x_val), seconds=round(time.perf_counter() - start, 3), method="given")
    elif landmarks is not None:
        landmark_settings = landmark_settings or LandmarkSettings(seed=settings.seed, device=settings.device)
        forward, score, teacher = fit_structured_forward(y, landmarks, x, y_val, x_val, coupling,
                                                         TorchBlendshapes.from_bundle(landmark_settings.bundle),
                                                         landmark_settings)
    else:
        forward_settings = forward_settings or ForwardSettings(seed=settings.seed, device=settings.device)
        forward, score = fit_forward(y, x, y_val, x_val, forward_settings)
    targets = torch.as_tensor(TargetSampler(x_val if len(x_val) else x, mix).sample(
        settings.val_targets, np.random.default_rng(settings.seed + 1)))
    before = _scored(model.module, forward, coupling, targets)
    history = model.fit_expression(forward, coupling, x, y, x_val, y_val, settings, mix)
    return ExpressionPass(forward, score, history, _scored(model.module, forward, coupling, targets), before, teacher)


@torch.no_grad()
def _scored(module: nn.Module, forward: ForwardModel, coupling: Coupling, targets: torch.Tensor) -> float:
    module.eval()
    return float(expression_loss(forward(coupling(module(targets))), targets))
