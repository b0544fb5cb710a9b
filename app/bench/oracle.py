"""`facetwin bench oracle`: the pixel-path oracle on the shared photos, today's way and in lockstep, in one process.

Both sides search the same faces with the same seeds (face k: seed k) and budgets, and both include the warm
start: `FAST_BUDGET` fast-path evaluations a face, then `DEFAULT_PIXEL_BUDGET` pixel evaluations from its answer
(as `facetwin eval --pixels` runs the oracle).

today: one face at a time on one FaceTwin, candidate after candidate settled, each pixel candidate read by
`FaceTwin.render` then MediaPipe in IMAGE mode, one frame at a time (the path before the pixel readout,
`bench camera`'s `_Today`).
lockstep: every face's searches in step on one BatchTwin of faces x population worlds (`oracle_lockstep`), the
fast warm start and then the pixel search, each round one `PixelReadout` batch spread over `WORKERS` processes;
once per engine of `ENGINES` (MediaPipe, and LiteRT from the twin's tracking crop), each read as
`facetwin eval --pixels --readout-engine` reads it (`closed_loop.oracle_readout`).

Seconds a face are wall time of the searches; opening the readout's workers and building the BatchTwin are
one-off costs, reported apart as `setup_s`. CPU seconds a face count every thread and readout worker: on a
machine other jobs share, they say what the wall times would come to on idle cores. Every winner is scored the
same way, settled from the neutral face and read by `FaceTwin.render` + MediaPipe, so the MAEs compare whatever
engine a search read with. The load average is recorded, since other jobs on the machine move wall times.
"""

from __future__ import annotations

import os
import time

import numpy as np

from facetwin.agents.evaluation.closed_loop import oracle_readout
from facetwin.agents.evaluation.metrics import expression_error
from facetwin.agents.evaluation.oracle import (
    DEFAULT_BUDGET,
    DEFAULT_PIXEL_BUDGET,
    OracleConfig,
    optimise,
    optimise_through_pixels,
    reach,
)
from facetwin.agents.evaluation.oracle_lockstep import lockstep_batch, optimise_through_pixels_lockstep
from facetwin.app.bench.camera import _Today
from facetwin.expression import Expression
from facetwin.human_faces import shared_photo_targets
from facetwin.sim.twin import FaceTwin

FAST_BUDGET = DEFAULT_BUDGET  # the warm start `facetwin eval --pixels` runs
WORKERS = min(2, os.cpu_count() or 1)  # one readout process per core of the 2-core machine the target is set on
# The lockstep's engines: MediaPipe, the reference, and LiteRT (which reads from the twin's own tracking crop).
ENGINES = ("mediapipe", "litert")


class _Counted:
    """A PixelReadout that adds up the wall seconds of its reads and the CPU seconds its worker processes spent."""

    def __init__(self, readout):
        self.readout, self.wall_s, self.cpu_s = readout, 0.0, 0.0

    def read(self, poses):
        t0 = time.perf_counter()
        found = self.readout.read(poses)
        self.wall_s += time.perf_counter() - t0
        self.cpu_s += self.readout.times.cpu_s
        return found


