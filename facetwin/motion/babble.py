"""Motor babbling: the random baseline the expert strategy is measured against.

Keyframes are uniform in [-1, 1] per servo, independently; only the spec's coupling limit (a hardware
safety limit on the real face, not a plausibility rule) is applied, and it can be switched off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetwin.motion.constraints import limit_coupling
from facetwin.motion.trajectory import PROFILES, Segment, sample
from facetwin.spec import FaceSpec, default_spec


@dataclass(frozen=True)
class BabbleConfig:
    transition: str = "min_jerk"  # or "step"
    move_s: tuple[float, float] = (0.2, 0.6)  # ignored by "step"
    hold_s: tuple[float, float] = (0.1, 0.5)
    respect_coupling: bool = True  # scale mouth corners down as the jaw opens (keeps the real cables safe)

    def __post_init__(self):
        if self.transition not in PROFILES:
            raise ValueError(f"BabbleConfig: transition {self.transition!r} not in {PROFILES}")
        for name in ("move_s", "hold_s"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"BabbleConfig: {name} must be (low, high) with 0 <= low <= high")


class BabbleStrategy:
    """Uniform random keyframes per servo, joined by minimum-jerk moves or steps, with holds.

    Deterministic in (seed, episode_index) like ExpertStrategy.
    """

    name = "babble"

    def __init__(
        self, spec: FaceSpec | None = None, seed: int | np.random.Generator = 0, config: BabbleConfig | None = None
    ):
        self.spec = spec or default_spec()
        self.seed = int(seed.integers(2**63)) if isinstance(seed, np.random.Generator) else int(seed)
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        self.config = config or BabbleConfig()

    def segments(self, episode_index: int, duration_s: float) -> list[Segment]:
        if episode_index < 0:
            raise ValueError(f"episode_index must be >= 0, got {episode_index}")
        cfg = self.config
        rng = np.random.default_rng([self.seed, episode_index])
        out, t = [], 0.0
        while t <= duration_s:
            target = rng.uniform(-1.0, 1.0, self.spec.n)
            if cfg.respect_coupling:
                target = limit_coupling(target, self.spec)
            move = 0.0 if cfg.transition == "step" else float(rng.uniform(*cfg.move_s))
            seg = Segment(target, move, float(rng.uniform(*cfg.hold_s)))
            out.append(seg)
            t += seg.duration_s
        return out

    def episode(self, episode_index: int, n_frames: int, fps: float) -> np.ndarray:
        """(n_frames, n_servos) commands at `fps`, starting from neutral; deterministic per (seed, index)."""
        segs = self.segments(episode_index, max(n_frames - 1, 0) / fps)
        return sample(np.zeros(self.spec.n), segs, fps, n_frames, profile=self.config.transition)
