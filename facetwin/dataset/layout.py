"""The on-disk layout of a facetwin dataset: LeRobotDataset v3.0 (`codebase_version` "v3.0").

    meta/info.json                              schema, fps, totals, path templates (the commit record)
    meta/stats.json                             per-feature min/max/mean/std/count over all frames
    meta/tasks.parquet                          task text (pandas index "task") -> task_index
    meta/episodes/chunk-XXX/file-YYY.parquet    one row per episode of data file XXX/YYY: length, row range,
                                                file refs, per-episode stats
    data/chunk-XXX/file-YYY.parquet             frames; whole episodes, several per file
    videos/<video_key>/chunk-XXX/file-YYY.mp4   optional renders, one video per data file
    README.md                                   dataset card

The names and templates follow lerobot's `datasets/utils.py` so `LeRobotDataset(root=...)` can open
the folder; facetwin only needs pyarrow to write and read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from facetwin.expression import EXPRESSION_NAMES, N_LANDMARKS
from facetwin.spec import FaceSpec, face_of

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
CARD_PATH = "README.md"
WRITER_LOCK = ".facetwin-writer.lock"  # held (flock) by the one DatasetWriter of a folder
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
DEFAULT_CHUNKS_SIZE = 1000  # files per chunk directory, as in lerobot
DEFAULT_DATA_FILE_SIZE_IN_MB = 100  # lerobot's field; facetwin rolls files by frame count instead

ACTION = "action"
STATE = "observation.state"
EXPRESSION = "observation.expression"
LANDMARKS = "observation.landmarks"
RENDER = "observation.images.render"
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
DEFAULT_TASK = "mimic: servo commands to the observed facial expression"


class DatasetError(ValueError):
    """A dataset folder is missing, malformed, or does not match what the caller asked for."""


# What to do about a committed file that no longer reads: the writer never rewrites one in place (every
# write is a rename of a finished, fsynced file), so the damage came from the disk or a copy.
DAMAGED_FIX = "restore the folder from a copy, or collect into a new one; `facetwin dataset check DIR` lists every damaged file"
# How a dataset's expressions were read from the twin. fast: the twin's own landmarks through the blendshape
# network; pixels: a 512 px render read by the full Face Landmarker, as a camera sees the face. The two
# disagree by more than the landmarker's jitter (docs/camera.md), so rows of one never mix with the other's.
READOUTS = ("fast", "pixels")


def check_readout(readout: str) -> str:
    if readout not in READOUTS:
        raise DatasetError(f"unknown readout {readout!r}; choose one of {', '.join(READOUTS)}")
    return readout


def same_readout(what: str, theirs: str, other: str, ours: str) -> None:
    """One line when two sources of labels were read differently (a fast dataset resumed with pixels, ...)."""
    if theirs != ours:
        raise DatasetError(f"{what} was read through the {theirs} readout but {other} through the {ours} readout; "
                           f"readouts never mix: use one readout throughout ({other} collected with --readout {theirs}, or {what} "
                           f"made anew from {ours} labels)")


def one_line(exc: BaseException) -> str:
    """An exception's text on one line (YAML, pyarrow and JSON errors can span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A parquet file, page checksums verified; a truncated, bit-flipped or empty file raises DatasetError naming it."""
    try:
        table = pq.read_table(path, columns=columns, page_checksum_verification=True)
        table.column_names  # a damaged footer can hold undecodable names: fail here, not later
        return table
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing; {DAMAGED_FIX}") from None
    except (pa.ArrowException, OSError, ValueError, KeyError) as exc:  # ArrowInvalid, IOError on bad pages, bad UTF-8
        raise DatasetError(f"{path} is damaged or truncated ({one_line(exc)[:160]}); {DAMAGED_FIX}") from exc


@dataclass(frozen=True)
class Feature:
    """One column of the dataset as info.json describes it (lerobot's dtype/shape/names triple)."""

    dtype: str  # "float32", "int64", "video", ...
    shape: tuple[int, ...]
    names: tuple[str, ...] | None = None
    info: dict | None = None  # video metadata

    def to_json(self) -> dict:
        out = {"dtype": self.dtype, "shape": list(self.shape), "names": None if self.names is None else list(self.names)}
        if self.info is not None:
            out["info"] = dict(self.info)
        return out

    @classmethod
    def from_json(cls, raw: dict) -> "Feature":
        names = raw.get("names")
        if raw["dtype"] != "video":
            np.dtype(raw["dtype"])  # TypeError for a name numpy does not know (a damaged info.json)
        return cls(
            dtype=str(raw["dtype"]),
            shape=tuple(int(s) for s in raw["shape"]),
            names=None if names is None else tuple(str(n) for n in names),
            info=raw.get("info"),
        )

    @property
    def is_video(self) -> bool:
        return self.dtype == "video"


