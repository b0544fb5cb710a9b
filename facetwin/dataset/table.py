"""Conversions between numpy frames and the Arrow tables stored in parquet.

Column types match what Hugging Face `datasets` writes for lerobot's features, so lerobot reads
the files without casting surprises: scalars are plain values, 1-D vectors are fixed-size lists
(`Sequence(length=n)`), and 2-D arrays are nested lists (the storage of `Array2D`).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from facetwin.dataset.layout import DAMAGED_FIX, DatasetError, EpisodeRecord, Feature
from facetwin.dataset.stats import FeatureStats

STAT_NAMES = ("min", "max", "mean", "std", "count")


def to_arrow(values: np.ndarray, feature: Feature) -> pa.Array:
    v = np.ascontiguousarray(values, dtype=np.dtype(feature.dtype))
    n = len(v)
    if feature.shape == (1,):
        return pa.array(v.reshape(n))
    flat = pa.array(v.reshape(-1))
    if len(feature.shape) == 1:
        return pa.FixedSizeListArray.from_arrays(flat, feature.shape[0])
    arr = flat
    rows = n
    for d in reversed(feature.shape):  # innermost axis first
        count = len(arr) // d
        arr = pa.ListArray.from_arrays(pa.array(np.arange(0, count * d + 1, d, dtype=np.int32)), arr)
    assert len(arr) == rows
    return arr


def to_numpy(column: pa.ChunkedArray | pa.Array, feature: Feature, name: str) -> np.ndarray:
    """(N, *shape) array of `feature.dtype`; raises DatasetError on ragged or mis-shaped rows."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    if arr.null_count:
        raise DatasetError(f"column {name!r} has {arr.null_count} null values")
    depth = 0
    while pa.types.is_list(arr.type) or pa.types.is_fixed_size_list(arr.type) or pa.types.is_large_list(arr.type):
        if arr.null_count:
            raise DatasetError(f"column {name!r} has null elements")
        arr = arr.flatten()
        depth += 1
    shape = feature.shape
    expected_depth = 0 if shape == (1,) else len(shape)
    if depth != expected_depth or len(arr) != n * int(np.prod(shape)):
        raise DatasetError(
            f"column {name!r} does not hold {n} rows of shape {list(shape)} "
            f"(found {depth}-level nesting and {len(arr)} values); info.json and the data disagree: {DAMAGED_FIX}"
        )
    out = arr.to_numpy(zero_copy_only=False)
    if out.dtype != np.dtype(feature.dtype):
        raise DatasetError(f"column {name!r} stores {out.dtype}, info.json declares {feature.dtype}: {DAMAGED_FIX}")
    return out.reshape((n,) if shape == (1,) else (n, *shape))


def frames_table(columns: dict[str, np.ndarray], features: dict[str, Feature]) -> pa.Table:
    names = [k for k, f in features.items() if not f.is_video]
    return pa.table({k: to_arrow(columns[k], features[k]) for k in names})


def episodes_table(
    records: list[EpisodeRecord], stats: list[dict[str, FeatureStats]], video_keys: tuple[str, ...]
) -> pa.Table:
    cols: dict[str, pa.Array] = {
        "episode_index": pa.array([r.episode_index for r in records], pa.int64()),
        "tasks": pa.array([list(r.tasks) for r in records], pa.list_(pa.string())),
        "length": pa.array([r.length for r in records], pa.int64()),
        "data/chunk_index": pa.array([r.data_chunk_index for r in records], pa.int64()),
        "data/file_index": pa.array([r.data_file_index for r in records], pa.int64()),
        "dataset_from_index": pa.array([r.dataset_from_index for r in records], pa.int64()),
        "dataset_to_index": pa.array([r.dataset_to_index for r in records], pa.int64()),
    }
    for key in video_keys:
        cols[f"videos/{key}/chunk_index"] = pa.array([r.videos[key].chunk_index for r in records], pa.int64())
        cols[f"videos/{key}/file_index"] = pa.array([r.videos[key].file_index for r in records], pa.int64())
        cols[f"videos/{key}/from_timestamp"] = pa.array([r.videos[key].from_timestamp for r in records], pa.float64())
        cols[f"videos/{key}/to_timestamp"] = pa.array([r.videos[key].to_timestamp for r in records], pa.float64())
    # Each data file gets its own meta/episodes file with the same chunk/file numbers.
    cols["meta/episodes/chunk_index"] = pa.array([r.data_chunk_index for r in records], pa.int64())
    cols["meta/episodes/file_index"] = pa.array([r.data_file_index for r in records], pa.int64())
    for key in stats[0] if stats else ():
        for stat in STAT_NAMES:
            if stat == "count":
                cols[f"stats/{key}/count"] = pa.array([[s[key].count] for s in stats], pa.list_(pa.int64()))
            else:
                cols[f"stats/{key}/{stat}"] = pa.array([getattr(s[key], stat).tolist() for s in stats])
    return pa.table(cols)


def episode_stats_from_table(table: pa.Table, keys: list[str]) -> list[dict[str, FeatureStats]]:
    data = table.to_pydict()
    out = []
    for i in range(table.num_rows):
        row = {}
        for key in keys:
            row[key] = FeatureStats.from_json({s: data[f"stats/{key}/{s}"][i] for s in STAT_NAMES})
        out.append(row)
    return out


def tasks_table(tasks: list[str]) -> pa.Table:
    """meta/tasks.parquet as lerobot's pandas writer leaves it: index "task", column "task_index"."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}
        ],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
