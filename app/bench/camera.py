"""`facetwin bench camera`: pixel-true readouts of the twin per second, today's path against the batched
pixel readout, measured in one process, interleaved round by round so a busy machine slows both alike.

today: `FaceTwin.render(512)` (mujoco.Renderer) then MediaPipe's landmarker, one frame at a time.
readout: `PixelReadout` (`BatchRenderer`, then the engine): in this process at
batch 1 and batch N, and over one worker process per core at batch N. Every path reads the same settled
poses; `agreement` says how far their coefficients are from today's. `cpu_ms_per_readout` is CPU time
(this process's threads, or the workers' for the worker path): steadier than wall time on a shared machine.
`render_cpu_ms_per_frame` splits a render's CPU time by drawing the same poses with parts left out.
"""

from __future__ import annotations

import os
import time

import mujoco
import numpy as np

from facetwin.expression import Expression
from facetwin.perception import FacePerceiver
from facetwin.sim.landmark_engines import EngineError
from facetwin.sim.pixel_readout import PixelReadout, ReadoutError
from facetwin.sim.render import BatchRenderer
from facetwin.sim.twin import FaceTwin

SIZE = 512  # the render `facetwin render` shows


def _settled_poses(twin: FaceTwin, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    poses = []
    for command in rng.uniform(-1, 1, size=(n, twin.spec.n)) * 0.5:
        twin.reset(readout=False)
        twin.apply(command, readout=False)
        poses.append(twin.data.qpos.copy())
    twin.reset(readout=False)
    return np.array(poses)


class _Today:
    """The path on main before the batched readout: the twin's renderer, then MediaPipe, frame by frame."""

    def __init__(self, twin: FaceTwin):
        self.twin = twin
        self.perceiver = FacePerceiver(twin.bundle, mode="image")
        self.render_s = self.landmarks_s = 0.0

    def read(self, poses: np.ndarray) -> list[Expression]:
        out = []
        for q in poses:
            t0 = time.perf_counter()
            self.twin.data.qpos[:] = q
            mujoco.mj_forward(self.twin.model, self.twin.data)
            image = self.twin.render(SIZE)
            t1 = time.perf_counter()
            out.append(self.perceiver.perceive(image))
            self.render_s += t1 - t0
            self.landmarks_s += time.perf_counter() - t1
        return out

    def close(self) -> None:
        self.perceiver.close()


def render_profile(twin: FaceTwin, poses: np.ndarray, rounds: int) -> dict:
    """CPU ms per 512 px frame of each way of drawing the same poses, interleaved round by round: what a
    render's time is spent on (the skin's texture, the skin, the untrimmed backdrop) and what tiles save."""
    import copy

    untextured = copy.deepcopy(twin.model)
    untextured.mat_texid[untextured.skin_matid[0]] = -1
    renderers = {
        "tiles_2x2": BatchRenderer(twin.model, SIZE, max_batch=4),
        "one_per_pass": BatchRenderer(twin.model, SIZE, max_batch=1),
        "untrimmed_backdrop": BatchRenderer(twin.model, SIZE, max_batch=1, trim=False),
        "skin_untextured": BatchRenderer(untextured, SIZE, max_batch=1),
        "no_skin": BatchRenderer(twin.model, SIZE, max_batch=1),
    }
    renderers["no_skin"].option.flags[mujoco.mjtVisFlag.mjVIS_SKIN] = 0

    def twin_render(qs):
        for q in qs:
            twin.data.qpos[:] = q
            mujoco.mj_forward(twin.model, twin.data)
            twin.render(SIZE)

    draws = {"twin_render": twin_render, "tiles_2x2": renderers["tiles_2x2"].render}
    for name, r in renderers.items():
        if name != "tiles_2x2":
            draws[name] = lambda qs, r=r: [r.render(q) for q in qs]
    cpu = dict.fromkeys(draws, 0.0)
    for draw in draws.values():
        draw(poses[:2])  # warm-up
    for _ in range(rounds):
        for name, draw in draws.items():
            start = time.process_time()
            draw(poses)
            cpu[name] += time.process_time() - start
    for r in renderers.values():
        r.close()
    return {name: 1e3 * c / (rounds * len(poses)) for name, c in cpu.items()}


def _one_by_one(readout: PixelReadout):
    return lambda poses: [readout.read(q)[0] for q in poses]


def _mae(a: list[Expression], b: list[Expression]) -> float:
    return float(np.mean([np.abs(x.blendshapes - y.blendshapes).mean() for x, y in zip(a, b)]))


def _open_torch(twin: FaceTwin, device: str) -> PixelReadout | str:
    try:
        return PixelReadout(twin.model, engine="torch", device=device, bundle=twin.bundle)
    except (EngineError, ReadoutError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {exc}"


def run(quick: bool = False, seed: int = 0) -> dict:
    batch = 8 if quick else 16
    rounds = 1 if quick else 3
    workers = os.cpu_count() or 1
    twin = FaceTwin(blendshapes=False)
    poses = _settled_poses(twin, batch, seed)
    today = _Today(twin)
    local = PixelReadout(twin.model, bundle=twin.bundle)
    paths = {"today": today.read, "readout_batch1": _one_by_one(local), f"readout_batch{batch}": local.read}
    pool = None
    if workers > 1:
        pool = PixelReadout(twin.model, bundle=twin.bundle, workers=workers)
        paths[f"readout_batch{batch}_workers{workers}"] = pool.read
    devices = ["cpu"]
    try:
        import torch

        devices += ["cuda"] if torch.cuda.is_available() else []
    except ImportError:
        pass
    torch_engines, unavailable = {}, {}
    for device in devices:
        opened = _open_torch(twin, device)
        if isinstance(opened, str):
            unavailable[f"torch_{device}"] = opened
            continue
        torch_engines[device] = opened
        paths[f"torch_{device}_batch1"] = _one_by_one(opened)
        paths[f"torch_{device}_batch{batch}"] = opened.read

    seen = {name: read(poses) for name, read in paths.items()}  # warm-up, and what each path reads
    today.render_s = today.landmarks_s = 0.0
    seconds = dict.fromkeys(paths, 0.0)
    cpu = dict.fromkeys(paths, 0.0)  # this process's threads only: worker processes' CPU is not in it
    worker_cpu = 0.0
    split_render = split_landmarks = 0.0
    for _ in range(rounds):
        for name, read in paths.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            read(poses)
            seconds[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - start_cpu
            if name == f"readout_batch{batch}":
                split_render += local.times.render_s
                split_landmarks += local.times.landmarks_s
            if pool is not None and name.endswith(f"_workers{workers}"):
                worker_cpu += pool.times.cpu_s
    frames = batch * rounds
    per_s = {name: frames / s for name, s in seconds.items()}
    results = {
        "gl_renderer": local.gl_renderer,
        "devices": devices,
        "batch": batch,
        "workers": workers,
        "frames_per_path": frames,
        "readouts_per_s": per_s,
        "cpu_ms_per_readout": {
            **{name: 1e3 * c / frames for name, c in cpu.items() if "workers" not in name},
            **({f"readout_batch{batch}_workers{workers}": 1e3 * worker_cpu / frames} if pool is not None else {}),
        },
        "speedup_vs_today": {name: rate / per_s["today"] for name, rate in per_s.items() if name != "today"},
        "split_ms_per_frame": {
            "today_render": 1e3 * today.render_s / frames,
            "today_landmarker": 1e3 * today.landmarks_s / frames,
            f"readout_batch{batch}_render": 1e3 * split_render / frames,
            f"readout_batch{batch}_landmarker": 1e3 * split_landmarks / frames,
        },
        "agreement_mae_vs_today": {name: _mae(seen[name], seen["today"]) for name in paths if name != "today"},
        "targets": {"speedup_vs_today": 4.0, "agreement_mae_vs_today": 0.0076},
    }
    if unavailable:
        results["unavailable"] = unavailable
    results["render_cpu_ms_per_frame"] = render_profile(twin, poses, rounds + 1)
    for readout in [local, pool, *torch_engines.values()]:
        if readout is not None:
            readout.close()
    today.close()
    twin.close()
    return results
