"""Residual RL: the wrapper adds a correction to the base policy; training reports before/after scores."""

import json
import sys

import numpy as np
import pytest

from facetwin.agents.training import residual_rl as rl
from facetwin.app.cli import main
from facetwin.sim.envs import FaceMimicEnv


def constant_base(value: float):
    return lambda expressions: np.full((len(expressions), 25), value)


@pytest.fixture(scope="module")
def mimic():
    env = FaceMimicEnv(episode_steps=3)
    yield env
    env.close()


def test_a_zero_residual_is_the_base_policy(mimic):
    env = rl.ResidualAction(mimic, constant_base(0.2), scale=0.1)
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (185,)
    np.testing.assert_allclose(obs[135:160], 0.2)
    *_, info = env.step(np.zeros(25, np.float32))
    np.testing.assert_allclose(info["command"], mimic.command_from_action(np.full(25, 0.2)), atol=1e-6)


def test_integrating_residuals_accumulate_an_offset_that_resets(mimic):
    env = rl.ResidualAction(mimic, constant_base(0.0), scale=0.1, integrate=True)
    env.reset(seed=0)
    push = np.zeros(25, np.float32)
    push[6] = 1.0  # brow_inner_right: not coupled to anything
    env.step(push)
    obs, *_, info = env.step(push)
    assert info["command"][6] == pytest.approx(0.2) and obs[160 + 6] == pytest.approx(0.2)
    obs, _ = env.reset(seed=1)
    assert not obs[160:].any()


def test_without_integration_each_residual_stands_alone(mimic):
    env = rl.ResidualAction(mimic, constant_base(0.0), scale=0.1)
    env.reset(seed=0)
    push = np.zeros(25, np.float32)
    push[6] = 1.0
    env.step(push)
    *_, info = env.step(push)
    assert info["command"][6] == pytest.approx(0.1)


def test_the_cli_explains_a_missing_rl_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # makes `import stable_baselines3` fail
    assert main(["rl", "--out", str(tmp_path)]) == 2
    assert "pip install 'facetwin[rl]'" in capsys.readouterr().err


def test_a_short_run_scores_base_and_residual_on_the_same_targets(tmp_path):
    pytest.importorskip("stable_baselines3")
    config = rl.ResidualConfig(steps=64, n_steps=32, batch_size=32, n_epochs=1, episode_steps=2, eval_episodes=2)
    result = rl.train_residual(constant_base(0.0), config, tmp_path, "neutral")
    saved = json.loads((tmp_path / rl.RESULTS_FILE).read_text())
    assert (tmp_path / rl.MODEL_FILE).is_file()
    assert saved["base"]["final_blendshape_error"] == pytest.approx(result.base.final_blendshape_error)
    assert saved["base"]["episodes"] == saved["residual"]["episodes"] == 2
    assert saved["base"]["final_blendshape_error"] > 0 and saved["base"]["mean_return"] < 0
