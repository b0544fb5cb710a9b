"""Reading a dataset back into numpy: only committed episodes, in index order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facetwin.dataset.layout import (
    ACTION,
    EXPRESSION,
    LANDMARKS,
    STATE,
    STATS_PATH,
    TASKS_PATH,
    DAMAGED_FIX,
    INFO_PATH,
    DatasetError,
    DatasetInfo,
    EpisodeRecord,
    data_file_path,
    one_line,
    read_episodes,
    read_info,
    read_parquet,
    schema_names,
)
from facetwin.dataset.stats import FeatureStats
from facetwin.dataset.table import to_numpy

CORE = (ACTION, STATE, EXPRESSION, LANDMARKS, "episode_index", "frame_index", "timestamp", "index", "task_index")


@dataclass
class DatasetArrays:
    """All frames of a dataset as arrays, row i of each being the same frame."""

    action: np.ndarray  # (N, n_servos) float32 in [-1, 1]
    state: np.ndarray  # (N, n_servos) float32
    expression: np.ndarray  # (N, 55) float32
    landmarks: np.ndarray | None  # (N, 478, 3) float32, None when not stored or not requested
    episode_index: np.ndarray  # (N,) int64
    frame_index: np.ndarray  # (N,) int64
    timestamp: np.ndarray  # (N,) float32 seconds
    index: np.ndarray  # (N,) int64 global frame index
    task_index: np.ndarray  # (N,) int64
    info: DatasetInfo
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # extra features by name

    def __len__(self) -> int:
        return len(self.action)

    @property
    def n_episodes(self) -> int:
        return self.info.total_episodes

    def episode_mask(self, episodes) -> np.ndarray:
        """Boolean row mask of the given episode indices (for train/validation splits by episode)."""
        return np.isin(self.episode_index, np.asarray(list(episodes), dtype=np.int64))


def data_files(episodes: list[EpisodeRecord]) -> list[tuple[int, int]]:
    """The committed data files in order, each once."""
    return list(dict.fromkeys(r.data_file for r in episodes))


def read_columns(root: Path, info: DatasetInfo, episodes: list[EpisodeRecord], keys: list[str]) -> dict[str, np.ndarray]:
    """Selected feature columns of all committed episodes, concatenated over data files."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for chunk, file in data_files(episodes):
        path = data_file_path(root, info, chunk, file)
        if not path.is_file():
            raise DatasetError(f"{path} is missing but meta/episodes refers to it")
        held = set(schema_names(path))
        unknown = [k for k in keys if k not in held]
        if unknown:  # the file's own schema is checksummed with it: the column list in info.json is what went wrong
            raise DatasetError(f"{root / INFO_PATH} lists columns {unknown} that {path.relative_to(root)} does not hold: "
                               f"one of the two files is damaged; {DAMAGED_FIX}")
        table = read_parquet(path, keys)
        for k in keys:
            parts[k].append(to_numpy(table.column(k), info.features[k], f"{path.relative_to(root)}:{k}"))
    return {k: np.concatenate(v) if v else _empty(info, k) for k, v in parts.items()}


def _empty(info: DatasetInfo, key: str) -> np.ndarray:
    ft = info.features[key]
    return np.zeros((0,) if ft.shape == (1,) else (0, *ft.shape), ft.dtype)


def load_arrays(root: str | Path, *, landmarks: bool = True) -> DatasetArrays:
    """Load every committed frame. `landmarks=False` skips the largest column (~5.7 kB per frame)."""
    root = Path(root)
    info = read_info(root)
    episodes = read_episodes(root, info)
    keys = [k for k, f in info.features.items() if not f.is_video and (landmarks or k != LANDMARKS)]
    cols = read_columns(root, info, episodes, keys)
    return DatasetArrays(
        action=cols.pop(ACTION),
        state=cols.pop(STATE),
        expression=cols.pop(EXPRESSION),
        landmarks=cols.pop(LANDMARKS, None),
        episode_index=cols.pop("episode_index"),
        frame_index=cols.pop("frame_index"),
        timestamp=cols.pop("timestamp"),
        index=cols.pop("index"),
        task_index=cols.pop("task_index"),
        info=info,
        extra=cols,
    )


def load_actions(root: str | Path, episode: int | None = None) -> tuple[np.ndarray, DatasetInfo]:
    """The action rows of every committed episode, or of one, and the dataset's info (fps, servo names).
    Replaying commands needs neither the observations nor the data files of other episodes, so neither is read."""
    root = Path(root)
    info = read_info(root)
    episodes = read_episodes(root, info)
    if episode is None:
        return read_columns(root, info, episodes, [ACTION])[ACTION], info
    episodes = [r for r in episodes if r.episode_index == episode]
    cols = read_columns(root, info, episodes, [ACTION, "episode_index"])
    return cols[ACTION][cols["episode_index"] == episode], info


def read_stats(root: str | Path) -> dict[str, FeatureStats]:
    path = Path(root) / STATS_PATH
    if not path.is_file():
        raise DatasetError(f"{path} not found")
    try:
        return {k: FeatureStats.from_json(v) for k, v in json.loads(path.read_text()).items()}
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:  # JSON/UTF-8 errors are ValueErrors
        raise DatasetError(f"{path} is truncated or damaged ({one_line(exc)[:120]}); it is recomputed from meta/episodes "
                           f"when the writer resumes: re-run the collection with --resume") from exc


def read_tasks(root: str | Path) -> list[str]:
    """Task texts ordered by task_index."""
    path = Path(root) / TASKS_PATH
    if not path.is_file():
        raise DatasetError(f"{path} not found")
    t = read_parquet(path, ["task_index", "task"]).to_pydict()
    return [task for _, task in sorted(zip(t["task_index"], t["task"]))]
