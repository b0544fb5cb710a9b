"""The One-Euro filter (Casiez, Roussel & Vogel, CHI 2012) over expression vectors.

A low-pass filter whose cutoff rises with the signal's speed: still faces lose their frame-to-frame
jitter (cutoff near ``min_cutoff``) while a fast smile passes with little lag (cutoff grows by
``beta`` per unit/s of speed). Works element-wise on vectors of any length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    """Tuning. Units: cutoffs in Hz; ``beta`` in Hz per (signal unit / s).

    Defaults suit signals spanning about [0, 1] (blendshape coefficients) at 15-60 fps: lower
    ``min_cutoff`` for steadier rests, raise ``beta`` for less lag in fast motion.
    """

    min_cutoff: float = 1.5
    beta: float = 2.0
    d_cutoff: float = 1.0
    # Used when timestamps are missing or do not advance.
    default_rate_hz: float = 30.0

    def __post_init__(self):
        if self.min_cutoff <= 0 or self.d_cutoff <= 0:
            raise ValueError(f"min_cutoff and d_cutoff must be > 0 Hz, got {self.min_cutoff}, {self.d_cutoff}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if self.default_rate_hz <= 0:
            raise ValueError(f"default_rate_hz must be > 0, got {self.default_rate_hz}")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Stateful filter: call it with each new sample in time order; ``reset()`` between takes."""

    def __init__(self, config: OneEuroConfig | None = None):
        self.config = config or OneEuroConfig()
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float | None = None) -> np.ndarray:
        """Filter sample ``x`` taken at ``t`` seconds; returns an array shaped like ``x`` (float64)."""
        x = np.asarray(x, dtype=np.float64)
        cfg = self.config
        if self._x is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        if x.shape != self._x.shape:
            raise ValueError(f"sample shape {x.shape} differs from the filter's {self._x.shape}; reset() first")
        dt = 1.0 / cfg.default_rate_hz
        if t is not None and self._t is not None and t > self._t:
            dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(cfg.d_cutoff, dt) * (dx - self._dx)
        cutoff = cfg.min_cutoff + cfg.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t if t is not None else (None if self._t is None else self._t + dt)
        return self._x.copy()
