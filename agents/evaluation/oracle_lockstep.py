"""The oracle for many faces at once: every face's CMA-ES in lockstep on one BatchTwin.

Each round asks every face's search for its commands (its starts, then a generation, at the end its winner's
check), settles all of them at once on a BatchTwin, one world per command, and reads all of them as one
batch: the BatchTwin's own fast readout, or one `PixelReadout` batch. The searches are the per-face ones
(`oracle.FaceSearch`); only who settles and reads their commands changes. So a readout's workers get
faces x population frames a round instead of one face's 13, and the rollout thread pool settles every face's
candidates together, where one face's search leaves the workers idle while its candidates settle.

Worlds: face k of a group owns a block of `min(population, batch.n)` worlds and its commands go to its block
in order (more commands than the block holds: in parts, the block's worlds again). Blocks start at the neutral
face; a world settles from where the face's previous command in it left it, or from the neutral face for the
starts and the check. No world
ever holds another face's command, so each face's answer is the one its search finds alone on the same
BatchTwin (`oracle.optimise(..., batch=)`). Faces beyond batch.n // block go in later groups.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from facetwin.agents.evaluation.oracle import (
    DEFAULT_BUDGET,
    DEFAULT_PIXEL_BUDGET,
    FaceSearch,
    OracleConfig,
    OracleResult,
    feasible,
    population,
    run_searches,
)
from facetwin.expression import Expression

if TYPE_CHECKING:
    from facetwin.sim.batch import BatchTwin
    from facetwin.spec import FaceSpec

# Faces searched in lockstep by `facetwin eval --pixels` unless told otherwise: a round's frames (faces x 13
# renders of 512 px, about 10 MB a face) are in memory at once, so longer folders and videos go in groups.
LOCKSTEP_FACES = 16


def lockstep_batch(n_faces: int, spec: FaceSpec, bundle=None) -> BatchTwin:
    """A BatchTwin that holds one generation of each of `n_faces` faces: n_faces x population worlds on the CPU,
    the fast readout through LiteRT (coefficients equal to FaceTwin's on equal landmarks)."""
    from facetwin.sim.batch import BatchTwin

    if n_faces < 1:
        raise ValueError(f"a lockstep oracle needs at least one face, got {n_faces}")
    return BatchTwin(n_faces * population(spec.n), "cpu", spec=spec, bundle=bundle, network="litert")


def optimise_lockstep(
    batch: BatchTwin,
    targets: list[Expression],
    starts: list[dict[str, np.ndarray] | None] | None = None,
    configs: list[OracleConfig] | None = None,
    readout=None,
) -> list[OracleResult]:
    """`oracle.optimise` for every target, the searches in step on `batch` (see the module's docstring).

    starts, configs: one per target (None: neutral only, the default config). readout: a PixelReadout of
    the face's model (every round one batch of it), or None for the fast path. Each result's `seconds` is
    its group's wall time shared equally among the group's faces.
    """
    n = len(targets)
    starts = list(starts) if starts is not None else [None] * n
    configs = list(configs) if configs is not None else [OracleConfig() for _ in range(n)]
    if len(starts) != n or len(configs) != n:
        raise ValueError(f"one starts dict and one config per target: got {n} targets, {len(starts)} starts, "
                         f"{len(configs)} configs")
    block = min(population(batch.spec.n), batch.n)
    per_group = batch.n // block
    kind = "fast" if readout is None else "pixels"
    results: list[OracleResult] = []
    for first in range(0, n, per_group):
        t0 = time.perf_counter()
        group = range(first, min(first + per_group, n))
        searches = [FaceSearch(targets[k], starts[k], configs[k], batch.spec.n) for k in group]
        batch.reset(np.arange(len(searches) * block), readout=False)  # no search settles from another's last face
        run_searches(searches, _on_batch(batch, block, readout))
        seconds = (time.perf_counter() - t0) / len(searches)
        results += [search.finish(seconds, kind) for search in searches]
    return results


def optimise_through_pixels_lockstep(
    batch: BatchTwin,
    targets: list[Expression],
    readout,
    starts: list[dict[str, np.ndarray] | None] | None = None,
    configs: list[OracleConfig] | None = None,
    fast_budget: int = DEFAULT_BUDGET,
) -> list[tuple[OracleResult, OracleResult]]:
    """`oracle.optimise_through_pixels` for every target, both searches in lockstep on `batch`: the fast ones
    (`fast_budget` evaluations each), then the pixel ones from their answers and `starts`."""
    from dataclasses import replace

    n = len(targets)
    starts = list(starts) if starts is not None else [None] * n
    configs = list(configs) if configs is not None else [OracleConfig(budget=DEFAULT_PIXEL_BUDGET) for _ in range(n)]
    fast = optimise_lockstep(batch, targets, starts, [replace(c, budget=fast_budget) for c in configs])
    pixel_starts = [{"fast_oracle": f.command, **(s or {})} for f, s in zip(fast, starts)]
    return list(zip(fast, optimise_lockstep(batch, targets, pixel_starts, configs, readout=readout)))


def _on_batch(batch: BatchTwin, block: int, readout):
    """Settle search i's commands in worlds [i * block, (i + 1) * block), every search's at once; read them on the
    batch's fast path, or all of a call's poses as one batch of `readout`."""
    def settle_and_read(groups, from_neutral):
        found: list[list] = [[None] * len(xs) for _, xs in groups]
        poses, where = [], []
        rounds = max(-(-len(xs) // block) for _, xs in groups)
        for r in range(rounds):
            worlds, commands, slots = [], [], []
            for g, (i, xs) in enumerate(groups):
                for j, x in enumerate(xs[r * block:(r + 1) * block]):
                    worlds.append(i * block + j)
                    commands.append(feasible(x, batch))
                    slots.append((g, r * block + j))
            if not worlds:
                continue
            worlds = np.array(worlds)
            if from_neutral:
                batch.reset(worlds, readout=False)
            state = batch.apply(np.stack(commands), worlds, readout=readout is None)
            applied = batch.command[worlds].copy()
            if readout is None:
                seen = state.expressions()
                for (g, j), w, c in zip(slots, worlds, applied):
                    found[g][j] = (c, seen[w])
            else:
                poses.append(batch.physics.qpos()[worlds].copy())
                for (g, j), c in zip(slots, applied):
                    found[g][j] = (c, None)
                    where.append((g, j))
        if readout is not None:
            for (g, j), seen in zip(where, readout.read(np.concatenate(poses))):
                found[g][j] = (found[g][j][0], seen)
        return found

    return settle_and_read
