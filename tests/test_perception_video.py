"""FacePerceiver in video mode: tracks a face through a clip, smooths on request, survives lost faces."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from facetwin.perception import FacePerceiver, OneEuroConfig, open_source

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
VIDEO = SHARED / "faces" / "videos" / "single_face.mp4"  # 72 frames, neutral -> smile
os.environ.setdefault("FACETWIN_FACE_LANDMARKER", str(SHARED / "models" / "face_landmarker.task"))


def smile(expr) -> float:
    return (expr.coefficient("mouthSmileLeft") + expr.coefficient("mouthSmileRight")) / 2


@pytest.fixture(scope="module")
def frames():
    with open_source(VIDEO) as source:
        return list(source)


def perceive_clip(frames, **kwargs):
    with FacePerceiver(mode="video", **kwargs) as p:
        return [p.perceive(f.rgb, f.timestamp) for f in frames]


@pytest.fixture(scope="module")
def raw(frames):
    return perceive_clip(frames)


@pytest.fixture(scope="module")
def smoothed(frames):
    return perceive_clip(frames, smoothing=OneEuroConfig())


def test_a_face_is_found_on_nearly_every_frame_and_the_smile_rises(frames, raw):
    assert len(raw) == 72
    assert sum(e.face_found for e in raw) >= 0.95 * len(raw)
    smiles = np.array([smile(e) for e in raw])
    assert smiles[:10].mean() < 0.1 and smiles[-10:].mean() > 0.6
    assert [e.timestamp for e in raw] == [f.timestamp for f in frames]


def test_smoothing_calms_the_track_but_keeps_the_smile(raw, smoothed):
    a = np.array([e.vector for e in raw])
    b = np.array([e.vector for e in smoothed])
    assert np.abs(np.diff(b, axis=0)).mean() < np.abs(np.diff(a, axis=0)).mean()
    assert np.array([smile(e) for e in smoothed])[-10:].mean() > 0.6
    assert np.abs(b - a).max(axis=0)[:52].max() < 0.5  # follows, does not flatten
    # Landmarks are left raw: only the expression vector is filtered.
    np.testing.assert_allclose(smoothed[40].landmarks, raw[40].landmarks, atol=1e-3)


def test_a_lost_face_is_flagged_and_tracking_resumes(frames):
    blank = np.zeros_like(frames[0].rgb)
    with FacePerceiver(mode="video", smoothing=OneEuroConfig()) as p:
        before = p.perceive(frames[0].rgb, 0.0)
        gone = p.perceive(blank, 0.033)
        back = p.perceive(frames[60].rgb, 0.066)
    assert before.face_found and not gone.face_found and back.face_found
    assert gone.timestamp == 0.033 and gone.image_size == (640, 360)
    # The smoothing restarted: the smile is not dragged down by the neutral frame before the gap.
    assert smile(back) > 0.6


def test_repeated_or_missing_timestamps_do_not_break_video_mode(frames):
    with FacePerceiver(mode="video") as p:
        out = [p.perceive(frames[i].rgb, 0.0) for i in range(3)]
        out.append(p.perceive(frames[3].rgb))
    assert all(e.face_found for e in out)
