"""DatasetWriter: episodes in, a LeRobot v3.0 folder out, safe against being killed at any moment.

Commit protocol. Whole episodes are buffered until they fill `chunk_frames` frames, then one data
file is committed: data parquet, video, its meta/episodes file, tasks, stats.json and finally info.json, each
written to a temporary sibling, fsynced and renamed. info.json is the commit record: its totals say
which episodes exist. Anything else found on resume (a data, video or meta/episodes file whose
episodes never reached info.json, a temporary file, stats counting them) is the residue of an
interrupted commit and is removed or rewritten, so the run continues exactly after the last committed episode. A producer that seeds each
episode from its index (`writer.next_episode_index`) therefore rebuilds the very rows an
uninterrupted run would have written, in the same files.
"""

from __future__ import annotations

import fcntl
import os
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from facetwin import __version__
from facetwin.dataset import atomic
from facetwin.dataset.card import render_card
from facetwin.dataset.layout import (
    ACTION,
    CARD_PATH,
    DEFAULT_CHUNKS_SIZE,
    DEFAULT_TASK,
    EPISODES_DIR,
    EPISODES_PATH,
    EXPRESSION,
    INDEX_FEATURES,
    INFO_PATH,
    LANDMARKS,
    RENDER,
    STATE,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    WRITER_LOCK,
    DatasetError,
    DatasetInfo,
    EpisodeRecord,
    Feature,
    VideoRef,
    build_features,
    check_readout,
    data_file_path,
    read_episode_table,
    read_episodes,
    read_info,
    video_file_path,
)
from facetwin.dataset.reader import read_tasks
from facetwin.dataset.stats import FeatureStats, aggregate, compute
from facetwin.dataset.table import episode_stats_from_table, episodes_table, frames_table, tasks_table
from facetwin.dataset.video import Mp4Writer
from facetwin.expression import EXPRESSION_DIM, N_LANDMARKS, Expression
from facetwin.spec import FaceSpec, default_spec

DEFAULT_CHUNK_FRAMES = 1000  # ~6 MB per data file with landmarks; also the most work a crash can cost


@dataclass
class EpisodeFrames:
    """One episode's frames, T rows each. `landmarks`/`renders` are required when the dataset stores them."""

    action: np.ndarray  # (T, n_servos) normalised commands in [-1, 1], spec order
    state: np.ndarray  # (T, n_servos) measured servo positions, same normalisation
    expression: np.ndarray  # (T, 55) blendshapes then head yaw/pitch/roll (deg)
    landmarks: np.ndarray | None = None  # (T, 478, 3) pixels
    renders: np.ndarray | list | None = None  # T frames (H, W, 3) uint8 RGB
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # extra features, (T, *shape)
    task: str | None = None  # defaults to the writer's task

    def __len__(self) -> int:
        return len(self.action)


@dataclass
class _PendingEpisode:
    record: EpisodeRecord
    columns: dict[str, np.ndarray]
    stats: dict[str, FeatureStats]


