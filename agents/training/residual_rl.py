"""Residual RL: PPO learns a small, closed-loop correction on top of a pretrained policy in FaceMimic.

The pretrained policy maps a target expression to servo commands in one shot (open loop). The residual
policy also sees the twin's current face and servos, and corrects the base command (the default):

    command_t = clip(base(target_t) + scale * residual_t, -1, 1),   residual in [-1, 1]^25

or, integrating, each step's residual moves a correction that persists (feedback that can home in, but
less stable than the direct correction in the runs tried: docs/experiments.md#residual-rl):

    offset_t = clip(offset_{t-1} + scale * residual_t, -1, 1),   offset_0 = 0
    command_t = clip(base(target_t) + offset_t, -1, 1)

A zero residual is the base policy exactly; SB3's action head starts near zero, so training begins from
the base policy's own behaviour, and both are scored on the same seeded targets.
stable-baselines3 is an optional extra: ``pip install 'facetwin[rl]'``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from facetwin.motion import ExpertStrategy
from facetwin.spec import FaceSpec
from facetwin.sim.envs import FaceMimicEnv
from facetwin.sim.envs.observation import unscale_expression
from facetwin.agents.policies.closed_form import Ridge
from facetwin.agents.policies.features import as_expression_batch
from facetwin.agents.policies.kinds import DEFAULT_HPARAMS

BasePolicy = Callable[[np.ndarray], np.ndarray]  # (N, 55) expressions, head in degrees -> (N, servos) commands
RESULTS_FILE = "results.json"
MODEL_FILE = "residual_policy.zip"
NORMALIZER_FILE = "vecnormalize.pkl"
ALGOS = ("ppo", "sac")


class RLUnavailableError(RuntimeError):
    """stable-baselines3 (the `rl` extra) is not installed."""


@dataclass(frozen=True)
class ResidualConfig:
    steps: int = 20_000  # env steps of training
    scale: float = 0.2  # command units per unit residual (per step when integrating)
    integrate: bool = False
    episode_steps: int = 10
    target_source: str = "primitives"
    eval_episodes: int = 32
    eval_seed: int = 100_000  # evaluation targets are reset(seed=eval_seed + i): disjoint from training's
    seed: int = 0
    algo: str = "ppo"  # "ppo" or "sac"
    n_steps: int = 500  # PPO rollout length (50 episodes)
    batch_size: int = 100
    n_epochs: int = 10
    learning_starts: int = 500  # SAC: warm-up transitions with uniform random residuals (base +- scale)
    learning_rate: float = 3e-4
    gamma: float = 0.5  # each step's reward depends mostly on that step's command (the face settles fast)
    normalize: bool = False  # VecNormalize obs/rewards; off: no gain found (docs/experiments.md#residual-rl)
    log_std_init: float = -1.5  # initial exploration: std 0.22 residual units = 0.045 command units at scale 0.2

    def __post_init__(self):
        if self.steps < 1 or self.eval_episodes < 1 or not 0 < self.scale <= 2:
            raise ValueError("ResidualConfig: need steps >= 1, eval_episodes >= 1 and 0 < scale <= 2")
        if self.algo not in ALGOS:
            raise ValueError(f"ResidualConfig: algo must be one of {ALGOS}, got {self.algo!r}")


@dataclass
class ClosedLoopScore:
    """Errors of a controller on a fixed set of FaceMimic targets (lower is better)."""

    final_blendshape_error: float  # mean over episodes of the last step's mean |error| (51 coefficients)
    mean_blendshape_error: float  # mean over all steps of all episodes
    final_head_error_deg: float
    mean_head_error_deg: float
    mean_return: float  # the reward summed over an episode, averaged over episodes (what RL maximises)
    episodes: int


@dataclass
class ResidualResult:
    base: ClosedLoopScore
    residual: ClosedLoopScore
    config: ResidualConfig
    train_seconds: float
    base_description: str
    model_path: str | None = None
    face: str = ""  # the face it ran on (`--face`)

    @property
    def improvement(self) -> float:
        """Relative drop of the final blendshape error (0.2 = 20 % lower with the residual)."""
        return 1.0 - self.residual.final_blendshape_error / self.base.final_blendshape_error

    def to_json(self) -> dict:
        return {
            "base": asdict(self.base), "residual": asdict(self.residual), "improvement": self.improvement,
            "config": asdict(self.config), "train_seconds": self.train_seconds,
            "base_policy": self.base_description, "model_path": self.model_path, "face": self.face,
        }


class ResidualAction(gym.Wrapper):
    """Actions are residuals on top of `base(target)`; observations gain the base command and the
    integrated offset (135 + 25 + 25)."""

    def __init__(self, env: gym.Env, base: BasePolicy, scale: float, integrate: bool = False):
        super().__init__(env)
        self.base, self.scale, self.integrate = base, float(scale), bool(integrate)
        self.layout = env.unwrapped.layout
        n = self.layout.n_servos
        inner = env.observation_space
        self.observation_space = spaces.Box(
            np.r_[inner.low, -np.ones(2 * n)].astype(np.float32), np.r_[inner.high, np.ones(2 * n)].astype(np.float32),
            dtype=np.float32,
        )
        self.action_space = spaces.Box(-1.0, 1.0, (n,), np.float32)
        self._key, self._base, self.offset = None, np.zeros(n), np.zeros(n)

    def _base_for(self, obs: np.ndarray) -> np.ndarray:
        target = obs[self.layout.target]
        key = target.tobytes()
        if key != self._key:  # FaceMimic's target holds for the episode: one policy call per episode
            self._key = key
            self._base = np.clip(np.asarray(self.base(unscale_expression(target)[None]), np.float64)[0], -1.0, 1.0)
        return self._base

    def _augment(self, obs: np.ndarray) -> np.ndarray:
        return np.concatenate([obs, self._base_for(obs), self.offset]).astype(np.float32)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.offset = np.zeros_like(self.offset)
        return self._augment(obs), info

    def step(self, residual):
        r = self.scale * np.clip(np.asarray(residual, np.float64), -1.0, 1.0)
        self.offset = np.clip(self.offset + r, -1.0, 1.0) if self.integrate else r
        command = np.clip(self._base + self.offset, -1.0, 1.0)
        obs, reward, terminated, truncated, info = self.env.step(command.astype(np.float32))
        return self._augment(obs), reward, terminated, truncated, info


def make_env(base: BasePolicy, config: ResidualConfig, spec: FaceSpec | None = None) -> ResidualAction:
    """FaceMimic on `spec`'s twin (the default face's by default), its actions residuals on `base`."""
    env = FaceMimicEnv(config.target_source, config.episode_steps, face_spec=spec)
    return ResidualAction(env, base, config.scale, config.integrate)


def closed_loop_score(env: ResidualAction, act: Callable[[np.ndarray], np.ndarray], episodes: int, seed: int) -> ClosedLoopScore:
    """Run `act(obs) -> residual` on targets reset(seed=seed + i), i < episodes."""
    errors, heads, returns = [], [], []  # per episode: per-step lists
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        bs, head, ret, done = [], [], 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(act(obs))
            bs.append(info["blendshape_error"])
            head.append(info["head_error_deg"])
            ret += float(reward)
            done = terminated or truncated
        errors.append(bs)
        heads.append(head)
        returns.append(ret)
    return ClosedLoopScore(
        final_blendshape_error=float(np.mean([e[-1] for e in errors])),
        mean_blendshape_error=float(np.mean([np.mean(e) for e in errors])),
        final_head_error_deg=float(np.mean([h[-1] for h in heads])),
        mean_head_error_deg=float(np.mean([np.mean(h) for h in heads])),
        mean_return=float(np.mean(returns)),
        episodes=episodes,
    )


def twin_pairs(n: int, seed: int = 0, spec: FaceSpec | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(expressions (n, 55), commands (n, servos)): expert keyframes applied to `spec`'s twin (the default
    face's by default) and read back."""
    from facetwin.sim.twin import FaceTwin

    twin = FaceTwin(spec)
    expert = ExpertStrategy(twin.spec, seed)
    rng = np.random.default_rng(seed)
    commands = np.stack([expert.shape(expert.draw_activations(rng), rng) for _ in range(n)])
    # Settled faces do not depend on the path to them, so pairs need no reset in between.
    expressions = np.stack([twin.apply(c).expression.vector for c in commands])
    twin.close()
    return expressions, commands


