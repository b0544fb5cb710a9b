"""FaceTrack-v0: following a moving target, frame by frame."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import facetwin.sim.envs  # noqa: F401  (registers the envs)
from facetwin.sim.envs import FaceTrackEnv
from facetwin.sim.envs.observation import scale_expression
from facetwin.sim.envs.rewards import REWARD_KEYS

SIZE = 48
FRAMES = 16  # short expert trajectories keep each reset cheap


@pytest.fixture(scope="module")
def env():
    e = gym.make("facetwin/FaceTrack-v0", episode_frames=FRAMES, render_mode="rgb_array", render_size=SIZE)
    yield e
    e.close()


def test_passes_gymnasiums_env_checker(env):
    check_env(env.unwrapped)


def test_replaying_the_expert_commands_tracks_with_zero_error(env):
    env.reset(seed=2)
    trajectory = env.unwrapped.trajectory
    errors = []
    for t, command in enumerate(trajectory.commands):
        _, reward, _, truncated, info = env.step(command)
        assert info["frame"] == t + 1
        assert reward == pytest.approx(sum(info[k] for k in REWARD_KEYS), abs=1e-12)
        errors.append(info["blendshape_error"] + info["head_error_deg"])
    assert truncated and len(errors) == FRAMES - 1
    assert max(errors) < 1e-5


def test_copying_the_seen_frame_lags_and_pays_for_it(env):
    # Feeding the command of the frame just seen (one frame late) must score worse than the oracle.
    env.reset(seed=2)
    commands = env.unwrapped.trajectory.commands
    late = [np.zeros(25)] + list(commands[:-1])
    errors = [env.step(c)[4]["blendshape_error"] for c in late]
    assert max(errors) > 1e-3


def test_each_step_shows_the_next_frame(env):
    obs, _ = env.reset(seed=6)
    traj = env.unwrapped.trajectory.expressions
    np.testing.assert_allclose(obs[:55], scale_expression(traj[0]), rtol=1e-6)
    obs, *_ = env.step(np.zeros(25, np.float32))
    np.testing.assert_allclose(obs[:55], scale_expression(traj[1]), rtol=1e-6)


def test_seeded_resets_reproduce_the_trajectory(env):
    a, _ = env.reset(seed=11)
    first = env.unwrapped.trajectory.expressions.copy()
    b, _ = env.reset(seed=11)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first, env.unwrapped.trajectory.expressions)
    env.reset(seed=12)
    assert not np.allclose(first, env.unwrapped.trajectory.expressions)


def test_render_is_target_frame_beside_twin(env):
    env.reset(seed=0)
    env.step(np.zeros(25, np.float32))
    frame = env.render()
    assert frame.shape == (SIZE, 2 * SIZE, 3) and frame.dtype == np.uint8


def test_a_video_is_tracked_on_its_own_clock(tmp_path, faces_dir):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "single_face.mp4").symlink_to(faces_dir / "videos" / "single_face.mp4")
    env = FaceTrackEnv(f"video:{folder}", max_frames=12, cache_dir=tmp_path / "cache", render_mode="rgb_array",
                       render_size=SIZE)
    _, info = env.reset(seed=0)
    assert info["target_label"] == "single_face.mp4" and len(env.trajectory) == 12
    steps = 0
    truncated = False
    while not truncated:
        *_, truncated, info = env.step(np.zeros(25, np.float32))
        steps += 1
    assert steps == 11 and info["frame"] == 11
    left, right = np.split(env.render(), 2, axis=1)
    assert not np.array_equal(left, right)  # the left panel is the person, not the twin
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(25, np.float32))
    env.close()