class DatasetWriter:
    """Write (or with `resume=True`, continue) a facetwin dataset at `root`.

    Use as a context manager or call `close()`: it commits buffered episodes and writes the card.
    """

    def __init__(
        self,
        root: str | Path,
        spec: FaceSpec | None = None,
        fps: int = 30,
        *,
        resume: bool = False,
        chunk_frames: int = DEFAULT_CHUNK_FRAMES,
        extra_features: dict[str, Feature] | None = None,
        landmarks: bool = True,
        render_size: tuple[int, int] | None = None,
        task: str = DEFAULT_TASK,
        chunks_size: int = DEFAULT_CHUNKS_SIZE,
        robot_type: str | None = None,
        description: str = "",
        readout: str = "fast",
    ):
        if chunk_frames < 1 or chunks_size < 1:
            raise ValueError("chunk_frames and chunks_size must be positive")
        self.root = Path(root)
        self.spec = spec or default_spec()
        self.task = task
        self.description = description
        features = build_features(self.spec, landmarks=landmarks, render_size=render_size, fps=fps, extra=extra_features)
        fresh = DatasetInfo(
            fps=int(fps),
            features=features,
            robot_type=robot_type or f"facetwin_{self.spec.name}",
            spec_name=self.spec.name,
            spec_version=self.spec.version,
            spec_fingerprint=self.spec.fingerprint,
            chunks_size=chunks_size,
            chunk_frames=chunk_frames,
            video_path=VIDEO_PATH if render_size is not None else None,
            face=self.spec.face,
            readout=check_readout(readout),
        )
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._lock()
        try:
            self._records: list[EpisodeRecord] = []
            self._stats: list[dict[str, FeatureStats]] = []
            self._tasks: list[str] = []
            if (self.root / INFO_PATH).exists():
                if not resume:
                    raise DatasetError(
                        f"{self.root} already holds a dataset; pass resume=True to continue it, or pick a new directory"
                    )
                self.info = self._recover(fresh)
            else:
                leftovers = [p for p in self.root.iterdir() if p.name != WRITER_LOCK]
                if leftovers and not resume:
                    raise DatasetError(f"{self.root} is not empty and holds no dataset; pick an empty or new directory")
                self._remove_uncommitted(set())  # residue of a run killed before its first commit
                self.info = fresh
        except BaseException:
            self._unlock()
            raise
        self._pending: list[_PendingEpisode] = []
        self._pending_frames = 0
        self._video: dict[str, Mp4Writer] = {}
        self._frame_buffer: list[dict] = []
        self._broken: OSError | None = None  # set when a commit failed; the writer then only closes
        self.closed = False

    # -- what the producer needs -------------------------------------------------------------------
    @property
    def next_episode_index(self) -> int:
        """Index the next episode will get; seed the producer's episode from it to make resumes exact."""
        return self.info.total_episodes + len(self._pending)

    @property
    def committed_episodes(self) -> int:
        return self.info.total_episodes

    @property
    def features(self) -> dict[str, Feature]:
        return self.info.features

    # -- adding data -------------------------------------------------------------------------------
    def add_frame(
        self,
        action,
        state,
        expression: Expression | np.ndarray,
        *,
        landmarks: np.ndarray | None = None,
        render: np.ndarray | None = None,
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Append one frame to the current episode (finish it with `end_episode`)."""
        if isinstance(expression, Expression):
            if landmarks is None:
                landmarks = expression.landmarks
            expression = expression.vector
        self._frame_buffer.append(
            {"action": action, "state": state, "expression": expression, "landmarks": landmarks, "render": render, "extra": extra or {}}
        )

    def end_episode(self, task: str | None = None) -> int:
        """Close the episode built by `add_frame`; returns its index."""
        if not self._frame_buffer:
            raise DatasetError("end_episode() without frames: call add_frame() first")
        buf, self._frame_buffer = self._frame_buffer, []
        has = lambda k: all(f[k] is not None for f in buf)  # noqa: E731
        episode = EpisodeFrames(
            action=np.stack([f["action"] for f in buf]),
            state=np.stack([f["state"] for f in buf]),
            expression=np.stack([f["expression"] for f in buf]),
            landmarks=np.stack([f["landmarks"] for f in buf]) if has("landmarks") else None,
            renders=[f["render"] for f in buf] if has("render") else None,
            extra={k: np.stack([f["extra"][k] for f in buf]) for k in buf[0]["extra"]},
            task=task,
        )
        return self.add_episode(episode)

    def discard_episode(self) -> int:
        """Drop the frames of the unfinished episode (e.g. after the producer failed mid-way)."""
        n, self._frame_buffer = len(self._frame_buffer), []
        return n

    def add_episode(self, frames: EpisodeFrames) -> int:
        """Buffer one complete episode; commits a data file once `chunk_frames` frames are buffered."""
        self._check_open()
        columns = self._validate(frames)
        t = len(frames)
        index = self.next_episode_index
        task = frames.task or self.task
        if task not in self._tasks:
            self._tasks.append(task)
        frame_index = np.arange(t, dtype=np.int64)
        start = self.info.total_frames + self._pending_frames
        columns.update(
            timestamp=(frame_index / self.info.fps).astype(np.float32),
            frame_index=frame_index,
            episode_index=np.full(t, index, np.int64),
            index=np.arange(start, start + t, dtype=np.int64),
            task_index=np.full(t, self._tasks.index(task), np.int64),
        )
        stats = {k: compute(v, self.info.features[k].shape) for k, v in columns.items()}
        chunk, file = self._file_position(self._files_committed())
        videos = {}
        for key in self.info.video_keys:
            vw = self._video_writer(key, chunk, file)
            t0 = vw.frames / self.info.fps
            for img in frames.renders:
                vw.write(np.asarray(img))
            videos[key] = VideoRef(chunk, file, t0, vw.frames / self.info.fps)
            stats[key] = _image_stats(frames.renders)
        stats = {k: stats[k] for k in self.info.features if k in stats}  # column order must not depend on resumes
        record = EpisodeRecord(index, t, start, start + t, chunk, file, (task,), videos)
        self._pending.append(_PendingEpisode(record, columns, stats))
        self._pending_frames += t
        if self._pending_frames >= self.info.chunk_frames:
            self.flush()
        return index

    # -- committing --------------------------------------------------------------------------------
    def flush(self) -> None:
        """Commit the buffered episodes as one data file now (no-op when nothing is buffered)."""
        if not self._pending:
            return
        try:
            self._commit_pending()
        except OSError as exc:  # a full disk, a failing one: nothing committed before is touched (atomic writes)
            self._broken = exc
            first, last = self._pending[0].record.episode_index, self._pending[-1].record.episode_index
            where = exc.filename or self.root
            raise DatasetError(
                f"cannot write {where}: {exc.strerror or exc}; episodes {first}..{last} were not saved, the "
                f"{self.info.total_episodes} committed before them are intact: free space, then continue with --resume"
            ) from exc

    def _commit_pending(self) -> None:
        pending = self._pending
        chunk, file = pending[0].record.data_file
        columns = {k: np.concatenate([p.columns[k] for p in pending]) for k in pending[0].columns}
        atomic.write_parquet(data_file_path(self.root, self.info, chunk, file), frames_table(columns, self.info.features))
        for key, vw in self._video.items():
            vw.close()
            atomic.commit(vw.path, video_file_path(self.root, self.info, key, chunk, file))
        self._video = {}
        records = self._records + [p.record for p in pending]
        stats = self._stats + [p.stats for p in pending]
        info = replace(
            self.info,
            total_episodes=len(records),
            total_frames=records[-1].dataset_to_index,
            total_tasks=len(self._tasks),
        )
        atomic.write_parquet(
            self.root / EPISODES_PATH.format(chunk_index=chunk, file_index=file),
            episodes_table([p.record for p in pending], [p.stats for p in pending], info.video_keys),
        )
        self._write_meta(info, stats, self._tasks)
        self._records, self._stats, self.info = records, stats, info
        self._pending, self._pending_frames = [], 0

    def close(self) -> DatasetInfo:
        """Commit what is buffered, write the dataset card and release the directory."""
        if self.closed:
            return self.info
        try:
            if self._broken is not None:  # a commit failed: what it held is lost, and resuming redoes it
                self._pending, self._frame_buffer = [], []
            if self._frame_buffer:
                warnings.warn(f"closing with an unfinished episode of {len(self._frame_buffer)} frames; it is discarded")
                self._frame_buffer = []
            self.flush()
            if self.info.total_episodes and self._broken is None:
                try:
                    atomic.write_text(self.root / CARD_PATH, render_card(self.info, self._aggregate(self._stats), self.description))
                except OSError as exc:  # the card is no part of the commit: every episode is saved already
                    warnings.warn(f"could not write the dataset card {self.root / CARD_PATH}: {exc}; the episodes are "
                                  f"committed, and the next resume writes the card")
        finally:
            self._abandon_video()
            self._unlock()
            self.closed = True
        return self.info

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # Complete episodes are valid whatever stopped the producer; only the unfinished one is lost.
        if exc_type is not None:
            self.discard_episode()
        self.close()

    # -- internals ---------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise DatasetError("this DatasetWriter is closed; open a new one with resume=True to add episodes")
        if self._broken is not None:
            raise DatasetError(f"a commit to {self.root} failed ({self._broken}); continue with a new writer and resume=True")

    def _validate(self, frames: EpisodeFrames) -> dict[str, np.ndarray]:
        t = len(frames)
        if t == 0:
            raise DatasetError("an episode needs at least one frame")
        n = self.spec.n
        cols = {
            ACTION: _shaped(frames.action, (t, n), "action"),
            STATE: _shaped(frames.state, (t, n), "state"),
            EXPRESSION: _shaped(frames.expression, (t, EXPRESSION_DIM), "expression"),
        }
        for i, row in enumerate(cols[ACTION]):
            try:
                self.spec.check_command(row)
            except ValueError as exc:
                raise DatasetError(f"episode {self.next_episode_index}, frame {i}: {exc}") from None
        for name in (STATE, EXPRESSION):
            if not np.isfinite(cols[name]).all():
                raise DatasetError(f"episode {self.next_episode_index}: {name} holds NaN/inf values")
        if LANDMARKS in self.info.features:
            if frames.landmarks is None:
                raise DatasetError("this dataset stores landmarks: give them for every frame, or open the writer with landmarks=False")
            cols[LANDMARKS] = _shaped(frames.landmarks, (t, N_LANDMARKS, 3), "landmarks")
        for key, ft in self.info.features.items():
            if key in cols or key in INDEX_FEATURES or ft.is_video:
                continue
            if key not in frames.extra:
                raise DatasetError(f"extra feature {key!r} missing from the episode")
            cols[key] = _shaped(frames.extra[key], (t, *ft.shape), key, ft.dtype)
        unknown = set(frames.extra) - set(self.info.features)
        if unknown:
            raise DatasetError(f"unknown extra features {sorted(unknown)}: declare them in extra_features")
        if RENDER in self.info.features:
            h, w, _ = self.info.features[RENDER].shape
            if frames.renders is None or len(frames.renders) != t:
                raise DatasetError(f"this dataset stores renders: give {t} frames of {h}x{w}x3 uint8")
            for i, img in enumerate(frames.renders):
                img = np.asarray(img)
                if img.shape != (h, w, 3) or img.dtype != np.uint8:
                    raise DatasetError(f"render {i}: expected {h}x{w}x3 uint8 RGB, got {img.shape} {img.dtype}")
        return cols

    def _files_committed(self) -> int:
        return len({r.data_file for r in self._records})

    def _file_position(self, k: int) -> tuple[int, int]:
        return divmod(k, self.info.chunks_size)

    def _video_writer(self, key: str, chunk: int, file: int) -> Mp4Writer:
        if key not in self._video:
            target = video_file_path(self.root, self.info, key, chunk, file)
            h, w, _ = self.info.features[key].shape
            self._video[key] = Mp4Writer(atomic.temporary_path(target), self.info.fps, (h, w))
        return self._video[key]

    def _abandon_video(self) -> None:
        for vw in self._video.values():
            vw.close()
            vw.path.unlink(missing_ok=True)
        self._video = {}

    def _aggregate(self, stats: list[dict[str, FeatureStats]]) -> dict[str, FeatureStats]:
        return {k: aggregate([s[k] for s in stats]) for k in stats[0]} if stats else {}

    def _write_meta(self, info: DatasetInfo, stats, tasks) -> None:
        atomic.write_parquet(self.root / TASKS_PATH, tasks_table(list(tasks)))
        atomic.write_json(self.root / STATS_PATH, {k: s.to_json() for k, s in self._aggregate(stats).items()})
        raw = info.to_json()
        raw["facetwin"]["writer"] = f"facetwin {__version__}"
        atomic.write_json(self.root / INFO_PATH, raw)  # last: this is the commit

    def _recover(self, fresh: DatasetInfo) -> DatasetInfo:
        info = read_info(self.root)
        mismatch = [
            f"{name}: dataset has {a!r}, writer wants {b!r}"
            for name, a, b in (
                ("codebase_version", info.codebase_version, fresh.codebase_version),
                ("fps", info.fps, fresh.fps),
                ("face spec", info.spec_fingerprint, fresh.spec_fingerprint),
                ("chunk_frames", info.chunk_frames, fresh.chunk_frames),
                ("chunks_size", info.chunks_size, fresh.chunks_size),
                ("readout", info.readout, fresh.readout),
            )
            if a != b
        ]
        if {k: f.to_json() for k, f in info.features.items()} != {k: f.to_json() for k, f in fresh.features.items()}:
            mismatch.append("features differ (landmarks / render_size / extra_features must match the original run)")
        if mismatch:
            raise DatasetError(
                f"cannot resume {self.root}: " + "; ".join(mismatch) + ". Resume with the original settings and face spec, "
                "or record into a new directory"
            )
        records = read_episodes(self.root, info)
        if len(records) != info.total_episodes:
            raise DatasetError(f"{self.root / EPISODES_DIR} lists {len(records)} episodes, info.json {info.total_episodes}")
        stats = []
        if records:
            table = read_episode_table(self.root, info, with_stats=True)
            keys = sorted({n.split("/")[1] for n in table.column_names if n.startswith("stats/")}, key=list(info.features).index)
            stats = episode_stats_from_table(table, keys)
        tasks = read_tasks(self.root)[: info.total_tasks] if (self.root / TASKS_PATH).exists() else []
        if len(tasks) != info.total_tasks:
            raise DatasetError(f"{self.root / TASKS_PATH} lists {len(tasks)} tasks, info.json {info.total_tasks}")
        self._records, self._stats, self._tasks = records, stats, tasks
        self._remove_uncommitted({r.data_file for r in records})
        if records:  # stats/tasks may already count episodes of the interrupted commit
            self._write_meta(info, stats, tasks)
        return info

    def _remove_uncommitted(self, committed: set[tuple[int, int]]) -> None:
        atomic.remove_temporaries(self.root)
        pattern = re.compile(r"chunk-(\d+)/file-(\d+)\.(parquet|mp4)$")
        for top in ("data", "videos", EPISODES_DIR):
            for p in sorted((self.root / top).rglob("file-*")) if (self.root / top).is_dir() else ():
                m = pattern.search(p.as_posix())
                if m and (int(m[1]), int(m[2])) not in committed:
                    p.unlink()

    def _lock(self) -> int:
        fd = os.open(self.root / WRITER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatasetError(f"another DatasetWriter is writing {self.root}; one writer per dataset") from None
        return fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            (self.root / WRITER_LOCK).unlink(missing_ok=True)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None


def _shaped(values, shape: tuple[int, ...], name: str, dtype: str = "float32") -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != shape:
        raise DatasetError(f"{name}: expected shape {shape}, got {arr.shape}")
    return arr.astype(dtype, copy=False)


def _image_stats(renders) -> FeatureStats:
    """Per-channel stats of the renders in [0, 1], shaped (3, 1, 1) as lerobot stores image stats."""
    step = max(1, len(renders) // 32)  # a sample is enough: these feed normalisation, not checks
    imgs = np.stack([np.asarray(r) for r in list(renders)[::step]]).astype(np.float64) / 255.0
    px = imgs.reshape(-1, 3)
    s = compute(px, (3,))
    return FeatureStats(*(getattr(s, n).reshape(3, 1, 1) for n in ("min", "max", "mean", "std")), count=len(imgs))
