"""Both envs vectorise with gym.make_vec, in one process and across processes, reproducibly."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import facetwin.sim.envs  # noqa: F401  (registers the envs)
from facetwin.sim.envs.rewards import REWARD_KEYS

KWARGS = {"facetwin/FaceMimic-v0": {"episode_steps": 3}, "facetwin/FaceTrack-v0": {"episode_frames": 4}}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("env_id", list(KWARGS))
def test_two_env_vectors_step_and_reset_reproducibly(env_id, mode):
    envs = gym.make_vec(env_id, num_envs=2, vectorization_mode=mode, **KWARGS[env_id])
    try:
        obs, _ = envs.reset(seed=5)
        assert obs.shape == (2, 135) and obs.dtype == np.float32
        actions = np.random.default_rng(0).uniform(-1, 1, (3, 2, 25)).astype(np.float32)
        for a in actions:
            stepped, reward, terminated, truncated, info = envs.step(a)
            assert not terminated.any() and np.all(reward < 0)
            np.testing.assert_allclose(reward, sum(info[k] for k in REWARD_KEYS))
        assert truncated.all(), "the 3-step episodes end together"
        assert not np.array_equal(stepped[0, :55], stepped[1, :55]), "each sub-env draws its own target"
        again, _ = envs.reset(seed=5)
        np.testing.assert_array_equal(obs, again)
    finally:
        envs.close()


def test_the_env_benchmark_reports_positive_rates():
    from facetwin.app.bench import envs as bench

    result = bench.run(quick=True)
    for key in ("single_steps_per_s", "sync2_steps_per_s", "async2_steps_per_s", "track_single_steps_per_s"):
        assert result[key] > 0
    assert result["sync2_speedup_vs_single"] == pytest.approx(result["sync2_steps_per_s"] / result["single_steps_per_s"])


def test_the_envs_register_where_they_live():
    code = (
        "import sys, gymnasium as gym, facetwin;"
        "before = sorted(k for k in gym.registry if k.startswith('facetwin/'));"
        "import facetwin.sim.envs;"
        "print(before, sorted(k for k in gym.registry if k.startswith('facetwin/')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] ['facetwin/FaceMimic-v0', 'facetwin/FaceTrack-v0']"


def test_an_env_named_with_its_module_needs_no_import():
    code = (
        "import gymnasium as gym;"
        "env = gym.make('facetwin.sim.envs:facetwin/FaceMimic-v0');"
        "print(env.action_space.shape); env.close()"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "(25,)"
