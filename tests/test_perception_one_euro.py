"""The One-Euro filter: steadier at rest, close behind a step, tunable."""

from __future__ import annotations

import numpy as np
import pytest

from facetwin.perception import OneEuroConfig, OneEuroFilter

RATE = 30.0


def noisy_step(seconds=3.0, step_at=1.5, noise=0.03, seed=0):
    t = np.arange(int(seconds * RATE)) / RATE
    clean = (t >= step_at).astype(np.float64)
    return t, clean, clean + np.random.default_rng(seed).normal(0, noise, t.shape)


def run(config, t, x):
    f = OneEuroFilter(config)
    return np.array([f(np.array([v]), ti)[0] for v, ti in zip(x, t)])


def test_it_removes_jitter_at_rest_and_follows_a_step():
    t, clean, noisy = noisy_step()
    out = run(OneEuroConfig(), t, noisy)
    rest = (t > 0.5) & (t < 1.5)
    settled = t > 2.0
    for seg in (rest, settled):
        raw_jitter = np.abs(np.diff(noisy[seg])).mean()
        assert np.abs(np.diff(out[seg])).mean() < 0.5 * raw_jitter
        assert np.abs(out[seg] - clean[seg]).max() < 0.05
    # Within 0.2 s of the step it has covered 90% of it.
    assert out[(t >= 1.7) & (t < 2.0)].min() > 0.9


def test_beta_trades_jitter_for_less_lag():
    t, _, noisy = noisy_step()
    slow = run(OneEuroConfig(min_cutoff=1.0, beta=0.0), t, noisy)
    fast = run(OneEuroConfig(min_cutoff=1.0, beta=5.0), t, noisy)
    after = (t >= 1.5) & (t < 1.75)
    assert fast[after].mean() > slow[after].mean() + 0.1


def test_lower_min_cutoff_is_steadier():
    t, _, noisy = noisy_step()
    rest = t < 1.4
    calm = run(OneEuroConfig(min_cutoff=0.3, beta=0.0), t, noisy)
    loose = run(OneEuroConfig(min_cutoff=5.0, beta=0.0), t, noisy)
    assert np.std(calm[rest][10:]) < 0.6 * np.std(loose[rest][10:])


def test_vectors_are_filtered_element_wise_and_reset_starts_over():
    f = OneEuroFilter()
    first = f(np.array([0.0, 1.0]), 0.0)
    np.testing.assert_array_equal(first, [0.0, 1.0])  # the first sample passes through
    second = f(np.array([1.0, 1.0]), 1 / RATE)
    assert 0.0 < second[0] < 1.0 and second[1] == 1.0
    f.reset()
    np.testing.assert_array_equal(f(np.array([5.0, -5.0]), 2.0), [5.0, -5.0])
    with pytest.raises(ValueError, match="shape"):
        f(np.zeros(3), 3.0)


def test_missing_or_repeated_timestamps_fall_back_to_the_default_rate():
    a, b = OneEuroFilter(), OneEuroFilter()
    xs = [0.0, 1.0, 1.0, 0.5]
    with_times = [a(np.array([x]), i / RATE)[0] for i, x in enumerate(xs)]
    without = [b(np.array([x]))[0] for x in xs]
    np.testing.assert_allclose(with_times, without)
    c = OneEuroFilter()
    c(np.array([0.0]), 1.0)
    assert np.isfinite(c(np.array([1.0]), 1.0)).all()


@pytest.mark.parametrize("kwargs", [{"min_cutoff": 0}, {"beta": -1}, {"d_cutoff": -2}, {"default_rate_hz": 0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        OneEuroConfig(**kwargs)
