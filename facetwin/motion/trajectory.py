"""Keyframes to sampled command trajectories: minimum-jerk moves (or steps) with holds.

Minimum jerk (Flash & Hogan 1985): s(t) = 10t^3 - 15t^4 + 6t^5 for t in [0, 1]; zero velocity and
acceleration at both ends, peak velocity 1.875 x the mean, reached at t = 0.5. Because s stays in
[0, 1], every sample is a convex blend of its two keyframes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PROFILES = ("min_jerk", "step")
MIN_JERK_PEAK_SPEED = 1.875  # max ds/dt of the minimum-jerk profile


def min_jerk(t) -> np.ndarray:
    """The minimum-jerk profile s(t), with t clipped to [0, 1]."""
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    return t**3 * (10.0 + t * (-15.0 + 6.0 * t))


def min_jerk_duration(distance: float, max_speed: float) -> float:
    """Shortest minimum-jerk move over `distance` whose peak speed stays at or below `max_speed`."""
    if max_speed <= 0:
        raise ValueError(f"max_speed must be positive, got {max_speed}")
    return MIN_JERK_PEAK_SPEED * abs(distance) / max_speed


@dataclass(frozen=True)
class Segment:
    """Move to `target` over `move_s` seconds, then hold it for `hold_s` seconds."""

    target: np.ndarray  # (n_servos,)
    move_s: float
    hold_s: float

    @property
    def duration_s(self) -> float:
        return self.move_s + self.hold_s


def sample(
    start: np.ndarray, segments: Sequence[Segment], fps: float, n_frames: int, profile: str = "min_jerk"
) -> np.ndarray:
    """Sample the trajectory at frame times k / fps, k = 0 .. n_frames - 1 -> (n_frames, n_servos).

    Frame 0 is `start`; after the last segment the final target is held. `step` jumps to each target at
    the start of its segment (the baseline a servo's own speed limit smooths on hardware).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown transition profile {profile!r}; choose one of {PROFILES}")
    if fps <= 0 or n_frames < 0:
        raise ValueError(f"need fps > 0 and n_frames >= 0, got fps={fps}, n_frames={n_frames}")
    start = np.asarray(start, dtype=np.float64)
    times = np.arange(n_frames) / fps
    out = np.repeat(start[None], n_frames, axis=0)
    prev, t0 = start, 0.0
    for seg in segments:
        target = np.asarray(seg.target, dtype=np.float64)
        if target.shape != start.shape:
            raise ValueError(f"segment target has shape {target.shape}, start has {start.shape}")
        inside = times >= t0
        if profile == "step" or seg.move_s <= 0:
            s = np.ones(int(inside.sum()))
        else:
            s = min_jerk((times[inside] - t0) / seg.move_s)
        out[inside] = prev + s[:, None] * (target - prev)
        prev, t0 = target, t0 + seg.duration_s
        if n_frames == 0 or t0 > times[-1]:
            break
    return out
