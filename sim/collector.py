"""Collecting (servo command, expression) datasets in the twin, one motion-strategy episode at a time.

Each episode starts from a reset, settled twin. Frame k holds command k for 1/fps s of physics, the
servos tracking the strategy's smooth trajectory as on the real robot (no settling per frame), and is
then observed through the fast path: row k = (action k, servo positions and expression read 1/fps s
after action k was sent). An episode depends only on (strategy, seed, episode index), so any number of
workers, Ray tasks, or a resumed run, writes the very rows of one uninterrupted single-process run.

Backends: "sim" steps one FaceTwin per process; "batch" steps a BatchTwin of `n_worlds` episodes at
once (sim/batch/collector.py) with the same physics and, on the CPU, the same LiteRT readout, so its
rows equal the sim backend's. `ray` spreads groups of
episodes over a Ray cluster's tasks (sim/ray_collect.py); the writer still adds them in index order.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facetwin.dataset import DatasetError, DatasetWriter, EpisodeFrames
from facetwin.dataset.collection import check_resume, read_collection_config as read_record, write_collection_record
from facetwin.dataset.layout import check_readout
from facetwin.expression import EXPRESSION_DIM, N_LANDMARKS
from facetwin.motion import STRATEGIES, make_strategy
from facetwin.motion.strategy import strategy_settings
from facetwin.spec import FaceSpec, default_spec

COLLECTION_PATH = "meta/collection.json"  # how the rows were made; a resume must make them the same way
DEFAULT_FRAMES_PER_EPISODE = 300  # 10 s at 30 fps: about ten expert keyframes
DEFAULT_FPS = 30
BACKENDS = ("sim", "batch")


class CollectionInterrupted(RuntimeError):
    """A worker was lost mid-run; the episodes written before it stay and `resume` continues after them."""


@dataclass(frozen=True)
class CollectConfig:
    """What determines the rows of a collected dataset (everything else only changes how fast)."""

    strategy: str = "expert"
    seed: int = 0
    frames_per_episode: int = DEFAULT_FRAMES_PER_EPISODE
    fps: int = DEFAULT_FPS
    render_size: int | None = None  # square renders stored as mp4 under videos/, or none
    # how each frame's expression is read: pixels, as a camera sees the face (sim/pixel_labels.py), the only label
    # the real face has; or fast, the twin's own landmarks, for quick datasets and the batch backend
    readout: str = "pixels"

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if self.frames_per_episode < 1:
            raise ValueError(f"frames_per_episode must be at least 1, got {self.frames_per_episode}")
        if self.fps < 1:
            raise ValueError(f"fps must be a positive integer, got {self.fps}")
        if self.render_size is not None and (self.render_size < 16 or self.render_size % 2):
            raise ValueError(f"the render size (--render SIZE) must be an even number of pixels >= 16, got {self.render_size}")
        check_readout(self.readout)

    def describe(self) -> str:
        render = f", rendered at {self.render_size}px" if self.render_size else ""
        return (
            f"Collected in the MuJoCo twin with the {self.strategy} motion strategy (seed {self.seed}), "
            f"{self.frames_per_episode} frames per episode at {self.fps} fps{render}. Row k holds servo "
            f"command k and what the face showed 1/{self.fps} s after it was sent, read "
            + ("through a 512 px render and the Face Landmarker (pixels)." if self.readout == "pixels" else
               "from the twin's own landmarks (fast).")
        )


@dataclass(frozen=True)
class EpisodeTiming:
    """When a worker computed an episode (time.monotonic, comparable across processes on one machine)."""

    episode_index: int
    start: float
    end: float
    cpu_s: float  # CPU time the worker spent on it (time.process_time), immune to other load


@dataclass
class CollectResult:
    root: Path
    config: CollectConfig
    episodes_total: int  # episodes in the dataset now
    episodes_added: int  # by this run
    frames_added: int
    wall_s: float  # the whole run, including starting workers and writing
    timings: list[EpisodeTiming] = field(default_factory=list)
    parent_cpu_s: float = 0.0  # CPU time of this process (writing; with workers=1 also collecting)
    frames_without_face: int = 0  # pixel labels: frames dropped because the landmarker found no face in them

    @property
    def samples_per_s(self) -> float:
        """Steady collection rate: frames over the span from the first episode's start to the last's end.

        Excludes process start-up and twin construction (seconds, once per worker), which would
        otherwise dominate short benchmark runs.
        """
        if not self.timings:
            return 0.0
        span = max(t.end for t in self.timings) - min(t.start for t in self.timings)
        return self.frames_added / span if span > 0 else float("inf")


def frame_steps(n_frames: int, fps: float, timestep: float) -> np.ndarray:
    """Physics steps per frame, so frame k ends at (k + 1)/fps s even when 1/fps is no whole number of steps."""
    ends = np.rint(np.arange(n_frames + 1) / (fps * timestep)).astype(np.int64)
    return np.diff(ends)


class EpisodeCollector:
    """One twin and one strategy: episode index -> the episode's frames. One per process."""

    def __init__(self, config: CollectConfig, spec: FaceSpec | None = None, bundle: str | os.PathLike | None = None):
        from facetwin.sim.twin import FaceTwin

        self.config = config
        self.twin = FaceTwin(spec, bundle)
        self.strategy = make_strategy(config.strategy, self.twin.spec, config.seed)
        self._steps = frame_steps(config.frames_per_episode, config.fps, self.twin.timestep)
        self._pixels = None
        if config.readout == "pixels":
            from facetwin.sim.pixel_labels import PIXEL_SIZE

            self._pixels = self.twin.pixel_readout(size=PIXEL_SIZE)  # closed with the twin

    def collect(self, episode_index: int) -> EpisodeFrames:
        cfg, twin = self.config, self.twin
        commands = self.strategy.episode(episode_index, cfg.frames_per_episode, cfg.fps)
        t, n = commands.shape
        action = np.empty((t, n), np.float32)
        state = np.empty((t, n), np.float32)
        expression = np.empty((t, EXPRESSION_DIM), np.float32)
        landmarks = np.empty((t, N_LANDMARKS, 3), np.float32)
        renders = np.empty((t, cfg.render_size, cfg.render_size, 3), np.uint8) if cfg.render_size else None
        poses = np.empty((t, twin.model.nq)) if self._pixels is not None else None
        twin.reset()
        twin.settle()  # from a face at rest, as a robot would start an episode
        for k, (command, steps) in enumerate(zip(commands, self._steps)):
            action[k] = twin.set_command(command)
            twin.step(int(steps))
            state[k] = twin.servo_positions()
            if poses is not None:  # read later, the whole episode in one pixel batch
                poses[k] = twin.data.qpos
            else:
                expr = twin.expression()
                expression[k] = expr.vector
                landmarks[k] = expr.landmarks
            if renders is not None:
                renders[k] = twin.render(cfg.render_size)
        frames = EpisodeFrames(action=action, state=state, expression=expression, landmarks=landmarks, renders=renders)
        if poses is None:
            return frames
        from facetwin.sim.pixel_labels import relabel

        frames = relabel(frames, poses, self._pixels)
        if not len(frames):
            raise DatasetError(f"the landmarker found the twin's face in no frame of episode {episode_index}; "
                               "check the landmarker bundle (--landmarker) or collect with --readout fast")
        return frames

    def collect_many(self, indices) -> list[EpisodeFrames]:
        return [self.collect(i) for i in indices]

    def close(self) -> None:
        self.twin.close()