def build_features(
    spec: FaceSpec,
    *,
    landmarks: bool = True,
    render_size: tuple[int, int] | None = None,
    fps: int = 30,
    extra: dict[str, Feature] | None = None,
) -> dict[str, Feature]:
    """The feature table of a facetwin dataset, in column order."""
    features: dict[str, Feature] = {
        ACTION: Feature("float32", (spec.n,), spec.names),
        STATE: Feature("float32", (spec.n,), spec.names),
        EXPRESSION: Feature("float32", (len(EXPRESSION_NAMES),), EXPRESSION_NAMES),
    }
    if landmarks:
        features[LANDMARKS] = Feature("float32", (N_LANDMARKS, 3), ("landmark", "xyz"))
    for key, ft in (extra or {}).items():
        if key in features or key in INDEX_FEATURES or "/" in key:
            raise DatasetError(f"extra feature {key!r} clashes with a built-in feature or contains '/'; rename it")
        if ft.is_video:
            raise DatasetError(f"extra feature {key!r}: videos are declared with render_size, not extra_features")
        features[key] = ft
    if render_size is not None:
        h, w = render_size
        features[RENDER] = Feature(
            "video",
            (h, w, 3),
            ("height", "width", "channels"),
            {
                "video.height": h,
                "video.width": w,
                "video.codec": "mp4v",
                "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": 3,
                "has_audio": False,
            },
        )
    features["timestamp"] = Feature("float32", (1,))
    for key in ("frame_index", "episode_index", "index", "task_index"):
        features[key] = Feature("int64", (1,))
    return features


