"""FaceMimic-v0's vector entry point: N episodes on one BatchTwin behave as N single envs.

Sub-env i must match FaceMimicEnv seeded with seed + i and given actions[i], as Gymnasium's
SyncVectorEnv runs it, NEXT_STEP autoreset included. Physics is the same float64 MuJoCo, with the
same LiteRT network on the CPU by default, or the torch network (network="torch", the CUDA default;
coefficients within about 1e-5 of LiteRT's, docs/batch.md), hence OBS_TOL and REWARD_TOL.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

import facetwin.sim.envs  # noqa: F401  (registers the ids)
from facetwin.sim.envs.face_mimic_vector import FaceMimicVectorEnv

ENV_ID = "facetwin/FaceMimic-v0"
N = 3
EPISODE_STEPS = 3
OBS_TOL = 1e-4  # measured with network="torch": 1.8e-5 (coefficients; the physics agrees to ~1e-12)
REWARD_TOL = 1e-5  # measured with network="torch": 5e-7


def make(mode: str, **kwargs):
    return gym.make_vec(ENV_ID, num_envs=kwargs.pop("num_envs", N), vectorization_mode=mode,
                        episode_steps=kwargs.pop("episode_steps", EPISODE_STEPS), **kwargs)


@pytest.fixture(scope="module")
def pair():
    batched, single = make("vector_entry_point"), make("sync")
    yield batched, single
    batched.close()
    single.close()


def assert_infos_match(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        if key.startswith("_") or a[key].dtype == object:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            np.testing.assert_allclose(a[key], b[key], atol=OBS_TOL, rtol=0, err_msg=key)


def assert_steps_match(batched, single, seed: int, steps: int) -> None:
    obs_a, info_a = batched.reset(seed=seed)
    obs_b, info_b = single.reset(seed=seed)
    np.testing.assert_allclose(obs_a, obs_b, atol=OBS_TOL, rtol=0)
    assert_infos_match(info_a, info_b)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        actions = rng.uniform(-1, 1, batched.action_space.shape).astype(np.float32)
        a, b = batched.step(actions), single.step(actions)
        np.testing.assert_allclose(a[0], b[0], atol=OBS_TOL, rtol=0)
        np.testing.assert_allclose(a[1], b[1], atol=REWARD_TOL, rtol=0)
        np.testing.assert_array_equal(a[2], b[2])
        np.testing.assert_array_equal(a[3], b[3])
        assert_infos_match(a[4], b[4])


def test_make_vec_builds_the_batch_env_with_batched_spaces(pair):
    batched, single = pair
    assert isinstance(batched, FaceMimicVectorEnv) and isinstance(batched, VectorEnv)
    assert batched.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert batched.single_observation_space == single.single_observation_space
    assert batched.single_action_space == single.single_action_space
    assert batched.observation_space == batch_space(batched.single_observation_space, N)
    assert batched.action_space == batch_space(batched.single_action_space, N)
    obs, _ = batched.reset(seed=0)
    assert obs.shape == (N, 135) and obs.dtype == np.float32 and batched.observation_space.contains(obs)
    out = batched.step(batched.action_space.sample())
    assert out[0].shape == (N, 135) and batched.observation_space.contains(out[0])
    assert out[1].shape == (N,) and out[1].dtype == np.float64
    assert out[2].dtype == out[3].dtype == np.bool_ and out[2].shape == out[3].shape == (N,)


def test_equals_n_single_envs_through_truncation_and_autoreset(pair):
    """Seven steps of three-step episodes: two truncations, each followed by a NEXT_STEP reset."""
    assert_steps_match(*pair, seed=11, steps=2 * EPISODE_STEPS + 1)


def test_delta_actions_settling_and_the_torch_network_match_the_single_env_too():
    batched = make("vector_entry_point", num_envs=2, action_mode="delta", settle=True, network="torch")
    single = make("sync", num_envs=2, action_mode="delta", settle=True)
    try:
        assert_steps_match(batched, single, seed=5, steps=EPISODE_STEPS + 1)
    finally:
        batched.close()
        single.close()


def test_the_autoreset_step_ignores_the_action_and_returns_the_reset(pair):
    batched, _ = pair
    batched.reset(seed=2)
    for _ in range(EPISODE_STEPS):
        *_, truncated, _ = batched.step(np.zeros(batched.action_space.shape, np.float32))
    assert truncated.all()
    obs, reward, terminated, truncated, info = batched.step(np.ones(batched.action_space.shape, np.float32))
    assert (reward == 0).all() and not terminated.any() and not truncated.any()
    assert info["_target_label"].all() and (info["command"] == 0).all()
    np.testing.assert_array_equal(obs[:, batched.layout.servos], 0.0)  # the neutral face, not the ones action


def test_seeding_reproduces_targets_and_steps(pair):
    batched, _ = pair
    runs = []
    for _ in range(2):
        obs, info = batched.reset(seed=[4, 9, 4])
        step = batched.step(np.full(batched.action_space.shape, 0.3, np.float32))
        runs.append((obs, info["target_label"], step[0], step[1]))
    for x, y in zip(*runs):
        np.testing.assert_array_equal(x, y)
    obs, labels = runs[0][0], runs[0][1]
    assert labels[0] == labels[2] and labels[0] != labels[1]  # the seed, not the slot, decides the episode
    np.testing.assert_array_equal(obs[0], obs[2])


def test_a_reset_mask_restarts_only_the_chosen_envs(pair):
    batched, single = pair
    for env in pair:
        env.reset(seed=1)
        env.step(np.full(env.action_space.shape, 0.2, np.float32))
    mask = np.array([False, True, False])
    obs_a, info_a = batched.reset(seed=30, options={"reset_mask": mask})
    obs_b, info_b = single.reset(seed=30, options={"reset_mask": mask.copy()})
    np.testing.assert_allclose(obs_a, obs_b, atol=OBS_TOL, rtol=0)
    assert_infos_match(info_a, info_b)
    np.testing.assert_array_equal(info_a["_command"], mask)
    assert (obs_a[1, batched.layout.servos] == 0).all() and (obs_a[0, batched.layout.servos] != 0).any()


def test_given_targets_are_shown_as_the_target(pair):
    batched, _ = pair
    target = np.zeros((N, 55), np.float32)
    target[:, 10] = [0.1, 0.5, 0.9]
    obs, info = batched.reset(seed=0, options={"target": target})
    np.testing.assert_allclose(obs[:, 10], [0.1, 0.5, 0.9])
    assert list(info["target_label"]) == ["given"] * N
    with pytest.raises(ValueError, match="55 finite numbers"):
        batched.reset(options={"target": np.zeros((2, 55))})


@pytest.mark.parametrize("n", [0, -1, 2.5])
def test_num_envs_must_be_a_positive_integer(n):
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        FaceMimicVectorEnv(n)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="vectorization_mode='sync'"):
        FaceMimicVectorEnv(2, render_mode="rgb_array")
    with pytest.raises(ValueError, match="action_mode"):
        FaceMimicVectorEnv(2, action_mode="relative")