def run(quick: bool = False) -> dict:
    n_faces, fast_budget, pixel_budget = (2, 60, 28) if quick else (14, FAST_BUDGET, DEFAULT_PIXEL_BUDGET)
    faces = shared_photo_targets(n_faces)
    names, people = [name for name, _ in faces], [target for _, target in faces]
    configs = [OracleConfig(budget=pixel_budget, seed=k) for k in range(len(people))]
    load = {"start": os.getloadavg()[0]}
    twin, reference = FaceTwin(), FaceTwin()
    today = _Today(reference)
    try:
        reach(twin, np.zeros(twin.spec.n))
        neutral_pose = twin.data.qpos.copy()[None]
        (neutral,) = today.read(neutral_pose)  # the first read opens the GL context and landmarker graph: kept out
        optimise(twin, people[0], config=OracleConfig(budget=30))  # cma's import, LiteRT's first call
        lockstep = {}
        for engine in ENGINES:
            lockstep[engine] = _lockstep(twin, people, configs, fast_budget, engine)
            load[f"after_lockstep_{engine}"] = os.getloadavg()[0]

        rows, found, cpu0 = [], [], time.process_time()
        for name, target, config in zip(names, people, configs):
            t0 = time.perf_counter()
            warm, pixel = optimise_through_pixels(twin, target, today, config=config, fast_budget=fast_budget)
            found.append(pixel)
            rows.append({"face": name, "today_s": time.perf_counter() - t0, "today_fast_s": warm.seconds,
                         "neutral_mae": expression_error(target, neutral).blendshape_mae})
        today_cpu_s = time.process_time() - cpu0
        load["end"] = os.getloadavg()[0]
        for row, target, mine in zip(rows, people, found):  # every winner scored by the same reference reading
            row["today_mae"] = _score(twin, today, target, mine.command)
        for engine, side in lockstep.items():
            for row, target, (_, pixel) in zip(rows, people, side.pop("results")):
                row[f"lockstep_{engine}_mae"] = _score(twin, today, target, pixel.command)
                row[f"lockstep_{engine}_mae_own_readout"] = pixel.error.blendshape_mae
    finally:
        today.close()
        twin.close()
        reference.close()
    n = len(rows)
    mean = lambda key: float(np.mean([r[key] for r in rows]))  # noqa: E731
    today_s, today_fast_s = sum(r["today_s"] for r in rows) / n, sum(r["today_fast_s"] for r in rows) / n
    out = {
        "faces": n,
        "fast_budget": fast_budget,
        "pixel_budget": pixel_budget,
        "workers": WORKERS,
        "warm_start_included": True,
        "today_s_per_face": today_s,
        "today_fast_s_per_face": today_fast_s,
        "today_pixel_s_per_face": today_s - today_fast_s,
        "today_cpu_s_per_face": today_cpu_s / n,
        "today_mae": mean("today_mae"),
        "neutral_mae": mean("neutral_mae"),
    }
    for engine, side in lockstep.items():
        gaps = [r[f"lockstep_{engine}_mae"] - r["today_mae"] for r in rows]
        out[f"lockstep_{engine}"] = {
            **side,
            "speedup": today_s / side["s_per_face"],
            "pixel_speedup": (today_s - today_fast_s) / side["pixel_s_per_face"],
            "cpu_ratio": (today_cpu_s / n) / side["cpu_s_per_face"],
            "mae": mean(f"lockstep_{engine}_mae"),
            "mae_own_readout": mean(f"lockstep_{engine}_mae_own_readout"),
            # per-face differences: two CMA-ES paths part at the first differing reading, so faces differ either way
            "mae_gap_mean": float(np.mean(gaps)),
            "mae_gap_sd": float(np.std(gaps, ddof=1)) if n > 1 else 0.0,
        }
    out.update(load_average=load, per_face=rows, targets={"speedup": 4.0})
    return out


def _lockstep(twin: FaceTwin, people: list[Expression], configs: list[OracleConfig], fast_budget: int,
              engine: str) -> dict:
    """Every face's oracle in lockstep, read through `engine`: seconds and CPU seconds a face, and the results."""
    t0 = time.perf_counter()
    readout = oracle_readout(twin, engine, WORKERS)
    batch = lockstep_batch(len(people), twin.spec)
    try:
        readout.read(twin.data.qpos.copy()[None])  # the workers' first read opens their GL contexts and engines
        setup_s = time.perf_counter() - t0
        counted = _Counted(readout)
        t0, cpu0 = time.perf_counter(), time.process_time()
        results = optimise_through_pixels_lockstep(batch, people, counted, configs=configs, fast_budget=fast_budget)
        wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0 + counted.cpu_s
    finally:
        batch.close()
        readout.close()
    n, fast_s = len(people), sum(fast.seconds for fast, _ in results)
    return {"crop": readout.crop, "s_per_face": wall_s / n, "fast_s_per_face": fast_s / n,
            "pixel_s_per_face": (wall_s - fast_s) / n,
            "cpu_s_per_face": cpu_s / n, "read_wall_s_per_face": counted.wall_s / n, "setup_s": setup_s,
            "results": results}


def _score(twin: FaceTwin, reference: _Today, target: Expression, command: np.ndarray) -> float:
    """A winner's MAE as the path before read it: settled from neutral, `FaceTwin.render` + MediaPipe."""
    reach(twin, command)
    (seen,) = reference.read(twin.data.qpos.copy()[None])
    return expression_error(target, seen if seen.face_found else Expression.empty()).blendshape_mae
