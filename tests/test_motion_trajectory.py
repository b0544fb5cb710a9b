"""Minimum-jerk keyframe interpolation, sampled at a frame rate."""

import numpy as np
import pytest

from facetwin.motion.trajectory import MIN_JERK_PEAK_SPEED, Segment, min_jerk, min_jerk_duration, sample


def test_min_jerk_profile_starts_and_ends_at_rest():
    t = np.linspace(0, 1, 10001)
    s = min_jerk(t)
    assert s[0] == 0.0 and s[-1] == 1.0 and min_jerk(0.5) == pytest.approx(0.5)
    assert np.all(np.diff(s) >= 0)
    v = np.gradient(s, t)
    a = np.gradient(v, t)
    assert abs(v[0]) < 1e-3 and abs(v[-1]) < 1e-3 and abs(a[1]) < 1e-2 and abs(a[-2]) < 1e-2
    assert v.max() == pytest.approx(MIN_JERK_PEAK_SPEED, rel=1e-4)
    assert min_jerk(-1.0) == 0.0 and min_jerk(2.0) == 1.0


def test_sample_moves_then_holds_then_keeps_the_last_target():
    start, a, b = np.zeros(2), np.array([1.0, -1.0]), np.array([0.5, 0.5])
    out = sample(start, [Segment(a, 1.0, 0.5), Segment(b, 0.5, 0.0)], fps=10, n_frames=30)
    assert out.shape == (30, 2)
    assert np.array_equal(out[0], start)
    assert np.allclose(out[5], 0.5 * a)  # midpoint of the first move
    assert np.allclose(out[10:16], a)  # arrived at t = 1.0 s, held until 1.5 s
    assert np.allclose(out[20:], b)  # second move ends at 2.0 s; then held
    assert np.all(np.abs(np.diff(out[:11, 0])) > -1e-12)  # monotone approach, no overshoot


def test_step_profile_jumps_at_segment_start():
    out = sample(np.zeros(1), [Segment(np.ones(1), 0.0, 0.5), Segment(-np.ones(1), 0.0, 0.5)], 10, 12, "step")
    assert out[0, 0] == 1.0 and out[4, 0] == 1.0 and out[5, 0] == -1.0 and out[-1, 0] == -1.0


def test_duration_rule_bounds_the_per_frame_step():
    fps, speed, dist = 30.0, 3.0, 2.0
    move = min_jerk_duration(dist, speed)
    out = sample(np.zeros(1), [Segment(np.full(1, dist), move, 0.0)], fps, 60)
    assert np.abs(np.diff(out[:, 0])).max() <= speed / fps + 1e-12
    assert np.abs(np.diff(out[:, 0])).max() > 0.9 * speed / fps  # the bound is tight, not slack


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="profile"):
        sample(np.zeros(1), [], 10, 5, "linear")
    with pytest.raises(ValueError, match="fps"):
        sample(np.zeros(1), [], 0, 5)
    with pytest.raises(ValueError, match="shape"):
        sample(np.zeros(2), [Segment(np.zeros(3), 1, 1)], 10, 5)
