"""FaceMimic-v0: the Gymnasium contract its docstring states, held by behaviour."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import facetwin.sim.envs  # noqa: F401  (registers the envs)
from facetwin.dataset import DatasetWriter
from facetwin.expression import Expression
from facetwin.sim.envs import FaceMimicEnv, RewardConfig
from facetwin.sim.envs.observation import HEAD_SCALE_DEG, scale_expression
from facetwin.sim.envs.rewards import REWARD_KEYS

SIZE = 48  # render panel side: small keeps the software renderer quick


@pytest.fixture(scope="module")
def env():
    e = gym.make("facetwin/FaceMimic-v0", render_mode="rgb_array", render_size=SIZE)
    yield e
    e.close()


def test_passes_gymnasiums_env_checker(env):
    check_env(env.unwrapped)


def test_registered_entry_point_is_the_documented_class(env):
    assert isinstance(env.unwrapped, FaceMimicEnv)
    assert env.observation_space.shape == (135,) and env.action_space.shape == (25,)
    assert len(env.unwrapped.observation_names) == 135


def test_reward_is_the_sum_of_its_terms_and_the_episode_truncates(env):
    env.action_space.seed(0)
    env.reset(seed=0)
    for step in range(1, 11):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward == pytest.approx(sum(info[k] for k in REWARD_KEYS), abs=1e-12)
        assert all(info[k] <= 0 for k in REWARD_KEYS)
        assert not terminated and truncated == (step == 10)


def test_seeded_resets_reproduce_the_episode(env):
    actions = np.random.default_rng(1).uniform(-1, 1, (3, 25)).astype(np.float32)

    def rollout(seed):
        obs = [env.reset(seed=seed)[0]]
        obs += [env.step(a)[0] for a in actions]
        return np.stack(obs)

    first, again, other = rollout(7), rollout(7), rollout(8)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first[0, :55], other[0, :55]), "different seeds should draw different targets"


def test_observation_blocks_hold_target_twin_and_servos(env):
    obs, info = env.reset(seed=3)
    u = env.unwrapped
    np.testing.assert_allclose(obs[u.layout.target], scale_expression(u.target.expression), rtol=1e-6)
    obs, *_, info = env.step(np.zeros(25, np.float32))
    np.testing.assert_allclose(obs[u.layout.current], scale_expression(info["expression"]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(obs[u.layout.servos], u.twin.servo_positions(), atol=1e-6)


def test_a_primitive_target_is_reachable_by_its_own_command(env):
    env.reset(seed=4)
    target = env.unwrapped.target
    for _ in range(10):
        *_, info = env.step(target.command.astype(np.float32))
    assert info["blendshape_error"] < 0.01 and info["head_error_deg"] < 1.0


def test_the_applied_command_respects_range_and_the_jaw_coupling(env):
    u = env.unwrapped
    spec = u.face_spec
    env.reset(seed=0)
    *_, info = env.step(np.ones(25, np.float32))
    command = info["command"]
    assert np.all(np.abs(command) <= 1.0)
    corner, jaw = spec.index("corner_raise_right"), spec.index("jaw_open")
    limit = spec.servos[corner].coupling.limit
    assert abs(command[corner]) + max(command[jaw], 0) <= limit + 1e-6


def test_render_shows_target_beside_twin_without_disturbing_the_episode(env):
    action = np.full(25, 0.3, np.float32)
    env.reset(seed=5)
    plain = env.step(action)[0]
    env.reset(seed=5)
    frame = env.render()
    rendered = env.step(action)[0]
    assert frame.shape == (SIZE, 2 * SIZE, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(plain, rendered)


def test_delta_mode_moves_the_command_by_delta_scale():
    with gym.make("facetwin/FaceMimic-v0", action_mode="delta", delta_scale=0.1) as env:
        env.reset(seed=0)
        up = np.zeros(25, np.float32)
        up[env.unwrapped.face_spec.index("brow_inner_right")] = 1.0
        env.step(up)
        *_, info = env.step(up)
        assert info["command"][env.unwrapped.face_spec.index("brow_inner_right")] == pytest.approx(0.2)
        assert np.count_nonzero(info["command"]) == 1


def test_a_given_target_and_reward_weights_are_used():
    weights = RewardConfig(blendshape_weight=2.0, head_weight=0.0, smoothness_weight=0.0, effort_weight=0.0)
    with gym.make("facetwin/FaceMimic-v0", reward_config=weights) as env:
        target = np.zeros(55, np.float32)
        target[52] = 20.0
        obs, _ = env.reset(seed=0, options={"target": target})
        assert obs[52] == pytest.approx(20.0 / HEAD_SCALE_DEG)
        _, reward, *_, info = env.step(np.zeros(25, np.float32))
        assert reward == pytest.approx(-2.0 * info["blendshape_error"]) and info["reward_head"] == 0.0


def test_human_faces_are_perceived_once_and_cached(tmp_path, faces_dir):
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("max_happy_baby.jpg", "skimage_astronaut.jpg"):
        (folder / name).symlink_to(faces_dir / "images" / name)
    cache = tmp_path / "cache"
    env = FaceMimicEnv(f"faces:{folder}", cache_dir=cache, render_mode="rgb_array", render_size=SIZE)
    cached = sorted((cache / "perceived").glob("*.npz"))
    assert [p.name.split("-")[0] for p in cached] == ["max_happy_baby", "skimage_astronaut"]
    smiles = env.targets.expressions[:, [44, 45]]  # mouthSmileLeft/Right: both faces smile
    assert len(env.targets) == 2 and smiles.min() > 0.2
    _, info = env.reset(seed=0)
    assert info["target_label"] in {"max_happy_baby.jpg", "skimage_astronaut.jpg"}
    frame = env.render()
    assert frame.shape == (SIZE, 2 * SIZE, 3)
    env.close()


def test_dataset_rows_are_targets(tmp_path):
    rows = np.linspace(0.0, 0.5, 6)
    with DatasetWriter(tmp_path / "ds", fps=10, landmarks=False) as w:
        for v in rows:
            w.add_frame(np.zeros(25), np.zeros(25), Expression(np.full(52, v, np.float32), np.array([v, 0, 0], np.float32)))
        w.end_episode()
    with gym.make("facetwin/FaceMimic-v0", target_source=f"dataset:{tmp_path / 'ds'}", render_mode="rgb_array",
                  render_size=SIZE) as env:
        seen = {round(float(env.reset(seed=s)[0][1]), 6) for s in range(12)}
        assert seen <= {round(float(v), 6) for v in rows} and len(seen) > 1
        assert env.render().shape == (SIZE, 2 * SIZE, 3)


def test_unknown_sources_and_modes_fail_with_the_choices():
    with pytest.raises(ValueError, match="primitives.*faces:DIR.*dataset:DIR"):
        FaceMimicEnv("videos")
    with pytest.raises(ValueError, match="absolute"):
        FaceMimicEnv(action_mode="relative")
