"""`facetwin perceive --engine torch|mediapipe`: either engine, the same table out, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facetwin.app.cli import main
from facetwin.expression import BLENDSHAPE_NAMES, HEAD_ANGLE_NAMES


@pytest.fixture(scope="module")
def folder(tmp_path_factory, faces_dir):
    import cv2

    shots = tmp_path_factory.mktemp("shots")
    for name in ("cremad_1001_happy.jpg", "max_surprised.jpg"):
        (shots / name).write_bytes((faces_dir / "images" / name).read_bytes())
    cv2.imwrite(str(shots / "wall.png"), np.full((120, 160, 3), 200, np.uint8))
    return shots


def _frames(path: Path) -> list[dict]:
    return json.loads(path.read_text())["frames"]


def test_both_engines_write_the_same_fields_and_agree(folder, tmp_path, capsys, torch_one_thread):
    outs = {}
    for engine in ("mediapipe", "torch"):
        outs[engine] = tmp_path / f"{engine}.json"
        assert main(["perceive", str(folder), "--engine", engine, "--out", str(outs[engine])]) == 0
        assert "3 frames, face found in 2 (67%)" in capsys.readouterr().out
    reference, got = _frames(outs["mediapipe"]), _frames(outs["torch"])
    assert [set(f) for f in got] == [set(f) for f in reference]
    for ref, row in zip(reference, got):
        assert (row["path"], row["face_found"], row["image_width"]) == (ref["path"], ref["face_found"], ref["image_width"])
        if ref["face_found"]:
            assert np.mean([abs(row[n] - ref[n]) for n in BLENDSHAPE_NAMES]) < 0.003
            assert max(abs(row[n] - ref[n]) for n in HEAD_ANGLE_NAMES) < 0.1


def test_a_video_is_tracked_by_the_torch_engine(faces_dir, tmp_path, capsys, torch_one_thread):
    out = tmp_path / "clip.parquet"
    video = faces_dir / "videos" / "single_face.mp4"
    assert main(["perceive", str(video), "--engine", "torch", "--smooth", "--max-frames", "8", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "8 frames, face found in 8 (100%)" in text and "engine: torch on cpu" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--engine", "torch", "--device", "cuda"], "sees no CUDA device"),
        (["--device", "cuda"], "--device selects where --engine torch runs"),
    ],
)
def test_engine_errors_are_one_line_and_exit_2(argv, message, faces_dir, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a machine with a GPU
    assert main(["perceive", str(faces_dir / "images" / "max_angry.jpg"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("facetwin perceive: error:") and message in err[-1]


def test_an_unknown_engine_is_refused_by_argparse(faces_dir, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["perceive", str(faces_dir / "images" / "max_angry.jpg"), "--engine", "onnx"])
    assert stop.value.code == 2 and "invalid choice: 'onnx'" in capsys.readouterr().err
