"""`facetwin perceive`: per-frame table out, a short summary, one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from facetwin.app.cli import main
from facetwin.expression import BLENDSHAPE_NAMES, HEAD_ANGLE_NAMES
from facetwin.perception.export import read_perceived

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FACES = SHARED / "faces" / "images"
VIDEO = SHARED / "faces" / "videos" / "single_face.mp4"
os.environ.setdefault("FACETWIN_FACE_LANDMARKER", str(SHARED / "models" / "face_landmarker.task"))


def test_a_video_to_parquet_with_landmarks(tmp_path, capsys):
    out = tmp_path / "smile.parquet"
    assert main(["perceive", str(VIDEO), "--out", str(out), "--smooth", "--max-frames", "30"]) == 0
    text = capsys.readouterr().out
    assert "30 frames, face found in 30 (100%)" in text and "top blendshapes" in text
    rows = read_perceived(out)
    assert [r.index for r in rows] == list(range(30))
    assert all(r.path == str(VIDEO) and r.expression.face_found for r in rows)
    assert rows[5].expression.landmarks.shape == (478, 3) and rows[5].expression.image_size == (640, 360)
    import pyarrow.parquet as pq

    columns = pq.read_schema(out).names
    assert columns[:6] == ["path", "index", "timestamp", "face_found", "image_width", "image_height"]
    assert columns[6:-1] == list(BLENDSHAPE_NAMES + HEAD_ANGLE_NAMES) and columns[-1] == "landmarks"


def test_images_to_json_keep_frames_without_a_face(tmp_path, capsys):
    import cv2

    folder = tmp_path / "shots"
    folder.mkdir()
    for name in ("cremad_1001_happy.jpg", "max_neutral.jpg"):
        (folder / name).write_bytes((FACES / name).read_bytes())
    cv2.imwrite(str(folder / "wall.png"), np.full((120, 160, 3), 200, np.uint8))
    out = tmp_path / "shots.json"
    assert main(["perceive", str(folder), "--out", str(out)]) == 0
    assert "3 frames, face found in 2 (67%)" in capsys.readouterr().out
    frames = json.loads(out.read_text())["frames"]
    assert [Path(f["path"]).name for f in frames] == ["cremad_1001_happy.jpg", "max_neutral.jpg", "wall.png"]
    assert [f["face_found"] for f in frames] == [True, True, False]
    assert frames[0]["mouthSmileLeft"] > 0.5 and "landmarks" not in frames[0]
    assert set(BLENDSHAPE_NAMES) | {"head_yaw", "head_pitch", "head_roll"} <= set(frames[0])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["perceive", "/no/such/face.jpg"], "does not exist"),
        (["perceive", str(FACES), "--smooth"], "--smooth"),
        (["perceive", str(FACES / "max_angry.jpg"), "--out", "x.csv"], ".parquet or .json"),
        (["perceive", str(FACES / "max_angry.jpg"), "--landmarker", "/no/model.task"], "does not exist"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("facetwin perceive: error:") and message in err[-1]


def test_a_corrupt_file_is_a_user_error(tmp_path, capsys):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00garbage" * 500)
    assert main(["perceive", str(bad)]) == 2
    assert "clip.mp4 is not a readable video" in capsys.readouterr().err
