"""Interactive calibration: jog each servo on the bus, mark its neutral and safe limits, keep the result.

Line-based (input()), so it works over ssh and in tests with scripted answers. For each servo:

    +  / -        jog one step towards the positive / negative command (as the spec describes it)
    j N           jog N ticks along the positive-command direction (N may be negative)
    n / a / b     mark neutral / the negative-command limit / the positive-command limit here
    r             reverse the mounting direction (if `+` moved the face the wrong way)
    s             accept and go to the next servo;  q  accept and finish;  x  abort without saving

Jogs stay within the servo's 180-degree travel around tick 2048; the servo's torque is on while jogging.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from facetwin.real import control_table as ct
from facetwin.real.bus import ServoBus
from facetwin.real.calibration import Calibration, validate

HELP = "+/- jog, j N jog N ticks, n neutral, a neg-limit, b pos-limit, r reverse, s next, q finish, x abort"


class CalibrationAborted(Exception):
    pass


def calibrate_interactively(
    bus: ServoBus,
    base: Calibration,
    *,
    names: list[str] | None = None,
    step: int = 10,
    read_line: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
) -> Calibration:
    """Walk through the servos (all, or `names`), starting from `base`; returns the new calibration."""
    cal = base
    half = int(base.spec.travel_deg / 360.0 * ct.TICKS_PER_REV / 2)
    lo_travel, hi_travel = ct.CENTRE_TICKS - half, ct.CENTRE_TICKS + half
    write(HELP)
    for s in [x for x in base.servos if names is None or x.name in names]:
        spec_servo = base.spec.servo(s.name)
        write(f"\n{s.name} (ID {s.bus_id}): + should {spec_servo.positive}; - should {spec_servo.negative}")
        bus.set_torque([s.bus_id], True)
        here = bus.read(s.bus_id, ct.PRESENT_POSITION)
        cur = replace(s)
        while True:
            line = read_line(f"{s.name} @ {here} [neutral {cur.neutral_ticks}, min {cur.min_ticks}, max {cur.max_ticks}, "
                             f"dir {cur.direction:+d}]> ").strip()
            cmd, _, arg = line.partition(" ")
            delta = {"+": step, "-": -step}.get(cmd)
            if cmd == "j":
                try:
                    delta = int(arg)
                except ValueError:
                    write("j needs a whole number of ticks, e.g. `j -25`")
                    continue
            if delta is not None:
                here = int(min(max(here + cur.direction * delta, lo_travel), hi_travel))
                bus.write(s.bus_id, ct.GOAL_POSITION, here)
            elif cmd == "n":
                cur = replace(cur, neutral_ticks=here)
            elif cmd in ("a", "b"):
                # a = the negative-command end, b = the positive-command end; which is min/max depends on direction
                positive_end = cmd == "b"
                if (cur.direction > 0) == positive_end:
                    cur = replace(cur, max_ticks=here)
                else:
                    cur = replace(cur, min_ticks=here)
            elif cmd == "r":
                cur = replace(cur, direction=-cur.direction)
            elif cmd in ("s", "q"):
                try:
                    validate(cal.with_servo(cur), s.name)
                except ValueError as exc:
                    write(f"not consistent yet: {exc}")
                    continue
                cal = cal.with_servo(cur)
                break
            elif cmd == "x":
                bus.set_torque([s.bus_id], False)
                raise CalibrationAborted("calibration aborted; nothing saved")
            else:
                write(HELP)
        bus.set_torque([s.bus_id], False)
        if cmd == "q":
            break
    return cal


def summarise(cal: Calibration) -> list[str]:
    """One line per servo whose calibrated limits cut the spec's range (the robot will reach less than the twin)."""
    out = []
    for s, (lo, hi) in zip(cal.servos, cal.reach()):
        if lo > -0.999 or hi < 0.999:
            out.append(f"{s.name}: limits let commands reach only [{lo:+.2f}, {hi:+.2f}] of [-1, +1]")
    return out

