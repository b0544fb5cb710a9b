"""What the face does when the person's face is lost: hold the last expression, then ease to neutral.

Short losses (a blink of the detector, a hand passing) should not make the robot flinch, so the last
command is held for ``hold_s``; a person who has left should not leave the robot frozen mid-smile, so
the command then eases to neutral over ``ease_s``. The command (not the expression) is eased because
command 0 is the robot's neutral pose by the face spec's definition, whatever the policy maps a
neutral-looking person to. Time is the frames' own timestamps, so a video replays identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FaceLossConfig:
    hold_s: float = 0.5  # keep the last command this long after the face was last seen
    ease_s: float = 1.0  # then glide to neutral over this long

    def __post_init__(self):
        if self.hold_s < 0 or self.ease_s < 0:
            raise ValueError(f"hold_s and ease_s must be >= 0, got {self.hold_s}, {self.ease_s}")


class FaceLossHold:
    """Remembers the last command given for a seen face and what to command while none is seen."""

    def __init__(self, n_servos: int, config: FaceLossConfig | None = None):
        self.config = config or FaceLossConfig()
        self.n = n_servos
        self._last = np.zeros(n_servos)
        self._seen_at: float | None = None

    def saw_face(self, command: np.ndarray, timestamp: float) -> np.ndarray:
        self._last = np.asarray(command, dtype=np.float64).copy()
        self._seen_at = float(timestamp)
        return self._last.copy()

    def weight(self, timestamp: float) -> float:
        """How much of the last command is still held: 1 while holding, smoothly down to 0 after."""
        if self._seen_at is None:
            return 0.0
        cfg = self.config
        past_hold = float(timestamp) - self._seen_at - cfg.hold_s
        if past_hold <= 0:
            return 1.0
        if cfg.ease_s == 0 or past_hold >= cfg.ease_s:
            return 0.0
        u = past_hold / cfg.ease_s
        return 1.0 - u * u * (3.0 - 2.0 * u)  # smoothstep: no velocity jump at either end

    def without_face(self, timestamp: float) -> np.ndarray:
        return self._last * self.weight(timestamp)
