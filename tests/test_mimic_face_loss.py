"""When the face is lost the robot holds its last command, then eases smoothly back to neutral."""

from __future__ import annotations

import numpy as np
import pytest

from facetwin.app.live import FaceLossConfig, FaceLossHold

SMILE = np.linspace(-0.5, 0.8, 25)


def lost_at(t_seen: float = 1.0, hold_s: float = 0.5, ease_s: float = 1.0) -> FaceLossHold:
    hold = FaceLossHold(25, FaceLossConfig(hold_s=hold_s, ease_s=ease_s))
    hold.saw_face(SMILE, t_seen)
    return hold


def test_before_any_face_the_robot_stays_neutral():
    assert np.array_equal(FaceLossHold(25).without_face(3.0), np.zeros(25))


def test_the_last_command_is_held_for_hold_s():
    hold = lost_at()
    for t in (1.0, 1.2, 1.5):
        assert np.allclose(hold.without_face(t), SMILE)


def test_then_it_eases_monotonically_to_neutral_over_ease_s():
    hold = lost_at()
    ts = np.linspace(1.5, 2.5, 41)
    scale = [np.abs(hold.without_face(t)).max() / np.abs(SMILE).max() for t in ts]
    assert np.all(np.diff(scale) <= 1e-12) and scale[0] == pytest.approx(1.0)
    assert 0.4 < hold.weight(2.0) < 0.6  # halfway through the ease, about half the command
    assert np.array_equal(hold.without_face(2.5), np.zeros(25))
    assert np.array_equal(hold.without_face(9.0), np.zeros(25))


def test_the_ease_starts_and_ends_without_a_jump_in_speed():
    hold = lost_at(hold_s=0.0, ease_s=1.0)
    eps = 1e-3
    assert 1.0 - hold.weight(1.0 + eps) < 1e-5  # smoothstep: zero slope at both ends
    assert hold.weight(2.0 - eps) < 1e-5


def test_a_face_seen_again_restarts_the_hold():
    hold = lost_at()
    assert hold.weight(2.2) < 0.5
    hold.saw_face(SMILE * 0.5, 2.3)
    assert np.allclose(hold.without_face(2.7), SMILE * 0.5)


def test_negative_durations_are_refused():
    with pytest.raises(ValueError, match="hold_s and ease_s"):
        FaceLossConfig(hold_s=-1.0)
