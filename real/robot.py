"""The face robot: servo bus + calibration + safety, with the twin's action space.

`send(command)` takes the same 25 normalised commands in [-1, 1] (face-spec order) that
`FaceTwin.apply` takes and returns the measured positions in the same space, so a policy trained on
the twin drives the robot unchanged. One `send` is one control tick: the command is slew-limited,
mapped to ticks, sync-written, and the present positions (with every servo's status bits) sync-read.

States: `active` (torque on, following commands) -> `returning` (watchdog: gliding to neutral) ->
`released` (torque off; the next `send` re-engages from where the face is) and `faulted` (a servo
reported a fault or vanished; motion stopped, torque off; `send` refuses until `connect()` again).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from facetwin.motion.constraints import limit_coupling
from facetwin.real.bus import ServoBus
from facetwin.real.calibration import Calibration
from facetwin.real.protocol import BusTimeoutError, ChecksumError, ProtocolError, ServoStatusError
from facetwin.real.safety import SafetyConfig, SafetyStop, SlewLimiter, Watchdog, emergency_stop


class FaceRobot:
    def __init__(
        self,
        port: str | None,
        calibration: Calibration | None = None,
        *,
        safety: SafetyConfig = SafetyConfig(),
        baudrate: int | None = None,
        timeout_ms: float = 20.0,
        retries: int = 3,
    ):
        self.calibration = calibration if calibration is not None else Calibration.from_spec()
        self.spec = self.calibration.spec
        self.safety = safety
        self.ids = list(self.calibration.ids)
        if port is None and not safety.dry_run:
            raise ValueError("FaceRobot needs a serial port (or SafetyConfig(dry_run=True))")
        limits = {s.bus_id: (s.min_ticks, s.max_ticks) for s in self.calibration.servos}
        self.bus = None if safety.dry_run else ServoBus(port, baudrate or self.spec.baudrate, timeout_ms=timeout_ms,
                                                        retries=retries, goal_limits=limits)
        self.slew = SlewLimiter(len(self.ids), safety.max_rate, safety.max_step)
        self.watchdog = Watchdog(safety.watchdog_s)
        self.state = "idle"
        self.fault: SafetyStop | None = None
        self.last_ticks = self.calibration.neutral_ticks
        self.last_measured = np.zeros(len(self.ids))
        self.last_measured_ticks = self.calibration.neutral_ticks
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._returned_at: float | None = None  # watchdog: when the face got back to neutral
        self._slew_done_at: float | None = None  # watchdog: when the neutral glide finished commanding

    # -- lifecycle ------------------------------------------------------------------------------
    def connect(self) -> FaceRobot:
        with self._lock:
            self.fault = None
            if self.bus is None:  # dry run: the face "is" wherever it was last commanded
                self.slew.reset(self.last_measured)
                self.state = "active"
                return self
            self.bus.open()
            try:
                missing = []
                for name, sid in zip(self.calibration.names, self.ids):
                    try:
                        self.bus.ping(sid)
                    except (BusTimeoutError, ChecksumError):
                        missing.append(f"{name} (ID {sid})")
                if missing:
                    raise BusTimeoutError(f"servo(s) not answering on {self.bus.port}: {', '.join(missing)}; check cables "
                                          f"and IDs (`facetwin real scan --port {self.bus.port}`)")
                self._engage()
            except BaseException:
                self.bus.close()
                raise
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="face-robot-watchdog", daemon=True)
            self._thread.start()
        return self

    def _engage(self) -> None:
        """Torque on from wherever the face is now, with the slew limiter starting there too."""
        ticks = self.bus.sync_read_positions(self.ids)
        self.last_measured = self.calibration.to_commands(np.array([ticks[i] for i in self.ids]))
        self.slew.reset(self.last_measured)
        self.bus.set_torque(self.ids, True)
        self.watchdog.feed()
        self._returned_at = self._slew_done_at = None
        self.state = "active"

    def close(self) -> None:
        """Stop the watchdog and release torque (also on Ctrl-C, via the context manager)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        with self._lock:
            if self.bus is not None:
                self.bus.close()
            self.state = "idle"

    def __enter__(self) -> FaceRobot:
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the action space -----------------------------------------------------------------------
    def send(self, command) -> np.ndarray:
        """One control tick towards `command` (25, in [-1, 1]); returns the measured positions (25,)."""
        target = self.spec.check_command(command, clip=True)
        with self._lock:
            self._check_usable()
            if self.state == "released":
                try:
                    self._engage()
                except (ServoStatusError, BusTimeoutError) as exc:
                    raise self._stop_for(exc) from exc
            self.state = "active"
            self._returned_at = self._slew_done_at = None
            self.watchdog.feed()
            return self._tick(target)

    def read_positions(self) -> np.ndarray:
        """Measured positions as normalised commands in the spec's order."""
        with self._lock:
            if self.bus is None:
                return self.last_measured.copy()
            self._check_usable()
            return self._measure()

    def move_to(self, command, *, timeout_s: float = 5.0, tolerance_ticks: int = 2) -> np.ndarray:
        """Glide to `command` at the control rate until every servo is within `tolerance_ticks` of it (or `timeout_s`)."""
        target = limit_coupling(self.spec.check_command(command, clip=True), self.spec)  # what the ticks will aim at
        period = 1.0 / self.safety.control_hz
        deadline = time.monotonic() + timeout_s
        measured = self.send(target)
        while time.monotonic() < deadline:
            if self.slew.reached(target) and np.all(np.abs(self.last_measured_ticks - self.last_ticks) <= tolerance_ticks):
                break
            time.sleep(period)
            measured = self.send(target)
        return measured

    def hold(self, command, seconds: float) -> np.ndarray:
        """Keep commanding `command` at the control rate for `seconds` (sleeping instead would trip the watchdog)."""
        period = 1.0 / self.safety.control_hz
        end = time.monotonic() + seconds
        measured = self.send(command)
        while time.monotonic() < end:
            time.sleep(min(period, max(0.0, end - time.monotonic())))
            measured = self.send(command)
        return measured

    def neutral(self, timeout_s: float = 5.0) -> np.ndarray:
        return self.move_to(np.zeros(len(self.ids)), timeout_s=timeout_s)

    def release(self) -> None:
        with self._lock:
            if self.bus is not None and self.state != "faulted":
                self.bus.set_torque(self.ids, False)
                self.state = "released"

    # -- internals ------------------------------------------------------------------------------
    def _check_usable(self) -> None:
        if self.fault is not None:
            raise SafetyStop(f"robot stopped after a fault ({self.fault.reason}); fix it, then connect() again",
                             self.fault.faults, self.fault.missing)
        if self.state == "idle":
            raise RuntimeError("robot not connected; call connect() or use it as a context manager")

    def _tick(self, target: np.ndarray) -> np.ndarray:
        # Coupling (mouth corners riding on the jaw) is enforced on every tick's output, not only the
        # target, so no intermediate slew step can stretch the corner cables past the limit either.
        out = limit_coupling(self.slew.step(target), self.spec)
        self.slew.output = out.copy()
        self.last_ticks = self.calibration.to_ticks(out)
        if self.bus is None:
            self.last_measured, self.last_measured_ticks = out, self.last_ticks
            return out.copy()
        # Unacknowledged: a servo that missed it shows up in the sync read that follows.
        self.bus.sync_write_goals(dict(zip(self.ids, self.last_ticks.tolist())), speed=self.safety.goal_speed,
                                  acceleration=self.safety.goal_acceleration)
        return self._measure()

    def _measure(self) -> np.ndarray:
        try:
            ticks = self.bus.sync_read_positions(self.ids)
        except (ServoStatusError, BusTimeoutError, ChecksumError) as exc:
            raise self._stop_for(exc) from exc
        self.last_measured_ticks = np.array([ticks[i] for i in self.ids])
        self.last_measured = self.calibration.to_commands(self.last_measured_ticks)
        return self.last_measured.copy()

    def _name(self, sid: int) -> str:
        return f"{self.calibration.names[self.ids.index(sid)]} (ID {sid})" if sid in self.ids else f"ID {sid}"

    def _stop_for(self, exc: Exception) -> SafetyStop:
        if isinstance(exc, ServoStatusError):
            what = "; ".join(f"{self._name(i)}: {b.describe()}" for i, b in sorted(exc.all_faults.items()))
            stop = emergency_stop(self.bus, self.ids, f"servo fault, motion stopped and torque released: {what}", exc.all_faults)
        else:
            missing = getattr(exc, "servo_ids", ()) or ((exc.servo_id,) if getattr(exc, "servo_id", None) is not None else ())
            what = ", ".join(self._name(i) for i in missing) or str(exc)
            stop = emergency_stop(self.bus, self.ids, f"servo(s) stopped answering, motion stopped and torque released: {what}",
                                  missing=missing)
        self.fault = stop
        self.state = "faulted"
        return stop

    def _watch(self) -> None:
        """Watchdog loop: commands stopped -> glide to neutral -> hold -> torque off."""
        period = 1.0 / self.safety.control_hz
        zeros = np.zeros(len(self.ids))
        while not self._stop.wait(period):
            with self._lock:
                if self.state not in ("active", "returning") or not self.watchdog.expired():
                    continue
                try:
                    self._return_step(zeros)
                except SafetyStop:
                    pass  # already stopped and released; the fault stays latched for the next send
                except ProtocolError as exc:  # the port itself failed: nothing left to command
                    self.fault = SafetyStop(f"bus failed while the watchdog returned the face to neutral: {exc}")
                    self.state = "faulted"

    def _return_step(self, zeros: np.ndarray) -> None:
        self.state = "returning"
        measured = self._tick(zeros)
        if not self.slew.reached(zeros):
            return
        now = time.monotonic()
        self._slew_done_at = self._slew_done_at or now
        # a servo that cannot get back (stuck linkage) must not keep the face powered forever
        if self._returned_at is None and (np.all(np.abs(measured) <= 0.02) or now - self._slew_done_at > 2.0):
            self._returned_at = now
        if self._returned_at is not None and now - self._returned_at >= self.safety.neutral_hold_s:
            self.bus.set_torque(self.ids, False)
            self.state = "released"
