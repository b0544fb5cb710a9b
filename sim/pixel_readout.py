"""The twin as a camera sees it: a batch of poses in, a batch of `Expression`s out (render -> landmarker).

One readout for every stage that reads the twin through pixels. Poses are generalised positions
(`MjData.qpos`, (B, nq)); `FaceTwin.read_pixels` settles commands into poses first. The batch is drawn
by `BatchRenderer` (tiles of one framebuffer, one read-back) and read by a landmark engine chosen by name
(`facetwin.sim.landmark_engines`).

workers=0 reads in this process. workers=K >= 1 splits each batch over K processes, each with its own
GL context and engine, so on a CPU the renders and the landmarker run on every core at once. Their
software rasteriser draws on the calling thread (Mesa's LP_NUM_THREADS=0, unless the environment sets
it), since the workers already fill the cores. Workers suit the mediapipe and litert engines, which read
one frame at a time on one thread; the torch engine batches on its own threads, so give it workers=0.

crop="detector" finds the face in each render with the landmarker's detector, as MediaPipe's IMAGE mode
does. crop="twin" (engines in `TRACKING_ENGINES`) skips the detector: the renderer also projects the
twin's own face landmarks for each pose, and the engine reads the face from MediaPipe's tracking crop
around them. crop="drawn" (engines in `DRAWN_CROP_ENGINES`) takes the same crop, but the renderer draws
it straight at the landmark network's input size (256 px) instead of a whole frame that the engine
then cuts the crop from. On a software rasteriser it is the cheapest readout (docs/camera.md); it reads
within the landmarker's jitter of crop="twin" (tests/test_sim_pixels.py), and like it gives the tracking
reading, not IMAGE mode's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import mujoco
import numpy as np

from facetwin.expression import Expression
from facetwin.sim.landmark_engines import (
    DEFAULT_ENGINE,
    DRAWN_CROP_ENGINES,
    ENGINES,
    TRACKING_ENGINES,
    EngineError,
    open_engine,
)
from facetwin.sim.render import CAMERA, BatchRenderer

WORKER_START_TIMEOUT_S = 120.0
# Where the engine looks for the face: its detector, the twin's own landmarks, or those crops drawn directly.
CROPS = ("detector", "twin", "drawn")


class ReadoutError(RuntimeError):
    """A pixel readout that could not start or read; the message says what failed."""


@dataclass
class ReadoutTimes:
    """Seconds spent in the last `read`: drawing and the landmarker (wall, summed over workers), and the
    CPU time of the processes that read (every thread of each)."""

    render_s: float = 0.0
    landmarks_s: float = 0.0
    frames: int = 0
    per_worker: list[tuple[float, float]] = field(default_factory=list)
    cpu_s: float = 0.0


class LocalReadout:
    """A renderer and an engine in this process: what `PixelReadout(workers=0)` and each worker run."""

    def __init__(self, model, size, camera, engine, bundle, device, max_batch, crop="detector"):
        self.crop = crop
        self.renderer = BatchRenderer(model, size, camera=camera, max_batch=max_batch)
        try:
            self.engine = open_engine(engine, bundle, device)
        except Exception:
            self.renderer.close()
            raise

    def read(self, qpos: np.ndarray) -> tuple[list[Expression], float, float, float]:
        cpu, t0 = time.process_time(), time.perf_counter()
        if self.crop == "drawn":
            r = self.renderer
            crops, regions = self.engine.tracking_regions(r.landmarks_px(qpos), r.width, r.height)
            pixels = r.render_regions(qpos, *regions)
            t1 = time.perf_counter()
            found = self.engine.read_crops(pixels, crops, r.width, r.height)
        elif self.crop == "twin":
            images, landmarks = self.renderer.render_with_landmarks(qpos)
            t1 = time.perf_counter()
            found = self.engine.track(images, landmarks)
        else:
            images = self.renderer.render(qpos)
            t1 = time.perf_counter()
            found = self.engine.detect(images)
        return found, t1 - t0, time.perf_counter() - t1, time.process_time() - cpu

    def close(self) -> None:
        self.engine.close()
        self.renderer.close()


class PixelReadout:
    """Read twin poses through a render and a landmark engine, as a camera would see the face.

    model: the twin's MjModel. engine: "mediapipe" (the reference), "litert" or "torch". size: render side
    in pixels (512: the render `facetwin render` shows). workers: 0 reads in this process; K >= 1 spreads
    each batch over K processes. max_batch: tiles per framebuffer pass in each renderer (default: by device,
    see `BatchRenderer`). crop: "detector" (IMAGE mode), "twin" (the tracking crop from the twin's own
    projected landmarks; litert and torch only) or "drawn" (that crop drawn directly; litert only).
    """

    def __init__(self, model: mujoco.MjModel, *, engine: str = DEFAULT_ENGINE, size: int = 512, camera: str = CAMERA,
                 bundle=None, device: str = "cpu", workers: int = 0, max_batch: int | None = None,
                 crop: str = "detector"):
        if engine not in ENGINES:
            raise EngineError(f"unknown landmark engine {engine!r}; choose one of {', '.join(ENGINES)}")
        if crop not in CROPS:
            raise ReadoutError(f"unknown crop {crop!r}; choose one of {', '.join(CROPS)}")
        if crop == "twin" and engine not in TRACKING_ENGINES:
            raise EngineError(f"the {engine} engine finds the face with its own detector only; crop='twin' needs "
                              f"engine={' or '.join(repr(e) for e in TRACKING_ENGINES)}")
        if crop == "drawn" and engine not in DRAWN_CROP_ENGINES:
            raise EngineError(f"the {engine} engine reads whole frames only; crop='drawn' needs "
                              f"engine={' or '.join(repr(e) for e in DRAWN_CROP_ENGINES)}")
        if workers < 0:
            raise ReadoutError(f"workers must be 0 (read in this process) or more, got {workers}")
        self.engine, self.size, self.workers, self.nq, self.crop = engine, size, workers, model.nq, crop
        self.times = ReadoutTimes()
        self._local: LocalReadout | None = None
        self._procs: list = []
        self._conns: list = []
        if workers == 0:
            self._local = LocalReadout(model, size, camera, engine, bundle, device, max_batch, crop)
        else:
            self._start(model, size, camera, engine, bundle, device, max_batch, crop)

    def _start(self, model, size, camera, engine, bundle, device, max_batch, crop) -> None:
        # Workers are fresh interpreters (`python -m facetwin.sim.pixel_worker FD`), never forks of this
        # process and its GL and landmarker threads, and never re-runs of the caller's main script.
        env = dict(os.environ)
        env.setdefault("LP_NUM_THREADS", "0")  # llvmpipe draws on the worker's own thread
        settings = (model, size, camera, engine, str(bundle) if bundle is not None else None, device, max_batch, crop)
        try:
            for _ in range(self.workers):
                ours, theirs = socket.socketpair()
                with theirs:
                    self._procs.append(subprocess.Popen(
                        [sys.executable, "-m", "facetwin.sim.pixel_worker", str(theirs.fileno())],
                        env=env, stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
                    ))
                conn = Connection(ours.detach())
                self._conns.append(conn)
                conn.send(settings)
            for conn in self._conns:
                if not conn.poll(WORKER_START_TIMEOUT_S):
                    raise ReadoutError(f"a readout worker did not start within {WORKER_START_TIMEOUT_S:.0f} s")
                status, message = conn.recv()
                if status != "ready":
                    raise ReadoutError(f"a readout worker failed to start: {message}")
        except (OSError, EOFError) as exc:
            self.close()
            raise ReadoutError(f"the readout workers could not start: {exc}") from exc
        except ReadoutError:
            self.close()
            raise

    def read(self, qpos) -> list[Expression]:
        """(B, nq) or (nq,) poses -> B expressions, in order, as the landmarker sees each render."""
        q = np.asarray(qpos, dtype=np.float64)
        q = q[None] if q.ndim == 1 else q
        if q.ndim != 2 or q.shape[1] != self.nq or len(q) == 0:
            raise ReadoutError(f"poses must be (B, {self.nq}) generalised positions (MjData.qpos), got shape {np.shape(qpos)}")
        if self._local is not None:
            found, render_s, landmarks_s, cpu_s = self._local.read(q)
            self.times = ReadoutTimes(render_s, landmarks_s, len(q), [(render_s, landmarks_s)], cpu_s)
            return found
        if not self._conns:
            raise ReadoutError("this PixelReadout is closed; create a new one")
        chunks = [c for c in np.array_split(q, min(self.workers, len(q))) if len(c)]
        try:
            for conn, chunk in zip(self._conns, chunks):
                conn.send(chunk)
            replies = [conn.recv() for conn, _ in zip(self._conns, chunks)]
        except (EOFError, OSError) as exc:  # a worker died (killed, out of memory)
            self.close()
            raise ReadoutError(f"a readout worker exited while reading ({exc!r}); open a new PixelReadout") from exc
        errors = [payload for status, payload in replies if status != "ok"]
        if errors:
            raise ReadoutError(f"a readout worker failed: {errors[0]}")
        found = [e for _, (exprs, *_) in replies for e in exprs]
        per_worker = [(render_s, landmarks_s) for _, (_, render_s, landmarks_s, _) in replies]
        cpu_s = sum(worker_cpu_s for _, (*_, worker_cpu_s) in replies)
        self.times = ReadoutTimes(sum(r for r, _ in per_worker), sum(m for _, m in per_worker), len(q), per_worker, cpu_s)
        return found

    @property
    def gl_renderer(self) -> str:
        """Which device draws this process's renders (GL_RENDERER), for reports."""
        return self._local.renderer.gl_renderer if self._local is not None else "in worker processes"

    def render(self, qpos) -> np.ndarray:
        """The frames this readout would read, (B, size, size, 3) uint8 (in-process readouts only)."""
        if self._local is None:
            raise ReadoutError("render() draws in this process: use a PixelReadout with workers=0")
        return self._local.renderer.render(qpos)

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
            self._local = None
        for conn in self._conns:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait()
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []

    def __enter__(self) -> "PixelReadout":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
