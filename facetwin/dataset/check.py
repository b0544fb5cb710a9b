"""Validate a dataset folder end to end and summarise it.

`check` never raises for a bad dataset: it returns every problem it finds, each naming the file or
row at fault, so a user sees the whole picture at once. Warnings are things a reader survives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq

from facetwin.dataset.atomic import is_temporary
from facetwin.dataset.layout import (
    ACTION,
    CODEBASE_VERSION,
    EXPRESSION,
    INDEX_FEATURES,
    LANDMARKS,
    STATE,
    WRITER_LOCK,
    DatasetError,
    DatasetInfo,
    EpisodeRecord,
    build_features,
    data_file_path,
    read_episodes,
    read_info,
    video_file_path,
)
from facetwin.dataset.reader import data_files, read_columns, read_stats, read_tasks
from facetwin.dataset.stats import FeatureStats, close_enough, compute
from facetwin.expression import EXPRESSION_NAMES
from facetwin.spec import FaceSpec, SpecError, default_spec, load_face

CONSTANT_STD = 1e-6


@dataclass(frozen=True)
class FeatureRange:
    """Spread of one feature over all frames, per element (shape = the feature's shape)."""

    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray
    std: np.ndarray


@dataclass
class CheckReport:
    root: Path
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    info: DatasetInfo | None = None
    n_episodes: int = 0
    n_frames: int = 0
    episode_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ranges: dict[str, FeatureRange] = field(default_factory=dict)
    non_constant_expressions: tuple[str, ...] = ()
    idle_servos: tuple[str, ...] = ()  # servos whose command never changes

    @property
    def ok(self) -> bool:
        return not self.problems


def check(root: str | Path, spec: FaceSpec | None = None) -> CheckReport:
    """Validate the dataset at `root` against its own metadata and a face spec (default: the face it was
    recorded on)."""
    root = Path(root)
    report = CheckReport(root)
    problems = report.problems
    try:
        info = read_info(root)
    except DatasetError as exc:
        problems.append(str(exc))
        return report
    report.info = info
    _check_info(info, spec or _recorded_spec(info), report)
    try:
        episodes = read_episodes(root, info)
    except (DatasetError, KeyError, OSError) as exc:
        problems.append(f"meta/episodes unreadable: {exc!r}")
        return report
    report.n_episodes = len(episodes)
    report.episode_lengths = np.array([e.length for e in episodes], np.int64)
    if not _check_episodes(info, episodes, report) or not _check_files(root, info, episodes, report):
        return report
    keys = [k for k, f in info.features.items() if not f.is_video]
    try:
        cols = read_columns(root, info, episodes, keys)
    except DatasetError as exc:
        problems.append(str(exc))
        return report
    report.n_frames = len(cols[ACTION])
    _check_rows(info, episodes, cols, report)
    _check_values(info, episodes, cols, report)
    recomputed = {k: compute(v, info.features[k].shape) for k, v in cols.items() if len(v)}
    _check_stats(root, recomputed, report)
    _check_videos(root, info, episodes, report)
    _check_residue(root, episodes, report)
    report.ranges = {k: FeatureRange(s.min, s.max, s.mean, s.std) for k, s in recomputed.items()}
    if EXPRESSION in recomputed:
        names = info.features[EXPRESSION].names or EXPRESSION_NAMES
        report.non_constant_expressions = tuple(n for n, s in zip(names, recomputed[EXPRESSION].std) if s > CONSTANT_STD)
    if ACTION in recomputed:
        report.idle_servos = tuple(n for n, s in zip(info.servo_names, recomputed[ACTION].std) if s <= CONSTANT_STD)
    return report


def _recorded_spec(info: DatasetInfo) -> FaceSpec:
    """The spec of the face the dataset says it was recorded on (the default face if it does not say)."""
    face = info.recorded_face
    try:
        return load_face(face) if face else default_spec()
    except SpecError:  # a lab's own face, given by path when recorded: check against the default face's names
        return default_spec()


def _check_info(info: DatasetInfo, spec: FaceSpec, report: CheckReport) -> None:
    p = report.problems
    if info.codebase_version != CODEBASE_VERSION:
        p.append(f"info.json codebase_version is {info.codebase_version!r}; this reader understands {CODEBASE_VERSION!r}")
    if info.fps <= 0:
        p.append(f"info.json fps must be positive, got {info.fps}")
    expected = build_features(spec, landmarks=LANDMARKS in info.features, fps=info.fps)
    for key in (ACTION, STATE, EXPRESSION, LANDMARKS, *INDEX_FEATURES):
        if key not in expected:
            continue
        got = info.features.get(key)
        want = expected[key]
        if got is None:
            p.append(f"info.json lacks the feature {key!r}")
        elif (got.dtype, got.shape) != (want.dtype, want.shape):
            p.append(f"feature {key!r} is {got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}")
        elif key in (ACTION, STATE, EXPRESSION) and got.names != want.names:
            diff = [f"{i}: {a} != {b}" for i, (a, b) in enumerate(zip(got.names or (), want.names)) if a != b][:3]
            p.append(
                f"feature {key!r} names differ from face spec {spec.name!r} / expression layout "
                f"({'; '.join(diff) or 'different length'}); recorded with another spec?"
            )
    if info.spec_fingerprint and info.spec_fingerprint != spec.fingerprint:
        report.warnings.append(
            f"recorded with face spec {info.spec_name!r} fingerprint {info.spec_fingerprint}; current spec "
            f"{spec.name!r} is {spec.fingerprint} (servo ranges may have changed since)"
        )


def _check_episodes(info: DatasetInfo, episodes: list[EpisodeRecord], report: CheckReport) -> bool:
    p = report.problems
    n0 = len(p)
    if len(episodes) != info.total_episodes:
        p.append(f"meta/episodes lists {len(episodes)} episodes, info.json total_episodes is {info.total_episodes}")
    expected_from = 0
    for i, e in enumerate(episodes):
        if e.episode_index != i:
            p.append(f"meta/episodes row {i} has episode_index {e.episode_index} (gap or duplicate)")
            break
        if e.length <= 0 or e.dataset_to_index - e.dataset_from_index != e.length:
            p.append(f"episode {i}: length {e.length} but rows {e.dataset_from_index}..{e.dataset_to_index}")
            break
        if e.dataset_from_index != expected_from:
            p.append(f"episode {i} starts at row {e.dataset_from_index}, expected {expected_from} (gap or overlap)")
            break
        expected_from = e.dataset_to_index
    if expected_from != info.total_frames and len(p) == n0:
        p.append(f"episodes hold {expected_from} frames, info.json total_frames is {info.total_frames}")
    return len(p) == n0


def _check_files(root: Path, info: DatasetInfo, episodes: list[EpisodeRecord], report: CheckReport) -> bool:
    p = report.problems
    n0 = len(p)
    want_cols = [k for k, f in info.features.items() if not f.is_video]
    seen: list[tuple[int, int]] = []
    for e in episodes:
        if seen and e.data_file != seen[-1] and e.data_file in seen:
            p.append(f"episode {e.episode_index} returns to data file {e.data_file} after another file (episodes out of file order)")
            return False
        if not seen or seen[-1] != e.data_file:
            seen.append(e.data_file)
    for chunk, file in seen:
        path = data_file_path(root, info, chunk, file)
        rel = path.relative_to(root)
        if not path.is_file():
            p.append(f"{rel} is missing (meta/episodes refers to it)")
            continue
        try:
            meta = pq.read_metadata(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            p.append(f"{rel} is not a readable parquet file ({exc})")
            continue
        cols = meta.schema.to_arrow_schema().names
        if sorted(cols) != sorted(want_cols):
            missing, extra = sorted(set(want_cols) - set(cols)), sorted(set(cols) - set(want_cols))
            p.append(f"{rel} columns disagree with info.json features (missing {missing}, undeclared {extra})")
        rows = sum(e.length for e in episodes if e.data_file == (chunk, file))
        if meta.num_rows != rows:
            p.append(f"{rel} holds {meta.num_rows} rows, its episodes in meta/episodes add up to {rows}")
    return len(p) == n0


def _check_rows(info: DatasetInfo, episodes: list[EpisodeRecord], cols: dict[str, np.ndarray], report: CheckReport) -> None:
    p = report.problems
    n = report.n_frames
    lengths = np.array([e.length for e in episodes], np.int64)
    want = {
        "index": np.arange(n, dtype=np.int64),
        "episode_index": np.repeat(np.arange(len(episodes), dtype=np.int64), lengths),
        "frame_index": np.concatenate([np.arange(k, dtype=np.int64) for k in lengths]) if len(lengths) else np.zeros(0, np.int64),
    }
    for key, expected in want.items():
        got = cols[key]
        if got.shape != expected.shape:
            p.append(f"column {key!r} has {len(got)} rows, expected {len(expected)}")
        elif not np.array_equal(got, expected):
            row = int(np.flatnonzero(got != expected)[0])
            p.append(f"column {key!r} row {row} is {got[row]}, expected {expected[row]} (gap, duplicate or reordering)")
    if cols["timestamp"].shape == cols["frame_index"].shape:
        err = np.abs(cols["timestamp"].astype(np.float64) - cols["frame_index"] / info.fps)
        if err.size and err.max() > 1e-4:
            row = int(err.argmax())
            p.append(f"timestamp at row {row} is {cols['timestamp'][row]:.6f}s, frame_index/fps says {cols['frame_index'][row] / info.fps:.6f}s")
    try:
        n_tasks = len(read_tasks(report.root))
    except DatasetError as exc:
        p.append(str(exc))
        return
    if n_tasks != info.total_tasks:
        p.append(f"meta/tasks.parquet lists {n_tasks} tasks, info.json total_tasks is {info.total_tasks}")
    ti = cols["task_index"]
    if ti.size and (ti.min() < 0 or ti.max() >= n_tasks):
        p.append(f"task_index values {ti.min()}..{ti.max()} fall outside the {n_tasks} tasks in meta/tasks.parquet")


def _check_values(info: DatasetInfo, episodes: list[EpisodeRecord], cols: dict[str, np.ndarray], report: CheckReport) -> None:
    p = report.problems
    names = info.servo_names
    a = cols[ACTION].astype(np.float64)
    bad = ~np.isfinite(a) | (np.abs(a) > 1.0 + 1e-6)
    if bad.any():
        row, j = (int(x) for x in np.argwhere(bad)[0])
        p.append(
            f"{int(bad.sum())} action values are NaN/inf or outside [-1, 1]; first at row {row} "
            f"(episode {cols['episode_index'][row]}, frame {cols['frame_index'][row]}), servo {names[j] if j < len(names) else j} = {a[row, j]}"
        )
    for key in cols:
        if key == ACTION or info.features[key].dtype != "float32":
            continue
        nonfinite = ~np.isfinite(cols[key])
        if nonfinite.any():
            row = int(np.argwhere(nonfinite)[0][0])
            p.append(f"{int(nonfinite.sum())} NaN/inf values in {key!r}; first at row {row}")


def _check_stats(root: Path, recomputed: dict[str, FeatureStats], report: CheckReport) -> None:
    try:
        stored = read_stats(root)
    except DatasetError as exc:
        report.problems.append(str(exc))
        return
    for key, s in recomputed.items():
        if key not in stored:
            report.problems.append(f"meta/stats.json lacks {key!r}")
            continue
        try:
            bad = close_enough(s, stored[key])
        except ValueError:
            bad = ["shape"]
        if bad:
            report.problems.append(
                f"meta/stats.json {key!r} {'/'.join(bad)} disagree with the data: the data was edited, or a commit was "
                "interrupted (DatasetWriter(..., resume=True) repairs that)"
            )


def _check_videos(root: Path, info: DatasetInfo, episodes: list[EpisodeRecord], report: CheckReport) -> None:
    for key in info.video_keys:
        per_file: dict[tuple[int, int], int] = {}
        for e in episodes:
            ref = e.videos.get(key)
            if ref is None:
                report.problems.append(f"episode {e.episode_index} has no {key!r} video reference")
                return
            start = per_file.get((ref.chunk_index, ref.file_index), 0)
            if abs(ref.from_timestamp - start / info.fps) > 1e-6 or abs(ref.to_timestamp - (start + e.length) / info.fps) > 1e-6:
                report.problems.append(f"episode {e.episode_index}: {key} timestamps {ref.from_timestamp}..{ref.to_timestamp} do not tile its video file")
            per_file[(ref.chunk_index, ref.file_index)] = start + e.length
        for (chunk, file), frames in per_file.items():
            path = video_file_path(root, info, key, chunk, file)
            if not path.is_file():
                report.problems.append(f"{path.relative_to(root)} is missing")
                continue
            cap = cv2.VideoCapture(str(path))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else -1
            cap.release()
            if n != frames:
                report.problems.append(f"{path.relative_to(root)} has {n} frames, its episodes need {frames}")


def _check_residue(root: Path, episodes: list[EpisodeRecord], report: CheckReport) -> None:
    if (root / WRITER_LOCK).exists():
        report.warnings.append(f"{WRITER_LOCK} present: a writer is running or was killed (only committed episodes were checked)")
    referenced = {f"chunk-{c:03d}/file-{f:03d}" for c, f in data_files(episodes)}
    for top in ("data", "videos", "meta/episodes"):
        for path in sorted((root / top).rglob("*")) if (root / top).is_dir() else ():
            if not path.is_file():
                continue
            rel = path.relative_to(root)
            if is_temporary(path):
                report.warnings.append(f"{rel}: residue of an interrupted write (DatasetWriter(resume=True) removes it)")
            elif f"{path.parent.name}/{path.stem}" not in referenced:
                report.warnings.append(f"{rel}: not referenced by meta/episodes (uncommitted; resume removes it)")
