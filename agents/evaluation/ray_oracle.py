"""The per-face oracle searches as Ray tasks (`facetwin eval --ray`).

A search depends only on its target, starts and config (it begins by settling every start from the
neutral face), so a task on another process or machine returns what the closed loop's own twin would.
Each worker process builds its twin once and keeps it. Ray is the optional `ray` extra.
"""

from __future__ import annotations

from facetwin.agents.evaluation.oracle import OracleConfig, OracleResult, optimise
from facetwin.expression import Expression
from facetwin.spec import FaceSpec

_twins: dict = {}  # per worker process: one FaceTwin per (spec fingerprint, bundle)


def search(spec: FaceSpec, bundle: str, target: Expression, starts: dict, config: OracleConfig) -> OracleResult:
    from facetwin.sim.twin import FaceTwin

    key = (spec.fingerprint, spec.name, bundle)
    if key not in _twins:
        _twins[key] = FaceTwin(spec, bundle)
    return optimise(_twins[key], target, starts, config)


class _Future:
    def __init__(self, ray, ref):
        self._ray, self._ref = ray, ref

    def result(self) -> OracleResult:
        return self._ray.get(self._ref)


class RayOracles:
    """Submit oracle searches to the Ray cluster at `address` ("local", "auto" or HOST:PORT)."""

    def __init__(self, address: str, spec: FaceSpec, bundle: str):
        from facetwin.sim.ray_collect import connect, import_ray

        connect(address)
        self._ray = ray = import_ray()
        self._task = ray.remote(num_cpus=1)(search)
        self._spec, self._bundle = ray.put(spec), ray.put(str(bundle))

    def submit(self, target: Expression, starts: dict, config: OracleConfig) -> _Future:
        return _Future(self._ray, self._task.remote(self._spec, self._bundle, target, starts, config))
