"""The neural baselines: an inverse-model MLP and a plain KAN, both expression (55) -> commands (25).

`MLPPolicy` is the inverse model of Eva / EMO-style self-modelling faces: an MLP straight from the
target expression to motor commands. `KANPolicy` is the same map as a KAN without attention.
Both scale their input like every facetwin policy (features.input_scale) and end in tanh.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from facetwin.expression import EXPRESSION_DIM

from facetwin.agents.policies.features import input_scale
from facetwin.agents.policies.kan import KAN


class MLPPolicy(nn.Module):
    def __init__(self, n_servos: int, hidden: Sequence[int] = (128, 128), dropout: float = 0.0):
        super().__init__()
        self.register_buffer("scale", torch.from_numpy(input_scale()))
        layers: list[nn.Module] = []
        width = EXPRESSION_DIM
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers += [nn.Linear(width, n_servos), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * self.scale)


class KANPolicy(nn.Module):
    def __init__(self, n_servos: int, hidden: Sequence[int] = (32,), kan_num: int = 5, kan_k: int = 3):
        super().__init__()
        self.register_buffer("scale", torch.from_numpy(input_scale()))
        self.kan = KAN([EXPRESSION_DIM, *hidden, n_servos], num=kan_num, k=kan_k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.kan(x * self.scale))

    @torch.no_grad()
    def update_grids(self, x: torch.Tensor) -> None:
        self.kan.update_grid(x * self.scale)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def mlp_hidden_for(n_params: int, n_servos: int, layers: int = 2) -> int:
    """Width h of an MLP with `layers` hidden layers of h units whose parameter count is closest to n_params."""
    def count(h: int) -> int:
        return (EXPRESSION_DIM + 1) * h + (layers - 1) * (h + 1) * h + (h + 1) * n_servos

    return min(range(1, 4096), key=lambda h: abs(count(h) - n_params))
