"""The training loop shared by the neural policies: minibatch Adam on MSE, early stopping on validation."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from facetwin.agents.training.config import FitSettings  # defined torch-free, for the CLI's defaults


@dataclass
class FitHistory:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = float("inf")
    stopped_early: bool = False
    seconds: float = 0.0
    device: str = "cpu"


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but this PyTorch sees no CUDA device; use --device cpu")
    return dev


class BestEpoch:
    """Early stopping on the validation loss: keeps the best epoch's weights, halves the LR on plateaus."""

    def __init__(self, module: nn.Module, opt: torch.optim.Optimizer, hist: FitHistory, patience: int,
                 plateau: bool = True):
        self.module, self.hist, self.patience = module, hist, patience
        # plateau=False when the caller runs its own LR schedule
        self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=max(2, patience // 3)) if plateau else None
        self.best = copy.deepcopy(module.state_dict())
        self.start = time.perf_counter()

    def restart(self, val_loss: float) -> None:
        """Score the current weights as the best so far (after something moved under them, e.g. grids)."""
        self.hist.best_val_loss = val_loss
        self.best = copy.deepcopy(self.module.state_dict())

    def end_epoch(self, epoch: int, train_loss: float, val_loss: float, bar) -> bool:
        """Record the epoch; True when patience has run out."""
        hist = self.hist
        hist.train_loss.append(train_loss)
        hist.val_loss.append(val_loss)
        if self.sched is not None:
            self.sched.step(val_loss)
        if val_loss < hist.best_val_loss - 1e-7:
            hist.best_val_loss, hist.best_epoch = val_loss, epoch
            self.best = copy.deepcopy(self.module.state_dict())
        bar.set_postfix(train=f"{train_loss:.4g}", val=f"{val_loss:.4g}")
        hist.stopped_early = epoch - hist.best_epoch >= self.patience
        return hist.stopped_early

    def finish(self, bar) -> FitHistory:
        bar.close()
        self.module.load_state_dict(self.best)
        self.module.to("cpu").eval()
        self.hist.seconds = time.perf_counter() - self.start
        return self.hist


def fit_module(module: nn.Module, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
               settings: FitSettings) -> FitHistory:
    """Train `module` in place; it ends holding the weights of its best validation epoch, on the CPU."""
    dev = resolve_device(settings.device)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    module.to(dev)
    xt, yt = torch.as_tensor(x, device=dev), torch.as_tensor(y, device=dev)
    xv, yv = torch.as_tensor(x_val, device=dev), torch.as_tensor(y_val, device=dev)
    opt = torch.optim.Adam(module.parameters(), lr=settings.lr or 3e-3, weight_decay=settings.weight_decay, foreach=True)
    keeper = BestEpoch(module, opt, FitHistory(device=str(dev)), settings.patience)
    bar = tqdm(range(settings.epochs), desc=type(module).__name__, disable=not settings.progress, leave=False)
    for epoch in bar:
        if epoch in settings.grid_update_epochs and hasattr(module, "update_grids"):
            module.eval()
            module.update_grids(xt[rng.permutation(len(xt))[: settings.grid_samples]])
        module.train()
        order = torch.as_tensor(rng.permutation(len(xt)), device=dev)
        total = 0.0
        for s in range(0, len(xt), settings.batch_size):
            idx = order[s : s + settings.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.mse_loss(module(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if keeper.end_epoch(epoch, total / len(xt), evaluate(module, xv, yv), bar):
            break
    return keeper.finish(bar)


@torch.no_grad()
def evaluate(module: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 8192) -> float:
    module.eval()
    if len(x) == 0:
        return float("nan")
    total = sum(nn.functional.mse_loss(module(x[s : s + chunk]), y[s : s + chunk], reduction="sum").item()
                for s in range(0, len(x), chunk))
    return total / y.numel()
