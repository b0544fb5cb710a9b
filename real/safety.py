"""Safety for the face robot: what every command passes through, and what happens when something fails.

- limits: commands are clipped to [-1, 1], the spec's couplings (mouth corners vs jaw) enforced on each
  tick by the robot (`facetwin.motion.constraints.limit_coupling`, the rule the motion library uses),
  and goals clamped to the calibrated ticks in `Calibration.to_ticks`;
- slew: each control tick moves a command by at most `max_rate` per second (and `max_step` per tick,
  so a late tick cannot jump), because silicone skin tears faster than a servo notices;
- watchdog: no command for `watchdog_s` -> glide back to neutral, hold, then release torque;
- faults: a servo reporting overload/overheat/voltage/over-current, or vanishing from the bus, stops
  every servo where it stands and releases torque (`emergency_stop`), then `SafetyStop` reports it;
- dry run: `SafetyConfig.dry_run` makes the robot compute and log goals without opening a port.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from facetwin.real.bus import ServoBus
from facetwin.real.control_table import StatusError
from facetwin.real.protocol import ProtocolError


@dataclass(frozen=True)
class SafetyConfig:
    max_rate: float = 4.0  # normalised command units per second: a full -1 -> +1 swing takes 0.5 s
    max_step: float = 0.2  # normalised units per control tick, whatever the time since the last tick
    watchdog_s: float = 1.0  # commands stopped this long -> back to neutral, then torque off
    neutral_hold_s: float = 0.3  # time at neutral before the watchdog releases torque
    control_hz: float = 50.0  # rate of the robot's own loops (neutral glide, watchdog)
    goal_speed: int = 0  # servo goal speed, ticks/s (0 = the servo's maximum; the slew limit governs)
    goal_acceleration: int = 0  # servo acceleration, x100 ticks/s^2 (0 = the servo's maximum)
    dry_run: bool = False

    def __post_init__(self):
        if self.max_rate <= 0 or self.max_step <= 0 or self.watchdog_s <= 0 or self.control_hz <= 0:
            raise ValueError("SafetyConfig: max_rate, max_step, watchdog_s and control_hz must be positive")


class SafetyStop(RuntimeError):
    """Motion was stopped and torque released; `faults` maps servo IDs to what they reported."""

    def __init__(self, reason: str, faults: Mapping[int, StatusError] | None = None, missing: Sequence[int] = ()):
        self.reason = reason
        self.faults = dict(faults or {})
        self.missing = tuple(missing)
        super().__init__(reason)


class SlewLimiter:
    """Moves an output towards each new target by at most max_rate * dt (and max_step) per call."""

    def __init__(self, n: int, max_rate: float, max_step: float, clock=time.monotonic):
        self.max_rate, self.max_step, self.clock = max_rate, max_step, clock
        self.output = np.zeros(n)
        self._last: float | None = None

    def reset(self, position: np.ndarray) -> None:
        self.output = np.clip(np.asarray(position, dtype=np.float64), -1.0, 1.0).copy()
        self._last = None

    def step(self, target: np.ndarray, now: float | None = None) -> np.ndarray:
        now = self.clock() if now is None else now
        dt = self.max_step / self.max_rate if self._last is None else max(0.0, now - self._last)
        self._last = now
        limit = min(self.max_rate * dt, self.max_step)
        self.output = self.output + np.clip(np.asarray(target) - self.output, -limit, limit)
        return self.output.copy()

    def reached(self, target: np.ndarray, tol: float = 1e-9) -> bool:
        return bool(np.all(np.abs(self.output - np.asarray(target)) <= tol))


@dataclass
class Watchdog:
    timeout_s: float
    clock: object = field(default=time.monotonic, repr=False)
    last_feed: float = field(default=0.0)

    def __post_init__(self):
        self.last_feed = self.clock()

    def feed(self) -> None:
        self.last_feed = self.clock()

    def expired(self) -> bool:
        return self.clock() - self.last_feed > self.timeout_s


def emergency_stop(bus: ServoBus, ids: Sequence[int], reason: str, faults: Mapping[int, StatusError] | None = None,
                   missing: Sequence[int] = ()) -> SafetyStop:
    """Freeze every servo where it stands, release torque, and return the report to raise.

    Goal = present first, because a servo whose torque is cut mid-move coasts while one still holding
    torque would finish its move and tug the skin against the limp one.
    """
    reachable = [i for i in ids if i not in set(missing)]
    try:
        present = bus.sync_read_positions(reachable, check_status=False)
        bus.sync_write_goals(present)
    except ProtocolError:
        pass  # a servo that cannot answer cannot be frozen either; torque off still goes to all
    try:
        bus.release_all()
    except ProtocolError:
        pass
    return SafetyStop(reason, faults, missing)
