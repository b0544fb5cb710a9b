"""A learned forward model of the face: 25 servo commands -> the expression the twin settles into.

The self-model of robot faces that learn their own kinematics (Eva, EMO): fitted on the same
(command, expression) pairs the policies learn from, it lets a policy be trained in expression space
(`expression_objective`), where targets the face cannot reach still have a best answer. Coefficients
leave through a sigmoid (MediaPipe's are in [0, 1]); head angles leave in units of HEAD_SCALE_DEG.
It is scored like the closed loop: blendshape MAE over the 51 active coefficients, head error in degrees.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facetwin.expression import ACTIVE_BLENDSHAPES, EXPRESSION_DIM, N_BLENDSHAPES

from facetwin.agents.evaluation.metrics import HEAD_WEIGHT_PER_DEG
from facetwin.agents.policies.features import HEAD_SCALE_DEG
from facetwin.agents.training.minibatch import resolve_device

FORWARD_WEIGHTS_FILE = "forward.safetensors"
FORWARD_CONFIG_FILE = "forward.json"
_ACTIVE = torch.tensor(ACTIVE_BLENDSHAPES)


def silu_mlp(n_in: int, hidden: Sequence[int], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.SiLU()]
        n_in = h
    return nn.Sequential(*layers, nn.Linear(n_in, n_out))


class ForwardModel(nn.Module):
    """MLP commands (B, S) -> raw expressions (B, 55): 52 coefficients in [0, 1] + yaw, pitch, roll in degrees."""

    def __init__(self, n_servos: int = 25, hidden: Sequence[int] = (256, 256, 256)):
        super().__init__()
        self.n_servos, self.hidden = n_servos, list(hidden)
        self.net = silu_mlp(n_servos, hidden, EXPRESSION_DIM)

    def forward(self, command: torch.Tensor) -> torch.Tensor:
        out = self.net(command)
        return torch.cat([torch.sigmoid(out[:, :N_BLENDSHAPES]), out[:, N_BLENDSHAPES:] * HEAD_SCALE_DEG], 1)


def expression_loss(reached: torch.Tensor, target: torch.Tensor, head_weight_per_deg: float = HEAD_WEIGHT_PER_DEG,
                    reduce: bool = True) -> torch.Tensor:
    """The closed loop's objective (ExpressionError.objective) on (B, 55) batches: MAE over the 51 active
    coefficients + head_weight_per_deg x mean |yaw, pitch, roll difference| in degrees."""
    active = _ACTIVE.to(reached.device)
    per_row = (reached[:, active] - target[:, active]).abs().mean(1) \
        + head_weight_per_deg * (reached[:, N_BLENDSHAPES:] - target[:, N_BLENDSHAPES:]).abs().mean(1)
    return per_row.mean() if reduce else per_row


@dataclass
class ForwardSettings:
    hidden: tuple[int, ...] = (256, 256, 256)
    epochs: int = 60
    batch_size: int = 256
    lr: float = 2e-3
    patience: int = 12
    seed: int = 0
    device: str | None = None


@dataclass
class ForwardScore:
    """Held-out error of a forward model, in the closed loop's terms, next to predicting the mean expression."""

    blendshape_mae: float
    head_error_deg: float
    mean_baseline_blendshape_mae: float
    mean_baseline_head_error_deg: float
    n_val: int
    epochs_run: int = 0
    seconds: float = 0.0
    method: str = "direct"  # "direct", "landmarks" (distilled from landmark_forward's teacher), or "given"
    teacher_blendshape_mae: float | None = None  # the landmark teacher's held-out errors, for "landmarks"
    teacher_head_error_deg: float | None = None
    distil_gap: float | None = None  # student vs teacher on broad commands (expression loss)


@torch.no_grad()
def score_forward(model: nn.Module, command: np.ndarray, expression: np.ndarray, train_mean: np.ndarray) -> tuple[float, float, float, float]:
    model.eval()
    pred = model(torch.as_tensor(command, dtype=torch.float32)).numpy()
    act, head = np.array(ACTIVE_BLENDSHAPES), slice(N_BLENDSHAPES, None)
    return (float(np.abs(pred[:, act] - expression[:, act]).mean()), float(np.abs(pred[:, head] - expression[:, head]).mean()),
            float(np.abs(train_mean[act] - expression[:, act]).mean()), float(np.abs(train_mean[head] - expression[:, head]).mean()))


def fit_forward(command: np.ndarray, expression: np.ndarray, command_val: np.ndarray, expression_val: np.ndarray,
                settings: ForwardSettings | None = None) -> tuple[ForwardModel, ForwardScore]:
    """Fit f(commands) -> expression with the closed loop's L1 objective; keeps the best validation epoch."""
    cfg = settings or ForwardSettings()
    dev = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = ForwardModel(command.shape[1], cfg.hidden).to(dev)
    c, e = torch.as_tensor(command, device=dev), torch.as_tensor(expression, device=dev)
    cv, ev = torch.as_tensor(command_val, device=dev), torch.as_tensor(expression_val, device=dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    best, best_val, best_epoch, start, epoch = copy.deepcopy(model.state_dict()), float("inf"), 0, time.perf_counter(), 0
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.as_tensor(rng.permutation(len(c)), device=dev)
        for s in range(0, len(c), cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            expression_loss(model(c[idx]), e[idx]).backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            val = float(expression_loss(model(cv), ev)) if len(cv) else -epoch
        if val < best_val - 1e-7:
            best, best_val, best_epoch = copy.deepcopy(model.state_dict()), val, epoch
        if epoch - best_epoch >= cfg.patience:
            break
    model.load_state_dict(best)
    model.to("cpu").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    seconds = time.perf_counter() - start
    if len(command_val):
        scores = score_forward(model, command_val, expression_val, expression.mean(0))
    else:
        scores = (float("nan"),) * 4
    return model, ForwardScore(*scores, n_val=len(command_val), epochs_run=epoch + 1, seconds=round(seconds, 3))


def save_forward(run_dir: str | Path, model: ForwardModel, score: ForwardScore) -> None:
    """Beside a policy run, for reference: the policy loads without it."""
    from safetensors.torch import save_file

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(run_dir / FORWARD_WEIGHTS_FILE))
    (run_dir / FORWARD_CONFIG_FILE).write_text(json.dumps(
        {"n_servos": model.n_servos, "hidden": model.hidden, "score": asdict(score)}, indent=2) + "\n")


def load_forward(run_dir: str | Path) -> ForwardModel:
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    if not (run_dir / FORWARD_WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"no {FORWARD_WEIGHTS_FILE} in {run_dir}: train with `--objective expression` to get one")
    cfg = json.loads((run_dir / FORWARD_CONFIG_FILE).read_text())
    model = ForwardModel(cfg["n_servos"], cfg["hidden"])
    model.load_state_dict(load_file(str(run_dir / FORWARD_WEIGHTS_FILE)))
    return model.eval()