def ridge_base(expressions: np.ndarray, commands: np.ndarray) -> BasePolicy:
    """The `linear` kind's ridge map fitted in closed form: the stand-in when no trained run is given."""
    ridge = Ridge(DEFAULT_HPARAMS["linear"]["alpha"])
    ridge.fit(as_expression_batch(expressions), np.asarray(commands, np.float32))
    return lambda e: ridge.predict(as_expression_batch(e))


def require_sb3():
    try:
        import stable_baselines3
    except ImportError as exc:
        raise RLUnavailableError(
            "residual RL needs stable-baselines3, the optional `rl` extra: pip install 'facetwin[rl]' "
            "(or pip install 'stable-baselines3>=2.3')"
        ) from exc
    return stable_baselines3


def _make_model(sb3, env, config: ResidualConfig):
    common = {"learning_rate": config.learning_rate, "gamma": config.gamma, "seed": config.seed, "device": "cpu",
              "verbose": 0, "policy_kwargs": {"net_arch": [64, 64], "log_std_init": config.log_std_init}}
    if config.algo == "sac":
        return sb3.SAC("MlpPolicy", env, batch_size=256, learning_starts=config.learning_starts, **common)
    return sb3.PPO("MlpPolicy", env, n_steps=config.n_steps, batch_size=config.batch_size, n_epochs=config.n_epochs,
                   **common)


