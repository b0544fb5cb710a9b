"""A bounded soak of the bridge: N control ticks of 25 servos on the emulated bus, with faults injected at random.

One round trip is one `FaceRobot.send`: a SYNC WRITE of 25 goals and a SYNC READ of 25 positions through
the vendor SDK on a pty, as on hardware. All the time, replies are dropped and corrupted at random
(`drop_probability`, `corrupt_probability`): the bus's retries must absorb them. Now and then
(`fault_rate` per tick) a persistent fault starts on one servo chosen at random, through the emulator's
one fault mechanism (`emulator.Faults`), the kinds taken in turn:

    unplug    the servo leaves the bus            -> BusTimeoutError naming it
    checksum  every reply of the servo is corrupt -> ChecksumError naming it
    overload  the servo stalls under torque       -> ServoStatusError {id: OVERLOAD}
    overheat  / voltage: the servo's status bit   -> ServoStatusError {id: OVERHEAT / VOLTAGE}

What is checked, on every tick:
- limits: no goal the servos receive leaves the calibrated limits (the emulator counts them before its own
  clamp) and the robot's goal ticks stay inside them, while the commands range over [-1.5, 1.5] with a NaN
  vector now and then (which must be refused, `CommandError`, with nothing sent);
- surfaced: each injected fault stops the robot on the very tick after it with `SafetyStop`, whose cause is
  the fault's typed error naming the servo; a stop with no injected fault (the random faults outlasting
  every retry) must have a typed cause too;
- torque: after every stop, every servo that can hear the bus has torque off (the safety layer's
  `emergency_stop`); between faults, every servo has torque on; after `close()`, none has.
Then the fault is cleared (the servo replugged, the jam removed) and the robot connects again.

The slew limiter is opened up (`max_step` 2) so that every tick's command reaches the ticks unsoftened:
limits are what is under test, not the slew rate (tests/test_real_safety.py holds that).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from facetwin.real.calibration import Calibration
from facetwin.real.control_table import StatusError
from facetwin.real.emulator import Faults, ServoEmulator
from facetwin.real.protocol import BusTimeoutError, ChecksumError, ProtocolError, ServoStatusError
from facetwin.real.robot import FaceRobot
from facetwin.real.safety import SafetyConfig, SafetyStop
from facetwin.spec import CommandError

FAULT_KINDS = ("unplug", "checksum", "overload", "overheat", "voltage")
_STATUS_BIT = {"overload": StatusError.OVERLOAD, "overheat": StatusError.OVERHEAT, "voltage": StatusError.VOLTAGE}
SOAK_SAFETY = SafetyConfig(max_rate=1e3, max_step=2.0, watchdog_s=10.0)


@dataclass(frozen=True)
class SoakConfig:
    round_trips: int
    seed: int = 0
    fault_rate: float = 1e-3  # probability per tick that a persistent fault starts on one servo
    drop_probability: float = 5e-4  # each reply lost (transient; the bus retries): ~1 tick in 80 sees one
    corrupt_probability: float = 5e-4  # each reply's checksum wrong (transient; the bus retries)
    nan_rate: float = 0.01  # probability per tick of a NaN command vector (must be refused)
    timeout_ms: float = 20.0
    retries: int = 3
    progress: bool = False


def _expected(kind: str, sid: int, cause: BaseException | None) -> bool:
    """Is `cause` the typed error that fault `kind` on servo `sid` must surface as?"""
    if kind == "unplug":
        return isinstance(cause, BusTimeoutError) and cause.servo_ids == (sid,)
    if kind == "checksum":
        return isinstance(cause, ChecksumError) and cause.servo_id == sid
    return isinstance(cause, ServoStatusError) and cause.all_faults == {sid: _STATUS_BIT[kind]}


def _inject(faults: Faults, kind: str, sid: int) -> None:
    if kind == "unplug":
        faults.unplugged.add(sid)
    elif kind == "checksum":
        faults.corrupt_ids.add(sid)
    elif kind == "overload":
        faults.overload.add(sid)
    else:
        faults.status_bits[sid] = _STATUS_BIT[kind]


def _clear(faults: Faults) -> None:
    faults.unplugged.clear()
    faults.corrupt_ids.clear()
    faults.overload.clear()
    faults.status_bits.clear()


def _ms(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64) * 1e3
    if a.size == 0:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "max_ms": float(a.max())}


def run_soak(config: SoakConfig, calibration: Calibration | None = None) -> dict:
    """Run the soak; the report holds latencies, counts and `invariants` (every count there must be 0)."""
    cal = calibration if calibration is not None else Calibration.from_spec()
    ids = list(cal.ids)
    n = len(ids)
    rng = np.random.default_rng(config.seed)
    faults = Faults(drop_probability=config.drop_probability, corrupt_probability=config.corrupt_probability,
                    seed=config.seed)
    lo, hi = cal.min_ticks, cal.max_ticks
    tick_s: list[float] = []
    stop_s: list[float] = []
    recover_s: list[float] = []
    injected = dict.fromkeys(FAULT_KINDS, 0)
    surfaced = dict.fromkeys(FAULT_KINDS, 0)
    bad = {"goals_outside_limits": 0, "ticks_outside_limits": 0, "faults_not_surfaced": 0, "wrong_error": 0,
           "untyped_errors": 0, "nan_commands_sent": 0, "torque_on_after_stop": 0, "torque_off_while_running": 0,
           "torque_on_after_close": 0, "reconnect_failures": 0}
    examples: list[str] = []  # the first few violations, in words
    transient_causes: list[str] = []  # the first few stops that no injected fault explains
    transient_stops = rejected = reconnect_retries = 0

    def violation(key: str, what: str) -> None:
        bad[key] += 1
        if len(examples) < 5:
            examples.append(what)

    start = time.perf_counter()
    with ServoEmulator(calibration=cal, baudrate=cal.spec.baudrate, faults=faults) as emu:
        robot = FaceRobot(emu.port, cal, safety=SOAK_SAFETY, timeout_ms=config.timeout_ms, retries=config.retries)
        robot.connect()
        try:
            for k in range(config.round_trips):
                fault: tuple[str, int] | None = None
                if rng.random() < config.fault_rate:
                    kind = FAULT_KINDS[sum(injected.values()) % len(FAULT_KINDS)]
                    fault = (kind, int(ids[rng.integers(n)]))
                    _inject(faults, *fault)
                    injected[kind] += 1
                if rng.random() < config.nan_rate and fault is None:
                    command = np.full(n, np.nan)
                    before = emu.packets_seen
                    try:
                        robot.send(command)
                        violation("nan_commands_sent", f"tick {k}: a NaN command was accepted")
                    except CommandError:
                        rejected += 1
                    if emu.packets_seen != before:
                        violation("nan_commands_sent", f"tick {k}: a NaN command put packets on the bus")
                    continue
                command = rng.uniform(-1.5, 1.5, n)
                t0 = time.perf_counter()
                try:
                    robot.send(command)
                    tick_s.append(time.perf_counter() - t0)
                    if fault is not None:
                        violation("faults_not_surfaced", f"tick {k}: {fault[0]} on servo {fault[1]} went unnoticed")
                    if not all(emu.torques().values()):
                        violation("torque_off_while_running", f"tick {k}: a servo lost torque without a fault")
                except SafetyStop as stop:
                    stop_s.append(time.perf_counter() - t0)
                    cause = stop.__cause__
                    if not isinstance(cause, (BusTimeoutError, ChecksumError, ServoStatusError)):
                        violation("untyped_errors", f"tick {k}: stop caused by {cause!r}")
                    if fault is None:
                        transient_stops += 1
                        if len(transient_causes) < 5:
                            transient_causes.append(f"tick {k}: {cause!r}")
                    elif _expected(*fault, cause):
                        surfaced[fault[0]] += 1
                    else:
                        violation("wrong_error", f"tick {k}: {fault[0]} on servo {fault[1]} surfaced as {cause!r}")
                    deaf = faults.unplugged
                    left_on = [sid for sid, on in emu.torques().items() if on and sid not in deaf]
                    if left_on:
                        violation("torque_on_after_stop", f"tick {k}: torque still on for {left_on} after the stop")
                    _clear(faults)
                    t1 = time.perf_counter()
                    for attempt in range(5):
                        try:
                            robot.connect()
                            break
                        except (BusTimeoutError, ChecksumError, ServoStatusError):
                            reconnect_retries += 1  # a random fault during the 25 pings: try again
                    else:
                        violation("reconnect_failures", f"tick {k}: could not reconnect after {fault}")
                        break
                    recover_s.append(time.perf_counter() - t1)
                except (ProtocolError, OSError, ValueError, RuntimeError) as exc:
                    violation("untyped_errors", f"tick {k}: {exc!r} escaped send()")
                    break
                if np.any(robot.last_ticks < lo) or np.any(robot.last_ticks > hi):
                    violation("ticks_outside_limits", f"tick {k}: goal ticks outside the calibration")
                if config.progress and (k + 1) % 10_000 == 0:
                    print(f"[soak] {k + 1}/{config.round_trips} round trips, {sum(injected.values())} faults, "
                          f"{time.perf_counter() - start:.0f} s", flush=True)
        finally:
            robot.close()
        if any(emu.torques().values()):
            violation("torque_on_after_close", "torque still on after close()")
        bad["goals_outside_limits"] = emu.goals_outside_limits
        if emu.goals_outside_limits and len(examples) < 5:
            examples.append(f"the servos received {emu.goals_outside_limits} goal(s) beyond their limits, e.g. "
                            f"(id, goal, min, max) = {emu.servos.last_goal_outside}")
        transient = {"replies_dropped": emu.replies_dropped, "replies_corrupted": emu.replies_corrupted,
                     "retries": robot.bus.retry_count, "stops": transient_stops, "reconnect_retries": reconnect_retries}
    return {
        "round_trips": config.round_trips,
        "completed": len(tick_s),
        "servos": n,
        "seed": config.seed,
        "wall_s": time.perf_counter() - start,
        "round_trip": _ms(tick_s),
        "fault_to_stop": _ms(stop_s),
        "reconnect": _ms(recover_s),
        "faults_injected": injected,
        "faults_surfaced": surfaced,
        "transient": transient,
        "nan_commands_refused": rejected,
        "invariants": bad,
        "violations": int(sum(bad.values())),
        "examples": examples,
        "transient_causes": transient_causes,
    }
