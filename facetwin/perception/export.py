"""Perceived frames on disk: one row per frame in Parquet (with landmarks) or JSON (without).

Columns: path, index, timestamp, face_found, image_width, image_height, the 52 blendshape names,
head_yaw, head_pitch, head_roll (degrees) and, in Parquet, landmarks: 478*3 float32 in pixels
(x, y, z row-major), null where no face was found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from facetwin.expression import BLENDSHAPE_NAMES, HEAD_ANGLE_NAMES, N_LANDMARKS, Expression
from facetwin.perception.errors import PerceptionError

FORMATS = (".parquet", ".json")
_LANDMARK_VALUES = N_LANDMARKS * 3


@dataclass
class PerceivedFrame:
    path: str  # the image or video file, or "webcam:N"
    index: int  # frame position in the source
    expression: Expression


def check_output_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise PerceptionError(f"cannot write {path}: the output must end in {' or '.join(FORMATS)}")
    return path


def _row(rec: PerceivedFrame) -> dict:
    e = rec.expression
    width, height = e.image_size or (0, 0)
    row = {
        "path": rec.path,
        "index": int(rec.index),
        "timestamp": float(e.timestamp),
        "face_found": bool(e.face_found),
        "image_width": int(width),
        "image_height": int(height),
    }
    row.update({n: float(v) for n, v in zip(BLENDSHAPE_NAMES, e.blendshapes)})
    row.update({n: float(v) for n, v in zip(HEAD_ANGLE_NAMES, e.head)})
    return row


def write_perceived(path: str | Path, records: Sequence[PerceivedFrame]) -> Path:
    path = check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [_row(r) for r in records]
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps({"frames": rows}, indent=1))
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {key: [row[key] for row in rows] for key in (rows[0] if rows else _row(_EMPTY))}
    table = pa.table(columns)
    flat = [
        None if r.expression.landmarks is None else np.asarray(r.expression.landmarks, np.float32).reshape(-1)
        for r in records
    ]
    landmarks = pa.array(flat, type=pa.list_(pa.float32(), _LANDMARK_VALUES))
    table = table.append_column("landmarks", landmarks)
    table = table.replace_schema_metadata({"facetwin.landmarks": "478x3 float32, x y z in pixels"})
    pq.write_table(table, path)
    return path


def read_perceived(path: str | Path) -> list[PerceivedFrame]:
    """Read back what ``write_perceived`` wrote (landmarks only from Parquet)."""
    path = check_output_path(path)
    if path.suffix.lower() == ".json":
        rows = json.loads(path.read_text())["frames"]
        flat = [None] * len(rows)
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        flat = table.column("landmarks").to_pylist()
        rows = table.drop_columns(["landmarks"]).to_pylist()
    out = []
    for row, lm in zip(rows, flat):
        size = (row["image_width"], row["image_height"]) if row["image_width"] else None
        expr = Expression(
            blendshapes=np.array([row[n] for n in BLENDSHAPE_NAMES], np.float32),
            head=np.array([row[n] for n in HEAD_ANGLE_NAMES], np.float32),
            landmarks=None if lm is None else np.asarray(lm, np.float32).reshape(N_LANDMARKS, 3),
            timestamp=row["timestamp"],
            face_found=row["face_found"],
            image_size=size,
        )
        out.append(PerceivedFrame(row["path"], row["index"], expr))
    return out


_EMPTY = PerceivedFrame("", 0, Expression.empty())
