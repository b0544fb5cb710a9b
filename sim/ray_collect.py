"""Collection spread over a Ray cluster: groups of episodes become Ray tasks, the writer stays here.

Each task computes a group of consecutive episode indices (one episode on the sim backend, a
BatchTwin's worth on the batch backend) with a collector its worker process builds once and keeps.
An episode depends only on (strategy, seed, index), so whichever worker computes it, the driver's
writer adds exactly the rows of a single-process run, in index order. A worker that dies is rerun by
Ray up to `Engine.ray_retries` times; past that the run stops with CollectionInterrupted, the episodes
before the lost one already committed, and `--resume` continues after them.

Ray is optional (the `ray` extra) and imported only here and only when used.
"""

from __future__ import annotations

import socket
from collections import deque
from urllib.parse import urlsplit

from facetwin.sim.collector import CollectConfig, CollectionInterrupted, Engine, groups, timed_group

EXTRA = "ray"
CONNECT_TIMEOUT_S = 3.0  # a cluster address that does not accept a connection within this is an error
DEFAULT_PORTS = {"": 6379, "ray": 10001}  # the GCS port, and Ray Client's


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"--ray needs Ray, which is not installed ({exc}); install the extra: "
                          f"pip install 'facetwin[{EXTRA}]'") from exc
    return ray


def connect(address: str, timeout_s: float | None = None) -> None:
    """Join the cluster at `address` ("local": start one on this machine; "auto": the one running here).

    Does nothing when this process is already connected (a test's local cluster, a notebook's).
    """
    ray = import_ray()
    if ray.is_initialized():
        return
    timeout_s = CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
    if address == "local":
        ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        return
    if address == "auto":
        try:
            ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
        except ConnectionError as exc:
            raise ValueError(f"--ray auto found no running Ray cluster on this machine ({exc}); start one with "
                             "`ray start --head`, give its address, or use --ray local") from exc
        return
    host, port = _host_port(address)
    hint = f"check the address, start the head with `ray start --head --port {port}`, or use --ray local"
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise ValueError(f"the Ray cluster at {address!r} does not answer ({host}:{port}, {timeout_s:g} s: {exc}); {hint}") from exc
    try:  # something listens there, but it may not be Ray
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        raise ValueError(f"no Ray cluster answers at {address!r} ({type(exc).__name__}: {exc}); {hint}") from exc


def _host_port(address: str) -> tuple[str, int]:
    scheme = "ray" if address.startswith("ray://") else ""
    parts = urlsplit(address if scheme else f"//{address}")
    if not parts.hostname:
        raise ValueError(f"--ray {address!r} is no address: give HOST:PORT, ray://HOST:PORT, auto or local")
    try:
        return parts.hostname, parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:  # a port that is not a number
        raise ValueError(f"--ray {address!r}: {exc}; give HOST:PORT, ray://HOST:PORT, auto or local") from exc


# -- the task --------------------------------------------------------------------------------------
_collectors: dict = {}  # per worker process: one collector per (config, spec, bundle, engine), built once


def collect_group(config: CollectConfig, indices: list[int], spec, bundle: str, engine: Engine):
    key = (config, bundle, engine.backend, engine.n_worlds, None if spec is None else spec.fingerprint)
    if key not in _collectors:
        _collectors[key] = engine.collector(config, spec, bundle)
    return timed_group(_collectors[key], indices)


def episodes_over_ray(config: CollectConfig, indices, spec, bundle: str, engine: Engine):
    """Yield (frames, timing) for `indices` in index order, computed by Ray tasks."""
    ray = import_ray()
    task = ray.remote(num_cpus=1, max_retries=engine.ray_retries)(collect_group)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    todo = iter(groups(indices, engine.group))
    pending: deque = deque()
    # Shared arguments go to the object store once, not once per task.
    args = [ray.put(a) for a in (config, spec, bundle, engine)]

    def submit() -> None:
        for group in todo:
            pending.append((group, task.remote(args[0], group, *args[1:])))
            return

    for _ in range(2 * cpus):  # a bounded window, as with local workers: results wait for the writer in order
        submit()
    try:
        while pending:
            group, ref = pending.popleft()
            try:
                done = ray.get(ref)
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as exc:
                raise CollectionInterrupted(
                    f"a Ray task for episodes {group[0]}..{group[-1]} failed after {engine.ray_retries} retries "
                    f"({type(exc).__name__}); the episodes before it are saved: run again with --resume") from exc
            submit()
            yield from done
    finally:
        for _, ref in pending:
            ray.cancel(ref, force=True)