@dataclass(frozen=True)
class DatasetInfo:
    """meta/info.json: what the dataset holds and where. Totals count committed episodes only."""

    fps: int
    features: dict[str, Feature]
    robot_type: str
    spec_name: str
    spec_version: int
    spec_fingerprint: str
    total_episodes: int = 0
    total_frames: int = 0
    total_tasks: int = 0
    chunks_size: int = DEFAULT_CHUNKS_SIZE
    chunk_frames: int = 0  # facetwin's roll-over rule: a data file closes once it holds this many frames
    codebase_version: str = CODEBASE_VERSION
    data_path: str = DATA_PATH
    video_path: str | None = None
    face: str = ""  # the face it was recorded on (`--face`); "" in datasets from before faces had names
    readout: str = "fast"  # how its expressions were read (READOUTS); datasets from before record none: fast

    @property
    def video_keys(self) -> tuple[str, ...]:
        return tuple(k for k, f in self.features.items() if f.is_video)

    @property
    def servo_names(self) -> tuple[str, ...]:
        return self.features[ACTION].names or ()

    @property
    def recorded_face(self) -> str | None:
        """The face the dataset was recorded on: as written, or (older datasets) the packaged face whose spec it
        names; None when neither says."""
        return self.face or face_of(self.spec_name, self.spec_fingerprint) or face_of(self.spec_name)

    def to_json(self) -> dict:
        return {
            "codebase_version": self.codebase_version,
            "robot_type": self.robot_type,
            "total_episodes": self.total_episodes,
            "total_frames": self.total_frames,
            "total_tasks": self.total_tasks,
            "chunks_size": self.chunks_size,
            "data_files_size_in_mb": DEFAULT_DATA_FILE_SIZE_IN_MB,
            "video_files_size_in_mb": DEFAULT_DATA_FILE_SIZE_IN_MB * 2,
            "fps": self.fps,
            "splits": {"train": f"0:{self.total_episodes}"},
            "data_path": self.data_path,
            "video_path": self.video_path,
            "features": {k: f.to_json() for k, f in self.features.items()},
            "facetwin": {
                "face": self.face,
                "readout": self.readout,
                "spec_name": self.spec_name,
                "spec_version": self.spec_version,
                "spec_fingerprint": self.spec_fingerprint,
                "chunk_frames": self.chunk_frames,
            },
        }

    @classmethod
    def from_json(cls, raw: dict, source: str = INFO_PATH) -> "DatasetInfo":
        try:
            ft = raw.get("facetwin", {})
            return cls(
                fps=int(raw["fps"]),
                features={k: Feature.from_json(v) for k, v in raw["features"].items()},
                robot_type=str(raw.get("robot_type")),
                spec_name=str(ft.get("spec_name", "")),
                spec_version=int(ft.get("spec_version", 0)),
                spec_fingerprint=str(ft.get("spec_fingerprint", "")),
                total_episodes=int(raw["total_episodes"]),
                total_frames=int(raw["total_frames"]),
                total_tasks=int(raw.get("total_tasks", 0)),
                chunks_size=int(raw["chunks_size"]),
                chunk_frames=int(ft.get("chunk_frames", 0)),
                codebase_version=str(raw["codebase_version"]),
                data_path=str(raw["data_path"]),
                video_path=raw.get("video_path"),
                face=str(ft.get("face", "")),
                readout=str(ft.get("readout", "fast")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DatasetError(f"{source}: malformed info.json ({one_line(exc)!r}); was it written by a LeRobot v3.0 writer? "
                               f"If so it is damaged: {DAMAGED_FIX}") from exc


@dataclass(frozen=True)
class VideoRef:
    chunk_index: int
    file_index: int
    from_timestamp: float
    to_timestamp: float


@dataclass(frozen=True)
class EpisodeRecord:
    """One row of meta/episodes: where an episode's frames live."""

    episode_index: int
    length: int
    dataset_from_index: int
    dataset_to_index: int
    data_chunk_index: int
    data_file_index: int
    tasks: tuple[str, ...]
    videos: dict[str, VideoRef] = field(default_factory=dict)

    @property
    def data_file(self) -> tuple[int, int]:
        return (self.data_chunk_index, self.data_file_index)


def data_file_path(root: Path, info: DatasetInfo, chunk_index: int, file_index: int) -> Path:
    return root / info.data_path.format(chunk_index=chunk_index, file_index=file_index)


def video_file_path(root: Path, info: DatasetInfo, key: str, chunk_index: int, file_index: int) -> Path:
    if info.video_path is None:
        raise DatasetError("this dataset stores no videos (info.json video_path is null)")
    return root / info.video_path.format(video_key=key, chunk_index=chunk_index, file_index=file_index)


def read_info(root: str | Path) -> DatasetInfo:
    path = Path(root) / INFO_PATH
    if not path.is_file():
        raise DatasetError(f"{path} not found: {root} is not a LeRobot v3.0 dataset (or nothing was committed yet)")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # truncated or bit-flipped
        raise DatasetError(f"{path} is not valid JSON (truncated or damaged: {one_line(exc)}); it is the dataset's commit "
                           f"record: {DAMAGED_FIX}") from exc
    if not isinstance(raw, dict):
        raise DatasetError(f"{path} holds no JSON object (damaged?); {DAMAGED_FIX}")
    return DatasetInfo.from_json(raw, str(path))


def episode_files(root: str | Path) -> list[Path]:
    return sorted((Path(root) / EPISODES_DIR).glob("chunk-*/file-*.parquet"))


def read_episode_table(root: str | Path, info: DatasetInfo, *, with_stats: bool = False) -> pa.Table:
    """All rows of meta/episodes, cut to the committed episodes (later rows belong to an interrupted commit)."""
    files = episode_files(root)
    if info.total_episodes and not files:
        raise DatasetError(f"{Path(root) / EPISODES_DIR} holds no episode files, yet info.json counts {info.total_episodes} episodes")
    tables = []
    for path in files:
        tables.append(read_parquet(path, None if with_stats else [n for n in schema_names(path) if not n.startswith("stats/")]))
    if not tables:
        return pa.table({})
    try:
        table = pa.concat_tables(tables)
    except pa.ArrowInvalid as exc:
        raise DatasetError(f"{Path(root) / EPISODES_DIR}: episode files disagree on their columns ({one_line(exc)[:160]}); "
                           f"{DAMAGED_FIX}") from exc
    return table.slice(0, info.total_episodes)


def schema_names(path: Path) -> list[str]:
    try:
        return pq.read_schema(path).names
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DatasetError(f"{path} is damaged or truncated ({one_line(exc)[:160]}); {DAMAGED_FIX}") from exc


def read_episodes(root: str | Path, info: DatasetInfo) -> list[EpisodeRecord]:
    """The committed episodes, in index order."""
    if info.total_episodes == 0:
        return []
    table = read_episode_table(root, info).to_pydict()
    where = Path(root) / EPISODES_DIR
    try:
        return _records(table, info)
    except (KeyError, TypeError, ValueError) as exc:  # a column name or value the footer no longer holds
        raise DatasetError(f"{where}: an episodes file is damaged ({one_line(exc)[:160]}); {DAMAGED_FIX}") from exc


def _records(table: dict, info: DatasetInfo) -> list[EpisodeRecord]:
    out = []
    for i in range(len(table["episode_index"])):
        videos = {
            key: VideoRef(
                int(table[f"videos/{key}/chunk_index"][i]),
                int(table[f"videos/{key}/file_index"][i]),
                float(table[f"videos/{key}/from_timestamp"][i]),
                float(table[f"videos/{key}/to_timestamp"][i]),
            )
            for key in info.video_keys
            if f"videos/{key}/chunk_index" in table
        }
        out.append(
            EpisodeRecord(
                episode_index=int(table["episode_index"][i]),
                length=int(table["length"][i]),
                dataset_from_index=int(table["dataset_from_index"][i]),
                dataset_to_index=int(table["dataset_to_index"][i]),
                data_chunk_index=int(table["data/chunk_index"][i]),
                data_file_index=int(table["data/file_index"][i]),
                tasks=tuple(table["tasks"][i] or ()),
                videos=videos,
            )
        )
    return out