@dataclass(frozen=True)
class Engine:
    """How episodes are computed (never what they hold): backend, its batch size, and the Ray cluster."""

    backend: str = "sim"
    n_worlds: int = 64  # episodes per BatchTwin batch (backend "batch")
    ray: str | None = None  # None: this machine's processes; "local", "auto" or a cluster address
    ray_retries: int = 3  # times Ray reruns a task whose worker died

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown collection backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.n_worlds < 1:
            raise ValueError(f"the batch size (worlds per BatchTwin) must be at least 1, got {self.n_worlds}")

    @property
    def group(self) -> int:
        """Episodes computed together: a BatchTwin's worth, or one."""
        return self.n_worlds if self.backend == "batch" else 1

    def collector(self, config: CollectConfig, spec: FaceSpec | None, bundle: str | None):
        if self.backend == "batch":
            from facetwin.sim.batch.collector import BatchEpisodeCollector

            return BatchEpisodeCollector(config, self.n_worlds, spec, bundle)
        return EpisodeCollector(config, spec, bundle)


def groups(indices, size: int) -> list[list[int]]:
    indices = list(indices)
    return [indices[i:i + size] for i in range(0, len(indices), size)]


# -- worker processes -------------------------------------------------------------------------------
_worker: EpisodeCollector | None = None


def _init_worker(config: CollectConfig, spec: FaceSpec | None, bundle: str | None) -> None:
    global _worker
    _worker = EpisodeCollector(config, spec, bundle)


def _timed(collector: EpisodeCollector, episode_index: int) -> tuple[EpisodeFrames, EpisodeTiming]:
    start, cpu = time.monotonic(), time.process_time()
    frames = collector.collect(episode_index)
    return frames, EpisodeTiming(episode_index, start, time.monotonic(), time.process_time() - cpu)


def timed_group(collector, indices: list[int]) -> list[tuple[EpisodeFrames, EpisodeTiming]]:
    """Episodes computed together share their span; each is charged an equal part of the CPU time."""
    start, cpu = time.monotonic(), time.process_time()
    episodes = collector.collect_many(indices)
    end, cpu_each = time.monotonic(), (time.process_time() - cpu) / max(1, len(indices))
    return [(f, EpisodeTiming(i, start, end, cpu_each)) for i, f in zip(indices, episodes)]


def _collect_in_worker(episode_index: int) -> tuple[EpisodeFrames, EpisodeTiming]:
    return _timed(_worker, episode_index)


