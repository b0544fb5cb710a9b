"""A forward model with the face's structure: commands -> landmarks, then MediaPipe's own blendshape network.

A direct MLP from 25 commands to 52 coefficients has to learn the blendshape network's nonlinearity
from the recorded pairs, and it is wrong exactly where a policy trained through it wants to go:
at the commands CMA-ES finds for human faces its coefficient error was as large as the best
reachable closed-loop error itself. Landmarks are smooth, mostly local functions of the servos
(a cable pulls a patch of skin), so an MLP predicts them well off the data too; the network that
turns them into coefficients is the real one (`facetwin.blendshape_torch`), not an imitation. At those
commands this teacher's error is far smaller, and commands optimised through it reach the twin's best
(docs/experiments.md#landmark-teacher).

The teacher costs ~32 M multiply-adds per sample (the MLP-Mixer), too slow to train a policy through
on a CPU, so it is distilled into the usual `ForwardModel` on commands drawn well beyond the data
(`broad_commands`): the policy trains through the student, at the direct model's speed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facetwin.blendshape_torch import TorchBlendshapes
from facetwin.expression import BLENDSHAPE_INPUT_LANDMARKS, N_BLENDSHAPES

from facetwin.agents.policies.features import HEAD_SCALE_DEG
from facetwin.agents.forward.direct import ForwardModel, ForwardScore, expression_loss, score_forward, silu_mlp
from facetwin.agents.training.minibatch import resolve_device

_SUBSET = np.asarray(BLENDSHAPE_INPUT_LANDMARKS)


class LandmarkForward(nn.Module):
    """Commands (B, S) -> expressions (B, 55) through predicted pixel landmarks and the blendshape network."""

    def __init__(self, blendshapes: TorchBlendshapes, mean_px: np.ndarray, scale_px: float, n_servos: int = 25,
                 hidden: Sequence[int] = (384, 384, 384)):
        super().__init__()
        n_points = len(_SUBSET)
        self.n_servos, self.hidden = n_servos, [int(h) for h in hidden]
        self.net = silu_mlp(n_servos, hidden, n_points * 2 + 3)
        self.blendshapes = blendshapes
        self.register_buffer("mean_px", torch.as_tensor(mean_px, dtype=torch.float32).reshape(n_points, 2))
        self.scale_px = float(scale_px)

    def landmarks_and_head(self, command: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 146, 2) pixel landmarks of the blendshape subset, (B, 3) head angles in degrees."""
        out = self.net(command)
        points = out[:, :-3].reshape(len(command), -1, 2) * self.scale_px + self.mean_px
        return points, out[:, -3:] * HEAD_SCALE_DEG

    def forward(self, command: torch.Tensor) -> torch.Tensor:
        points, head = self.landmarks_and_head(command)
        return torch.cat([self.blendshapes(points), head], 1)


@dataclass
class LandmarkSettings:
    hidden: tuple[int, ...] = (384, 384, 384)
    epochs: int = 40
    batch_size: int = 256
    lr: float = 2e-3
    seed: int = 0
    device: str | None = None
    # distillation into a direct ForwardModel
    distil_samples: int = 120_000  # at most; fewer for small datasets (distil_per_row per recorded row)
    distil_per_row: int = 4
    distil_hidden: tuple[int, ...] = (512, 512, 512)
    distil_epochs: int = 30
    distil_batch_size: int = 512
    label_chunk: int = 512  # the Mixer's activations for this many samples stay in cache
    bundle: str | None = None  # face_landmarker.task for the blendshape network (None: env var or cache)


def fit_landmark_forward(command: np.ndarray, landmarks_px: np.ndarray, head_deg: np.ndarray,
                         blendshapes: TorchBlendshapes, settings: LandmarkSettings | None = None) -> LandmarkForward:
    """Fit commands (N, S) -> landmarks (N, 478, >=2) pixels and head (N, 3) degrees; returns the frozen teacher.

    Smooth L1 on landmarks scaled to unit spread: a few frames caught mid-motion (rows are recorded
    1/30 s after the command) should not pull the fit like squared error would let them.
    """
    cfg = settings or LandmarkSettings()
    dev = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    points = np.asarray(landmarks_px, np.float32)[:, _SUBSET, :2].reshape(len(command), -1)
    mean, scale = points.mean(0), float(points.std(0).mean())
    model = LandmarkForward(blendshapes, mean, scale, command.shape[1], cfg.hidden)
    return fit_teacher_net(model, command, landmarks_px, head_deg, cfg.epochs, cfg.batch_size, cfg.lr, dev)


