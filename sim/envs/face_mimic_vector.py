"""`facetwin/FaceMimic-v0` as one Gymnasium VectorEnv over a BatchTwin: N episodes, one batch of physics.

``gymnasium.make_vec("facetwin/FaceMimic-v0", num_envs=N, vectorization_mode="vector_entry_point")``
gives this env. Sub-env i behaves as ``FaceMimicEnv`` seeded with ``seed + i`` (Gymnasium's
SyncVectorEnv convention) and stepped with ``actions[i]``: the same targets, commands, truncation,
info keys and NEXT_STEP autoreset (an env that ended is reset by the next ``step``, which ignores its
action and returns reward 0). Observations and rewards equal the single env's within the tolerance
tests/test_sim_vector_env.py states (the same float64 physics; on the CPU the same LiteRT network).

Extra arguments beside FaceMimicEnv's: ``device`` ("cpu" or "cuda[:k]"), ``backend`` ("rollout" or
"warp"; BatchTwin's default for the device), ``network`` (the blendshape network: "litert" world by
world, the default on the CPU, or "torch" batched, the default on CUDA), ``nthread`` and
``compile_network`` (see docs/batch.md).
Rendering is not offered here: make the sync vector env (``vectorization_mode="sync"``) to render.
"""

from __future__ import annotations

import os

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from facetwin.expression import EXPRESSION_DIM
from facetwin.motion import ExpertConfig
from facetwin.motion.constraints import limit_coupling
from facetwin.sim.batch import BatchState, BatchTwin
from facetwin.sim.envs.base import ACTION_MODES
from facetwin.sim.envs.observation import ObservationLayout
from facetwin.sim.envs.rewards import RewardConfig, reward_terms
from facetwin.sim.envs.targets import PrimitiveTargets, make_target_source
from facetwin.spec import FaceSpec