def _episodes_in_order(config: CollectConfig, indices: range, workers: int, spec: FaceSpec | None, bundle: str | None,
                       engine: Engine = Engine()):
    """Yield (frames, timing) for `indices` in index order, whichever worker made them."""
    if not indices:
        return
    if engine.ray is not None:
        from facetwin.sim.ray_collect import episodes_over_ray

        yield from episodes_over_ray(config, indices, spec, bundle, engine)
        return
    if workers == 1:
        collector = engine.collector(config, spec, bundle)
        try:
            for group in groups(indices, engine.group):
                yield from timed_group(collector, group)
        finally:
            collector.close()
        return
    # spawn: each worker builds its own MuJoCo/EGL and LiteRT state instead of inheriting a forked copy.
    # ProcessPoolExecutor, not mp.Pool: a worker that dies or fails to start raises here instead of
    # being respawned forever.
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(config, spec, bundle))
    pending: deque = deque()
    todo = iter(indices)
    try:
        for i in islice(todo, 2 * workers):  # a bounded window: finished episodes wait for the writer in order
            pending.append(pool.submit(_collect_in_worker, i))
        while pending:
            result = pending.popleft().result()
            for i in islice(todo, 1):
                pending.append(pool.submit(_collect_in_worker, i))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- the collection run ------------------------------------------------------------------------------
def read_collection_config(root: str | Path) -> CollectConfig | None:
    """The config a dataset was collected with, or None when it holds no collection record."""
    return read_record(root, COLLECTION_PATH, CollectConfig)


def _motion(config: CollectConfig, spec: FaceSpec) -> dict:
    return strategy_settings(make_strategy(config.strategy, spec, config.seed))


def _write_collection_config(root: Path, config: CollectConfig, spec: FaceSpec) -> None:
    write_collection_record(root, COLLECTION_PATH, "facetwin.sim.collector", config, motion=_motion(config, spec))


def collect(
    root: str | Path,
    episodes: int,
    config: CollectConfig = CollectConfig(),
    *,
    workers: int = 1,
    resume: bool = False,
    spec: FaceSpec | None = None,
    bundle: str | os.PathLike | None = None,
    chunk_frames: int | None = None,
    progress: bool = True,
    engine: Engine = Engine(),
) -> CollectResult:
    """Collect `episodes` episodes into a dataset at `root` (with `resume`, up to that total).

    `engine` picks how they are computed (backend, Ray), not the rows. A lost Ray worker (with its retries spent) raises CollectionInterrupted after
    the episodes before it are written; `resume=True` continues from there.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers > 1 and (engine.backend == "batch" or engine.ray is not None):
        raise ValueError("workers > 1 is for the sim backend on this machine; the batch backend already uses every "
                         "core, and with Ray the cluster's CPUs are the workers")
    if engine.backend == "batch" and config.render_size:
        raise ValueError("the batch backend reads the fast path only; collect renders with the sim backend")
    if engine.backend == "batch" and config.readout != "fast":
        raise ValueError("the batch backend reads the fast path only: add --readout fast (readout='fast'), or "
                         "collect pixel labels with the sim backend")
    if engine.ray is not None:
        from facetwin.sim.ray_collect import connect

        connect(engine.ray)  # a cluster that does not answer fails here, before the dataset is touched
    from facetwin import landmarker_bundle

    root = Path(root)
    spec = spec or default_spec()
    bundle_path = str(landmarker_bundle.resolve(bundle))  # fail here, not in every worker
    if resume:
        check_resume(root, COLLECTION_PATH, config, _motion(config, spec))
    elif (root / COLLECTION_PATH).is_file():
        raise DatasetError(f"{root} already holds a collection, perhaps an interrupted one: continue it with --resume (resume=True) or pick a new directory")
    begin, begin_cpu = time.monotonic(), time.process_time()
    options = dict(resume=resume, description=config.describe(), readout=config.readout)
    if chunk_frames is not None:
        options["chunk_frames"] = chunk_frames
    if config.render_size:
        options["render_size"] = (config.render_size, config.render_size)
    timings: list[EpisodeTiming] = []
    frames_added = 0
    with DatasetWriter(root, spec, config.fps, **options) as writer:
        _write_collection_config(root, config, spec)
        first = writer.next_episode_index
        indices = range(first, episodes)
        bar = _progress_bar(len(indices) * config.frames_per_episode, first, episodes, progress)
        try:
            for frames, timing in _episodes_in_order(config, indices, min(workers, max(1, len(indices))), spec, bundle_path,
                                                     engine):
                writer.add_episode(frames)
                timings.append(timing)
                frames_added += len(frames)
                bar.update(config.frames_per_episode)
        finally:
            bar.close()
        total = writer.next_episode_index
    return CollectResult(
        root=root,
        config=config,
        episodes_total=total,
        episodes_added=len(timings),
        frames_added=frames_added,
        frames_without_face=len(timings) * config.frames_per_episode - frames_added,
        wall_s=time.monotonic() - begin,
        timings=timings,
        parent_cpu_s=time.process_time() - begin_cpu,
    )


def _progress_bar(frames: int, first: int, episodes: int, enabled: bool):
    from tqdm import tqdm

    desc = f"episodes {first}..{episodes - 1}" if first < episodes else "nothing to collect"
    return tqdm(total=frames, desc=desc, unit="sample", unit_scale=True, disable=not enabled, smoothing=0.1)
