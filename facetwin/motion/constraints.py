"""Limits a servo command must keep, shared by named poses, the expert strategy and babbling.

Each function returns a corrected copy. Every limit here describes a convex set of commands, so a
straight (or minimum-jerk) blend of two compliant keyframes stays compliant: keyframes are enough.
"""

from __future__ import annotations

import numpy as np

from facetwin.spec import FaceSpec


def mirror_pairs(spec: FaceSpec) -> list[tuple[int, int]]:
    """(right, left) index pairs of servos whose names differ only by the side (eye_right_yaw / eye_left_yaw)."""
    pairs = []
    for i, name in enumerate(spec.names):
        if "right" in name:
            twin = name.replace("right", "left")
            if twin in spec.names:
                pairs.append((i, spec.index(twin)))
    return pairs


def limit_coupling(command: np.ndarray, spec: FaceSpec) -> np.ndarray:
    """Scale coupled servos (the mouth corners) down so |c| + max(partner, 0) <= limit holds.

    The corner skin rides on the jaw: an open jaw already stretches the corner cables, so the corner
    command gives way, never the jaw (the jaw opening carries more of the expression).
    """
    out = np.array(command, dtype=np.float64)
    for i, servo in enumerate(spec.servos):
        if servo.coupling is None:
            continue
        j = spec.index(servo.coupling.with_servo)
        if max(out[j], 0.0) > servo.coupling.limit:  # only if the limit is below the partner's own range
            out[j] = servo.coupling.limit
        allowed = servo.coupling.limit - max(out[j], 0.0)
        out[i] = np.clip(out[i], -allowed, allowed)
    return out


def bound_pair_difference(command: np.ndarray, pairs, low: float, high: float) -> np.ndarray:
    """Pull each (a, b) pair symmetrically about its mean until low <= c[a] - c[b] <= high."""
    out = np.array(command, dtype=np.float64)
    for a, b in pairs:
        mean = 0.5 * (out[a] + out[b])
        diff = float(np.clip(out[a] - out[b], low, high))
        out[a], out[b] = mean + 0.5 * diff, mean - 0.5 * diff
    return out
