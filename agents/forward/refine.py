"""Refinement at inference: a few gradient steps on the policy's answer through its own forward model.

The policy answers in one pass, for a whole distribution of targets at once; on a given face its answer
is a good start, not the optimum of its forward model: a few tens of steps from it lower the twin's
closed-loop error clearly (docs/experiments.md#refinement). Each step costs one forward and backward
pass of the distilled forward model, cheap enough at batch 1 that a live loop can afford tens of them
per frame; the landmark teacher it was distilled from is closer to the face and refines further, but a
step through it costs several times as much, so it serves offline evaluation. The
optimisation runs in tanh space from the policy's answer, with the face's coupling limit applied, so
every iterate is a command the face accepts.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from facetwin.agents.forward.direct import expression_loss


class Refiner:
    """refiner(expressions (N, 55), commands (N, S)) -> refined commands (N, S) in [-1, 1], coupling-limited."""

    def __init__(self, forward: nn.Module, coupling: nn.Module, steps: int = 30, lr: float = 0.05):
        if steps < 1:
            raise ValueError(f"refinement needs at least 1 step, got {steps}")
        self.forward, self.coupling, self.steps, self.lr = forward.eval(), coupling, steps, lr
        for p in self.forward.parameters():
            p.requires_grad_(False)

    def __call__(self, expressions: np.ndarray, commands: np.ndarray) -> np.ndarray:
        target = torch.as_tensor(np.asarray(expressions, np.float32))
        start = torch.as_tensor(np.asarray(commands, np.float32)).clamp(-0.97, 0.97)  # atanh stays finite
        with torch.inference_mode(False), torch.enable_grad():
            z = torch.atanh(start).clone().requires_grad_(True)
            opt = torch.optim.Adam([z], lr=self.lr)
            for _ in range(self.steps):
                opt.zero_grad(set_to_none=True)
                # summed over rows: each face's command moves on its own loss only
                expression_loss(self.forward(self.coupling(torch.tanh(z))), target, reduce=False).sum().backward()
                opt.step()
            return self.coupling(torch.tanh(z)).detach().numpy()