class FaceMimicVectorEnv(VectorEnv):
    """N FaceMimic episodes stepped together on one BatchTwin (see the module docstring)."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int,
        target_source: str = "primitives",
        episode_steps: int = 10,
        *,
        action_mode: str = "absolute",
        delta_scale: float = 0.25,
        control_dt: float = 0.1,
        settle: bool = False,
        reward_config: RewardConfig | dict | None = None,
        render_mode: str | None = None,
        video_stride: int = 10,
        cache_dir: str | os.PathLike | None = None,
        expert_config: ExpertConfig | None = None,
        face_spec: FaceSpec | None = None,
        bundle: str | os.PathLike | None = None,
        device: str = "cpu",
        backend: str | None = None,
        nthread: int | None = None,
        compile_network: bool = False,
        network: str | None = None,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if render_mode is not None:
            raise ValueError("the BatchTwin vector env does not render; make it with vectorization_mode='sync' to render")
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        if not delta_scale > 0:
            raise ValueError(f"delta_scale must be > 0, got {delta_scale}")
        if episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1, got {episode_steps}")
        if not control_dt > 0:
            raise ValueError(f"control_dt must be > 0 seconds, got {control_dt}")
        self.num_envs = int(num_envs)
        network = network or ("litert" if str(device) == "cpu" else "torch")
        self.twin = BatchTwin(self.num_envs, device, backend, spec=face_spec, bundle=bundle, nthread=nthread,
                              compile_network=compile_network, network=network)
        self.face_spec, self.render_mode = self.twin.spec, None
        self.action_mode, self.delta_scale, self.episode_steps = action_mode, float(delta_scale), int(episode_steps)
        self.reward_config = RewardConfig(**reward_config) if isinstance(reward_config, dict) else reward_config or RewardConfig()
        self.physics_steps = None if settle else max(1, int(round(control_dt / float(self.twin.model.opt.timestep))))
        self.targets = make_target_source(target_source, self.twin, bundle=bundle, cache_dir=cache_dir,
                                          video_stride=video_stride, expert_config=expert_config)
        self.layout = ObservationLayout(self.face_spec.n)
        self.single_observation_space = self.layout.space()
        self.single_action_space = spaces.Box(-1.0, 1.0, (self.face_spec.n,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / control_dt))}
        n = self.num_envs
        self._rngs: list[np.random.Generator | None] = [None] * n
        self.target = np.zeros((n, EXPRESSION_DIM), np.float32)
        self.target_label = [""] * n
        self.command = np.zeros((n, self.face_spec.n))
        self._current = np.zeros((n, EXPRESSION_DIM), np.float32)
        self._servos = np.zeros((n, self.face_spec.n))
        self._steps = np.zeros(n, np.int64)
        self._started = np.zeros(n, bool)
        self._autoreset = np.zeros(n, bool)

    # -- the Gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        worlds = np.arange(self.num_envs) if mask is None else self._reset_mask(mask)
        seeds = self._seeds(seed)
        if isinstance(seed, (int, np.integer)):
            super().reset(seed=int(seed))  # the vector env's own np_random, as VectorEnv.reset seeds it
        for i in worlds:
            if seeds[i] is not None or self._rngs[i] is None:
                self._rngs[i], _ = seeding.np_random(seeds[i])
        given = options.pop("target", None)
        self._begin(worlds, None if given is None else self._given_targets(given, len(worlds)))
        self._autoreset[worlds] = False
        infos: dict = {}
        for i in worlds:
            infos = self._add_info(infos, {**self._info(i, None), "target_label": self.target_label[i]}, int(i))
        return self._observation(), infos

    def step(self, actions):
        if not self._started.all():
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions must have shape {self.action_space.shape} (one row per env), got {actions.shape}")
        restarting = np.flatnonzero(self._autoreset)
        moving = np.flatnonzero(~self._autoreset)
        previous = self.command.copy()
        rewards = np.zeros(self.num_envs)
        truncated = np.zeros(self.num_envs, bool)
        terms = {}
        if len(restarting):
            self._begin(restarting, None)
        if len(moving):
            commands = np.stack([self.command_from_action(actions[i], previous[i]) for i in moving])
            self._read(self._drive(commands, moving), moving)
            self.command[moving] = commands
            self._steps[moving] += 1
            for i in moving:
                terms[i] = reward_terms(self.reward_config, self.target[i], self._current[i], self.command[i], previous[i])
                rewards[i] = terms[i].total
            truncated[moving] = self._steps[moving] >= self.episode_steps
        infos: dict = {}
        for i in range(self.num_envs):
            info = self._info(i, terms.get(i))
            if i not in terms:
                info["target_label"] = self.target_label[i]
            infos = self._add_info(infos, info, i)
        terminated = np.zeros(self.num_envs, bool)
        self._autoreset = terminated | truncated
        return self._observation(), rewards, terminated, truncated, infos

    def close_extras(self, **kwargs) -> None:
        self.twin.close()

    # -- the single env's rules, for many worlds ----------------------------------------------------
    def command_from_action(self, action, previous: np.ndarray) -> np.ndarray:
        """FaceEnv.command_from_action for one world."""
        a = np.clip(np.asarray(action, np.float64).reshape(self.face_spec.n), -1.0, 1.0)
        raw = a if self.action_mode == "absolute" else previous + self.delta_scale * a
        return np.clip(limit_coupling(np.clip(raw, -1.0, 1.0), self.face_spec), -1.0, 1.0)

    def _begin(self, worlds: np.ndarray, given: np.ndarray | None) -> None:
        """New episodes in `worlds`: a target each (drawn with the world's generator), then the neutral face."""
        if given is not None:
            self.target[worlds], labels = given, ["given"] * len(worlds)
        elif isinstance(self.targets, PrimitiveTargets):
            drawn = [self.targets.draw(self._rngs[i]) for i in worlds]
            self.twin.reset(worlds, readout=False)
            state = self.twin.apply(np.stack([c for c, _ in drawn]), worlds)
            self.target[worlds] = _expression(state)[worlds]
            labels = [label for _, label in drawn]
        else:
            picked = [self.targets.sample(self._rngs[i], None) for i in worlds]
            self.target[worlds] = np.stack([t.expression for t in picked])
            labels = [t.label for t in picked]
        for i, label in zip(worlds, labels):
            self.target_label[i] = label
        self._read(self.twin.reset(worlds), worlds)
        self.command[worlds] = 0.0
        self._steps[worlds] = 0
        self._started[worlds] = True

    def _drive(self, commands: np.ndarray, worlds: np.ndarray) -> BatchState:
        if self.physics_steps is None:
            return self.twin.apply(commands, worlds)
        return self.twin.step(commands, self.physics_steps, worlds)

    def _read(self, state: BatchState, worlds: np.ndarray) -> None:
        self._current[worlds] = _expression(state)[worlds]
        self._servos[worlds] = state.servo_positions.cpu().numpy()[worlds]

    def _observation(self) -> np.ndarray:
        return self.layout.build(self.target, self._current, self._servos)

    def _info(self, i: int, terms) -> dict:
        info = {"command": self.command[i].astype(np.float32), "expression": self._current[i].copy()}
        if terms is not None:
            info.update(terms.as_info())
        return info

    # -- argument checks ------------------------------------------------------------------------
    def _seeds(self, seed) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (int, np.integer)):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"a list of seeds must hold one per env ({self.num_envs}), got {len(seeds)}")
        return seeds

    def _reset_mask(self, mask) -> np.ndarray:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
            raise ValueError(f"options['reset_mask'] must be a bool numpy array of shape ({self.num_envs},)")
        if not mask.any():
            raise ValueError("options['reset_mask'] must select at least one env")
        return np.flatnonzero(mask)

    def _given_targets(self, given, count: int) -> np.ndarray:
        vector = np.asarray(given, np.float32)
        if vector.shape == (EXPRESSION_DIM,):
            vector = np.tile(vector, (count, 1))
        if vector.shape != (count, EXPRESSION_DIM) or not np.isfinite(vector).all():
            raise ValueError(f"options['target'] must be {EXPRESSION_DIM} finite numbers (52 blendshapes, head in "
                             f"degrees), or one such row per env reset ({count})")
        return vector


def _expression(state: BatchState) -> np.ndarray:
    """(N, 55) float32 as Expression.vector: 52 coefficients, then head yaw, pitch, roll (degrees)."""
    bs = state.blendshapes.cpu().numpy()
    head = state.head.cpu().numpy().astype(np.float32)
    return np.concatenate([bs, head], axis=1).astype(np.float32)
