"""The observation both face envs share: target expression, current expression, servo positions.

Head angles enter divided by HEAD_SCALE_DEG so a 30-degree turn weighs like a full blendshape (the same
scale the perceiver smooths head angles in); blendshapes and servo positions enter as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from gymnasium import spaces

from facetwin.expression import EXPRESSION_NAMES, N_BLENDSHAPES

HEAD_SCALE_DEG = 30.0
# Bounds the clip enforces: blendshapes are probabilities; a head turned 180 degrees is the most a
# camera can report; measured servo positions may overshoot the commanded [-1, 1] a little.
HEAD_BOUND = 180.0 / HEAD_SCALE_DEG
SERVO_BOUND = 2.0


@dataclass(frozen=True)
class ObservationLayout:
    """Where each block of the flat observation lives."""

    n_servos: int

    @property
    def target(self) -> slice:
        return slice(0, len(EXPRESSION_NAMES))

    @property
    def current(self) -> slice:
        return slice(len(EXPRESSION_NAMES), 2 * len(EXPRESSION_NAMES))

    @property
    def servos(self) -> slice:
        return slice(2 * len(EXPRESSION_NAMES), 2 * len(EXPRESSION_NAMES) + self.n_servos)

    @property
    def size(self) -> int:
        return 2 * len(EXPRESSION_NAMES) + self.n_servos

    def names(self, servo_names: tuple[str, ...]) -> tuple[str, ...]:
        return (
            tuple(f"target.{n}" for n in EXPRESSION_NAMES)
            + tuple(f"current.{n}" for n in EXPRESSION_NAMES)
            + tuple(f"servo.{n}" for n in servo_names)
        )

    @cached_property
    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        expr_lo = np.r_[np.zeros(N_BLENDSHAPES), np.full(3, -HEAD_BOUND)]
        expr_hi = np.r_[np.ones(N_BLENDSHAPES), np.full(3, HEAD_BOUND)]
        low = np.r_[expr_lo, expr_lo, np.full(self.n_servos, -SERVO_BOUND)].astype(np.float32)
        high = np.r_[expr_hi, expr_hi, np.full(self.n_servos, SERVO_BOUND)].astype(np.float32)
        return low, high

    def space(self) -> spaces.Box:
        return spaces.Box(*self._bounds, dtype=np.float32)

    def build(self, target: np.ndarray, current: np.ndarray, servo_positions: np.ndarray) -> np.ndarray:
        """target, current: 55-vectors with head in degrees; servo_positions: measured, normalised.
        Batches (N, 55), (N, 55), (N, 25) give (N, size)."""
        obs = np.concatenate([scale_expression(target), scale_expression(current), servo_positions], axis=-1).astype(np.float32)
        return np.clip(obs, *self._bounds)


def scale_expression(vector: np.ndarray) -> np.ndarray:
    """55-vectors (..., 55) with head angles divided by HEAD_SCALE_DEG (the observation's units)."""
    out = np.asarray(vector, dtype=np.float64).copy()
    out[..., N_BLENDSHAPES:] /= HEAD_SCALE_DEG
    return out


def unscale_expression(vector: np.ndarray) -> np.ndarray:
    """Back from observation units to degrees (works on (..., 55) batches)."""
    out = np.asarray(vector, dtype=np.float64).copy()
    out[..., N_BLENDSHAPES:] *= HEAD_SCALE_DEG
    return out
