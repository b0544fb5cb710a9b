"""`facetwin bench camera`: pixel-true readouts of the twin per second, today's path against the batched
pixel readout, measured in one process, interleaved round by round so a busy machine slows both alike.

today: `FaceTwin.render(512)` (mujoco.Renderer) then MediaPipe's landmarker, one frame at a time.
readout: `PixelReadout` (`BatchRenderer`, then the engine): in this process at
batch 1 and batch N, and over one worker process per core at batch N. litert: the same with the LiteRT
engine at batch N, in this process and over the workers, with the detector (IMAGE mode) and with the
tracking crop from the twin's own projected landmarks (`crop="twin"`, no detector), and with that crop drawn
straight at the landmark network's size (`crop="drawn"`, no 512 px frame). Every path reads the
same settled poses; `agreement` says how far their coefficients are from today's. `cpu_ms_per_readout` is
CPU time (this process's threads, or the workers' for the worker paths, whose parent's share is
`parent_cpu_ms_per_readout`): steadier than wall time on a shared machine.
`render_cpu_ms_per_frame` splits a render's CPU time by drawing the same poses with parts left out.
`litert_agreement` holds the LiteRT engine to MediaPipe's IMAGE mode on renders of the named poses and
random commands (the full path, and the tracking crop from the twin's projected landmarks, beside the
tracking crop from MediaPipe's own landmarks for scale) and on the shared photos.
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


def litert_agreement(twin: FaceTwin, n_random: int, seed: int = 0) -> dict:
    """The LiteRT landmarker against MediaPipe's IMAGE mode, per frame (`facetwin bench landmarker`'s measures).

    renders: `FaceTwin.render(512)` of every named pose and ``n_random`` random commands, read by the full
    IMAGE path (``image_mode``), from the tracking crop of the twin's projected landmarks (``twin_crop``)
    and from that of MediaPipe's own landmarks of the render (``own_crop``: what its VIDEO mode would
    crop). photos: the shared human photos, IMAGE path.
    """
    from facetwin.app.bench.landmarker import compare, mediapipe_read, photo_frames
    from facetwin.human_faces import shared_faces
    from facetwin.motion.poses import NAMED_POSES, named_pose
    from facetwin.perception.litert_landmarker import LiteRTFaceLandmarker

    commands = [named_pose(name, twin.spec) for name in NAMED_POSES]
    commands += list(np.random.default_rng(seed).uniform(-1, 1, size=(n_random, twin.spec.n)) * 0.5)
    frames, projected = [], []
    for command in commands:
        twin.reset(readout=False)
        twin.apply(command, readout=False)
        frames.append(twin.render(SIZE))
        projected.append(twin.landmarks_px((SIZE, SIZE))[:, :2] / SIZE)
    twin.reset(readout=False)
    landmarker = LiteRTFaceLandmarker(twin.bundle)
    reference = mediapipe_read(frames, twin.bundle)
    reads = {
        "image_mode": landmarker.detect(frames),
        "twin_crop": landmarker.track(frames, projected),
        "own_crop": landmarker.track(frames, [e.landmarks[:, :2] / SIZE for e in reference]),
    }
    out = {f"renders_{name}": compare(reference, [r.expression() for r in read]).as_dict() for name, read in reads.items()}
    out["renders"] = len(frames)
    photos_dir = shared_faces()
    if (photos_dir / "images").is_dir():
        photos = photo_frames(photos_dir)
        out["photos_image_mode"] = compare(mediapipe_read(photos, twin.bundle),
                                           [r.expression() for r in landmarker.detect(photos)]).as_dict()
    return out


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
    pools: dict[str, PixelReadout] = {}  # worker paths: their CPU time is the workers'
    in_process = {f"readout_batch{batch}": local}  # batch-N paths in this process: their render / landmarker split
    opened = [local]

    def add(name: str, **settings) -> None:
        readout = PixelReadout(twin.model, bundle=twin.bundle, **settings)
        opened.append(readout)
        paths[name] = readout.read
        (pools if settings.get("workers") else in_process)[name] = readout

    if workers > 1:
        add(f"readout_batch{batch}_workers{workers}", workers=workers)
    for crop, label in (("detector", "litert"), ("twin", "litert_twin"), ("drawn", "litert_drawn")):
        add(f"{label}_batch{batch}", engine="litert", crop=crop)
        if workers > 1:
            add(f"{label}_batch{batch}_workers{workers}", engine="litert", crop=crop, workers=workers)
    devices = ["cpu"]
    try:
        import torch

        devices += ["cuda"] if torch.cuda.is_available() else []
    except ImportError:
        pass
    torch_engines, unavailable = {}, {}
    for device in devices:
        engine = _open_torch(twin, device)
        if isinstance(engine, str):
            unavailable[f"torch_{device}"] = engine
            continue
        torch_engines[device] = engine
        paths[f"torch_{device}_batch1"] = _one_by_one(engine)
        paths[f"torch_{device}_batch{batch}"] = engine.read

    seen = {name: read(poses) for name, read in paths.items()}  # warm-up, and what each path reads
    today.render_s = today.landmarks_s = 0.0
    seconds = dict.fromkeys(paths, 0.0)
    cpu = dict.fromkeys(paths, 0.0)  # this process's threads only: worker processes' CPU is not in it
    worker_cpu = dict.fromkeys(pools, 0.0)
    split = {name: [0.0, 0.0] for name in in_process}
    for _ in range(rounds):
        for name, read in paths.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            read(poses)
            seconds[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - start_cpu
            if name in in_process:
                split[name][0] += in_process[name].times.render_s
                split[name][1] += in_process[name].times.landmarks_s
            if name in pools:
                worker_cpu[name] += pools[name].times.cpu_s
    frames = batch * rounds
    per_s = {name: frames / s for name, s in seconds.items()}
    results = {
        "gl_renderer": local.gl_renderer,
        "devices": devices,
        "batch": batch,
        "workers": workers,
        "frames_per_path": frames,
        "readouts_per_s": per_s,
        "cpu_ms_per_readout": {name: 1e3 * (worker_cpu[name] if name in pools else c) / frames for name, c in cpu.items()},
        "parent_cpu_ms_per_readout": {name: 1e3 * cpu[name] / frames for name in pools},
        "speedup_vs_today": {name: rate / per_s["today"] for name, rate in per_s.items() if name != "today"},
        "split_ms_per_frame": {
            "today_render": 1e3 * today.render_s / frames,
            "today_landmarker": 1e3 * today.landmarks_s / frames,
            **{f"{name}_{part}": 1e3 * split[name][k] / frames for name in split for k, part in enumerate(("render", "landmarker"))},
        },
        "agreement_mae_vs_today": {name: _mae(seen[name], seen["today"]) for name in paths if name != "today"},
        "targets": {"speedup_vs_today": 4.0, "agreement_mae_vs_today": 0.0076},
    }
    if unavailable:
        results["unavailable"] = unavailable
    results["render_cpu_ms_per_frame"] = render_profile(twin, poses, rounds + 1)
    results["litert_agreement"] = litert_agreement(twin, n_random=30 if quick else 482, seed=seed)
    for readout in [*opened, *torch_engines.values()]:
        readout.close()
    today.close()
    twin.close()
    return results