def train_residual(base: BasePolicy, config: ResidualConfig | None = None, out_dir: str | Path | None = None,
                   base_description: str = "base policy", progress: Callable[[str], None] | None = None,
                   spec: FaceSpec | None = None) -> ResidualResult:
    """Score the base alone, train the residual (PPO or SAC), score base + residual on the same targets, on
    `spec`'s twin (the default face's by default; `base` must give that face's commands).

    With `out_dir`: results.json, the SB3 model and (when normalising) the VecNormalize statistics.
    """
    sb3 = require_sb3()
    import torch

    config = config or ResidualConfig()
    say = progress or (lambda _msg: None)
    env = make_env(base, config, spec)
    zero = np.zeros(env.action_space.shape, np.float32)
    before = closed_loop_score(env, lambda _obs: zero, config.eval_episodes, config.eval_seed)
    say(f"base alone: final blendshape error {before.final_blendshape_error:.4f}")
    torch.manual_seed(config.seed)
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    venv = DummyVecEnv([lambda: env])
    if config.normalize:
        # The errors the residual reacts to are small in coefficient units; normalising rescales them.
        venv = VecNormalize(venv, gamma=config.gamma, clip_obs=10.0)
    model = _make_model(sb3, venv, config)
    start = time.perf_counter()
    model.learn(total_timesteps=config.steps)
    seconds = time.perf_counter() - start
    if config.normalize:
        venv.training = False  # evaluation reads the statistics, never updates them
    normalize = venv.normalize_obs if config.normalize else (lambda obs: obs)
    after = closed_loop_score(env, lambda obs: model.predict(normalize(obs), deterministic=True)[0],
                              config.eval_episodes, config.eval_seed)
    say(f"base + residual: final blendshape error {after.final_blendshape_error:.4f} ({seconds:.0f} s of training)")
    env.close()
    result = ResidualResult(before, after, config, seconds, base_description, face=env.unwrapped.face_spec.face)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        model.save(out / MODEL_FILE)
        if config.normalize:
            venv.save(str(out / NORMALIZER_FILE))
        result.model_path = str(out / MODEL_FILE)
        (out / RESULTS_FILE).write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return result
