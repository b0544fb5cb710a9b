"""`facetwin bench oracle --quick`: today's pixel oracle and the lockstep one on the same faces and budgets, both
scored by the same reading, with their seconds, CPU seconds and ratio."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def figures():
    from facetwin.app.bench.oracle import run

    return run(quick=True)


def test_both_paths_search_the_same_faces_and_beat_the_neutral_face(figures):
    assert figures["faces"] == 2 and figures["warm_start_included"]
    assert figures["today_mae"] < figures["neutral_mae"]
    for engine in ("mediapipe", "litert"):
        side = figures[f"lockstep_{engine}"]
        assert side["mae"] < figures["neutral_mae"]
        assert side["s_per_face"] == pytest.approx(side["fast_s_per_face"] + side["pixel_s_per_face"])
        assert side["speedup"] == pytest.approx(figures["today_s_per_face"] / side["s_per_face"])
        assert side["cpu_s_per_face"] > 0 and side["read_wall_s_per_face"] > 0


def test_every_face_has_each_paths_score(figures):
    for row in figures["per_face"]:
        assert {"today_mae", "lockstep_mediapipe_mae", "lockstep_litert_mae", "neutral_mae"} <= set(row)
