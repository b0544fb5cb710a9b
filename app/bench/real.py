"""Command round trip on the emulated bus: one SYNC WRITE of 25 goals + one SYNC READ of 25 positions.

This is one `FaceRobot.send` tick minus the numpy around it, through the real vendor SDK and a pty.
The emulator holds the bus for every byte's time at the bus baud rate (8N1: 10 bits a byte), so the
figure is host stack + modelled wire time; `wire_ms` is the wire share alone, the floor on hardware
(where a USB adapter's latency timer adds its own, typically 1-16 ms, on top).

`soak=N` (`facetwin bench real --soak N`) adds `soak`: N `FaceRobot.send` ticks with faults injected at
random (facetwin.real.soak), its latency percentiles, fault counts and invariants; any invariant
violated makes the group fail (`error`), with the figures still in results.json.
"""

from __future__ import annotations

import time

import numpy as np

from facetwin.real import control_table as ct
from facetwin.real.bus import ServoBus
from facetwin.real.calibration import Calibration
from facetwin.real.emulator import ServoEmulator
from facetwin.real.soak import SoakConfig, run_soak
from facetwin.spec import FaceSpec


def run(quick: bool = False, soak: int | None = None, spec: FaceSpec | None = None) -> dict:
    cal = Calibration.from_spec(spec)
    ids = list(cal.ids)
    baudrate = cal.spec.baudrate
    n_ticks = 30 if quick else 200
    times = []
    with ServoEmulator(calibration=cal, baudrate=baudrate) as emu, ServoBus(emu.port, baudrate) as bus:
        rng = np.random.default_rng(0)
        for _ in range(n_ticks + 5):
            goals = cal.to_ticks(rng.uniform(-1, 1, len(ids)))
            t0 = time.perf_counter()
            bus.sync_write_goals(dict(zip(ids, goals.tolist())))
            bus.sync_read_positions(ids)
            times.append(time.perf_counter() - t0)
        retries = bus.retry_count
    ms = np.array(times[5:]) * 1e3  # the first ticks warm caches and the pty
    n = len(ids)
    wire_bytes = (8 + n * (1 + ct.GOAL_BLOCK_SIZE)) + (8 + n) + n * (6 + ct.PRESENT_POSITION.size)
    result = {
        "servos": n,
        "baudrate": baudrate,
        "ticks": int(len(ms)),
        "round_trip_mean_ms": float(ms.mean()),
        "round_trip_p50_ms": float(np.percentile(ms, 50)),
        "round_trip_p95_ms": float(np.percentile(ms, 95)),
        "max_control_hz_p95": float(1e3 / np.percentile(ms, 95)),
        "wire_ms": wire_bytes * 10.0 / baudrate * 1e3,
        "retries": int(retries),
    }
    if soak:
        report = run_soak(SoakConfig(round_trips=int(soak), progress=True), cal)
        result["soak"] = report
        if report["violations"]:
            result["error"] = f"soak: {report['violations']} invariant violation(s): " + "; ".join(report["examples"])
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True, soak=200), indent=2))
