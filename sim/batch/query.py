"""Settling many commands from the neutral face at once: the aggregation rounds' twin query on a BatchTwin.

`batch_query()` returns a callable with the contract of facetwin.agents.forward.aggregation.twin_query
(commands (N, S) -> expressions (N, 55) float32, landmarks (N, 478, 3) float32 pixels), each command
settled from the neutral face. On the CPU the coefficients come from LiteRT, so the answers equal the
serial query's (tests/test_sim_batch_query.py).
"""

from __future__ import annotations

import os

import numpy as np

from facetwin.sim.batch.twin import BatchTwin
from facetwin.spec import FaceSpec

DEFAULT_WORLDS = 256


def batch_query(spec: FaceSpec | None = None, bundle: str | os.PathLike | None = None, n_worlds: int = DEFAULT_WORLDS,
                device: str = "cpu", network: str | None = None):
    twin = BatchTwin(n_worlds, device, spec=spec, bundle=bundle,
                     network=network or ("litert" if str(device) == "cpu" else "torch"))

    def query(commands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        commands = np.asarray(commands, np.float64)
        expressions = np.empty((len(commands), 55), np.float32)
        landmarks = np.empty((len(commands), 478, 3), np.float32)
        for start in range(0, len(commands), twin.n):
            part = commands[start:start + twin.n]
            worlds = np.arange(len(part))
            twin.reset(worlds, readout=False)
            state = twin.apply(part, worlds)
            m = len(part)
            expressions[start:start + m, :52] = state.blendshapes[:m].cpu().numpy()
            expressions[start:start + m, 52:] = state.head[:m].cpu().numpy()
            landmarks[start:start + m] = state.landmarks[:m].cpu().numpy()
        return expressions, landmarks

    query.twin = twin  # callers may close it: query.twin.close()
    return query