def fit_teacher_net(teacher: LandmarkForward, command: np.ndarray, landmarks_px: np.ndarray, head_deg: np.ndarray,
                    epochs: int, batch_size: int, lr: float, device: torch.device) -> LandmarkForward:
    """Fit (or go on fitting) the teacher's landmark MLP on these rows, in its own pixel frame; returns it frozen."""
    points = np.asarray(landmarks_px, np.float32)[:, _SUBSET, :2].reshape(len(command), -1)
    mean = teacher.mean_px.cpu().numpy().reshape(-1)
    target = np.concatenate([(points - mean) / teacher.scale_px, np.asarray(head_deg, np.float32) / HEAD_SCALE_DEG], 1)
    teacher.to(device)
    for p in teacher.net.parameters():
        p.requires_grad_(True)
    c, t = torch.as_tensor(command, dtype=torch.float32, device=device), torch.as_tensor(target, device=device)
    minibatch_adam(teacher.net, torch.arange(len(c), device=device), epochs, batch_size, lr,
                   lambda idx: nn.functional.smooth_l1_loss(teacher.net(c[idx]), t[idx], beta=0.05))
    teacher.to("cpu").eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def minibatch_adam(module: nn.Module, rows: torch.Tensor, epochs: int, batch_size: int, lr: float, loss_of) -> None:
    """Adam with a cosine schedule over `epochs` shuffled passes of `rows`; loss_of(batch rows) -> loss."""
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        order = rows[torch.randperm(len(rows), device=rows.device)]
        for s in range(0, len(order), batch_size):
            opt.zero_grad(set_to_none=True)
            loss_of(order[s : s + batch_size]).backward()
            opt.step()
        sched.step()


