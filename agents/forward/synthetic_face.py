"""A made-up face for tests and benchmarks: a fixed, smooth, random map from 25 commands to an expression.

Policies learn the inverse (expression -> commands), as they do from twin rollouts. Coefficients land
in [0, 1] like MediaPipe's; head angles come mostly from the last three (neck) commands, in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetwin.expression import N_BLENDSHAPES


@dataclass(frozen=True)
class SyntheticFace:
    n_servos: int = 25
    seed: int = 1234

    def _weights(self):
        rng = np.random.default_rng(self.seed)
        s = self.n_servos
        return (
            rng.normal(0, 1.2, (s, N_BLENDSHAPES)),  # linear drive of each coefficient
            rng.normal(0, 1.0, (s, 16)),  # a smooth nonlinear part through 16 hidden features
            rng.normal(0, 0.6, (16, N_BLENDSHAPES)),
            rng.normal(-1.5, 0.5, N_BLENDSHAPES),  # most coefficients rest near zero
            np.diag([35.0, 20.0, 15.0]) + rng.normal(0, 2.0, (3, 3)),  # neck -> yaw, pitch, roll (deg)
        )

    def expressions(self, commands: np.ndarray) -> np.ndarray:
        lin, w1, w2, bias, neck = self._weights()
        c = np.asarray(commands, np.float64)
        logits = c @ lin + np.tanh(c @ w1) @ w2 + bias
        head = np.tanh(c[:, -3:] @ neck.T / 40.0) * 40.0
        return np.concatenate([1.0 / (1.0 + np.exp(-logits)), head], axis=1).astype(np.float32)

    def sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(expressions (n, 55), commands (n, 25)) with commands uniform in [-1, 1]."""
        commands = np.random.default_rng(seed).uniform(-1, 1, (n, self.n_servos)).astype(np.float32)
        return self.expressions(commands), commands
