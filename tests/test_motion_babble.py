"""Motor babbling: the uniform baseline, and how it differs from the expert."""

import numpy as np
import pytest

from facetwin.motion.babble import BabbleConfig, BabbleStrategy
from facetwin.motion.expert import ExpertStrategy
from facetwin.motion.strategy import make_strategy
from facetwin.spec import default_spec

SPEC = default_spec()
FPS = 30


def episodes(strategy, n=10, frames=300):
    return np.stack([strategy.episode(i, frames, FPS) for i in range(n)])


@pytest.fixture(scope="module")
def expert_frames():
    return episodes(ExpertStrategy(SPEC, 0))


@pytest.fixture(scope="module")
def babble_frames():
    return episodes(BabbleStrategy(SPEC, 0))


def test_babble_is_deterministic_in_range_and_coupling_safe(babble_frames):
    assert np.array_equal(BabbleStrategy(SPEC, 0).episode(2, 90, FPS), babble_frames[2, :90])
    assert not np.array_equal(babble_frames[0], babble_frames[1])
    assert np.abs(babble_frames).max() <= 1.0
    assert not any(SPEC.coupling_violations(f) for f in babble_frames.reshape(-1, SPEC.n))
    raw = episodes(BabbleStrategy(SPEC, 0, BabbleConfig(respect_coupling=False)), n=3)
    assert any(SPEC.coupling_violations(f) for f in raw.reshape(-1, SPEC.n))


def test_babble_covers_the_command_cube_more_widely_than_the_expert(expert_frames, babble_frames):
    e, b = expert_frames.reshape(-1, SPEC.n), babble_frames.reshape(-1, SPEC.n)
    assert np.all(b.std(0) > e.std(0))
    # keyframes are uniform: per-servo mean near 0 and std near that of U(-1, 1) softened by the moves
    assert np.all(np.abs(b.mean(0)) < 0.2) and np.all(b.std(0) > 0.35)
    assert np.mean(np.abs(b) > 0.5) > 2 * np.mean(np.abs(e) > 0.5)


def test_expert_is_smoother_than_babbling(expert_frames, babble_frames):
    jerk = lambda f: np.abs(np.diff(f, n=3, axis=1)).mean()  # noqa: E731
    assert jerk(expert_frames) < 0.5 * jerk(babble_frames)
    steps = episodes(BabbleStrategy(SPEC, 0, BabbleConfig(transition="step")), n=3)
    assert np.abs(np.diff(steps, axis=1)).max() > 3 * np.abs(np.diff(expert_frames, axis=1)).max()


def test_step_babble_holds_constant_between_jumps():
    f = BabbleStrategy(SPEC, 4, BabbleConfig(transition="step")).episode(0, 200, FPS)
    changed = np.any(np.diff(f, axis=0) != 0, axis=1)
    assert 0 < changed.sum() < 0.5 * len(changed)


def test_make_strategy_builds_each_by_name_and_names_mistakes():
    assert isinstance(make_strategy("expert", SPEC, 1), ExpertStrategy)
    b = make_strategy("babble", SPEC, 1, BabbleConfig(transition="step"))
    assert isinstance(b, BabbleStrategy) and b.config.transition == "step" and b.seed == 1
    made = make_strategy("expert", SPEC, 1).episode(0, 30, FPS)
    assert np.array_equal(made, ExpertStrategy(SPEC, 1).episode(0, 30, FPS))
    with pytest.raises(ValueError, match="expert, babble"):
        make_strategy("random", SPEC, 0)
    with pytest.raises(TypeError, match="ExpertConfig"):
        make_strategy("expert", SPEC, 0, BabbleConfig())
    with pytest.raises(ValueError, match="transition"):
        BabbleConfig(transition="linear")