def broad_commands(recorded: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Commands reaching well past the recorded ones, where a policy trained through the student may go:
    a quarter each of recorded commands, recorded + N(0, 0.3), recorded + N(0, 0.6), uniform in [-1, 1]."""
    recorded = np.asarray(recorded, np.float32)
    q = n // 4
    pick = lambda k: recorded[rng.integers(len(recorded), size=k)]  # noqa: E731
    parts = [pick(n - 3 * q), pick(q) + rng.normal(0, 0.3, (q, recorded.shape[1])),
             pick(q) + rng.normal(0, 0.6, (q, recorded.shape[1])), rng.uniform(-1, 1, (q, recorded.shape[1]))]
    return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)


@torch.no_grad()
def label(teacher: nn.Module, command: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    return torch.cat([teacher(command[s : s + chunk]) for s in range(0, len(command), chunk)])


class _Chunked(nn.Module):
    """The teacher over a large batch, a chunk at a time (the Mixer's activations are ~2 kB per sample per op)."""

    def __init__(self, teacher: nn.Module):
        super().__init__()
        self.teacher = teacher

    def forward(self, command: torch.Tensor) -> torch.Tensor:
        return label(self.teacher, command)


@dataclass
class Distillation:
    student: ForwardModel
    teacher_gap: float  # student vs teacher, expression loss on held-out broad commands
    label_seconds: float
    fit_seconds: float


def distil(teacher: LandmarkForward, recorded_commands: np.ndarray, couple: nn.Module,
           settings: LandmarkSettings | None = None) -> Distillation:
    """Fit a direct ForwardModel to the teacher's answers on `broad_commands` (coupling-limited, as the face
    applies them); 1 in 20 held out to measure the gap."""
    cfg = settings or LandmarkSettings()
    dev = resolve_device(cfg.device)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    n = min(cfg.distil_samples, cfg.distil_per_row * len(recorded_commands))
    command = couple(torch.as_tensor(broad_commands(recorded_commands, n, rng)))
    teacher = teacher.to(dev)
    expression = label(teacher, command.to(dev), cfg.label_chunk)
    teacher.to("cpu")
    label_seconds = time.perf_counter() - start
    command = command.to(dev)
    held = torch.arange(len(command), device=dev) % 20 == 0
    train = torch.nonzero(~held).squeeze(1)
    student = ForwardModel(command.shape[1], cfg.distil_hidden).to(dev)
    start = time.perf_counter()
    minibatch_adam(student, train, cfg.distil_epochs, cfg.distil_batch_size, cfg.lr,
                   lambda idx: expression_loss(student(command[idx]), expression[idx]))
    student.eval()
    with torch.no_grad():
        gap = float(expression_loss(student(command[held]), expression[held]))
    student.to("cpu")
    for p in student.parameters():
        p.requires_grad_(False)
    return Distillation(student, gap, round(label_seconds, 3), round(time.perf_counter() - start, 3))



def fit_structured_forward(command: np.ndarray, landmarks_px: np.ndarray, expression: np.ndarray,
                           command_val: np.ndarray, expression_val: np.ndarray, couple: nn.Module,
                           blendshapes: TorchBlendshapes, settings: LandmarkSettings | None = None
                           ) -> tuple[ForwardModel, ForwardScore, LandmarkForward]:
    """Teacher on the recorded pairs, student distilled from it; both scored on the held-out recorded pairs.
    Returns the student, its score and the teacher."""
    start = time.perf_counter()
    teacher = fit_landmark_forward(command, landmarks_px, expression[:, N_BLENDSHAPES:], blendshapes, settings)
    result = distil(teacher, command, couple, settings)
    train_mean = expression.mean(0)
    nan4 = (float("nan"),) * 4
    student_scores = score_forward(result.student, command_val, expression_val, train_mean) if len(command_val) else nan4
    teacher_scores = score_forward(_Chunked(teacher), command_val, expression_val, train_mean) if len(command_val) else nan4
    cfg = settings or LandmarkSettings()
    return result.student, ForwardScore(
        *student_scores, n_val=len(command_val), epochs_run=cfg.distil_epochs,
        seconds=round(time.perf_counter() - start, 3), method="landmarks",
        teacher_blendshape_mae=teacher_scores[0], teacher_head_error_deg=teacher_scores[1], distil_gap=result.teacher_gap
    ), teacher


TEACHER_WEIGHTS_FILE = "teacher.safetensors"
TEACHER_CONFIG_FILE = "teacher.json"


def save_teacher(run_dir: str | Path, teacher: LandmarkForward) -> None:
    """Beside a run's student: the landmark MLP and its pixel frame. The blendshape network is not copied;
    it is the landmarker bundle's own and is read from the bundle again when the teacher loads."""
    from safetensors.torch import save_file

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"net.{k}": v.contiguous() for k, v in teacher.net.state_dict().items()}
    tensors["mean_px"] = teacher.mean_px.contiguous()
    save_file(tensors, str(run_dir / TEACHER_WEIGHTS_FILE))
    (run_dir / TEACHER_CONFIG_FILE).write_text(json.dumps(
        {"n_servos": teacher.n_servos, "hidden": teacher.hidden, "scale_px": teacher.scale_px}, indent=2) + "\n")


def load_teacher(run_dir: str | Path, bundle: str | Path | None = None) -> LandmarkForward:
    """A run's teacher, ending in the blendshape network of `bundle` (default: $FACETWIN_FACE_LANDMARKER or the cache)."""
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    if not (run_dir / TEACHER_WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"no {TEACHER_WEIGHTS_FILE} in {run_dir}: only runs trained with the expression "
                                "objective on a dataset with landmarks have one")
    cfg = json.loads((run_dir / TEACHER_CONFIG_FILE).read_text())
    tensors = load_file(str(run_dir / TEACHER_WEIGHTS_FILE))
    teacher = LandmarkForward(TorchBlendshapes.from_bundle(bundle), tensors.pop("mean_px").numpy(), cfg["scale_px"],
                              cfg["n_servos"], cfg["hidden"])
    teacher.net.load_state_dict({k.removeprefix("net."): v for k, v in tensors.items()})
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
