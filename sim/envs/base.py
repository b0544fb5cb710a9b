"""What FaceMimic and FaceTrack share: the twin, the action -> command rule, observation, reward, render."""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from facetwin.motion.constraints import limit_coupling
from facetwin.sim.envs.observation import ObservationLayout
from facetwin.sim.envs.panels import side_by_side
from facetwin.sim.envs.rewards import RewardConfig, RewardTerms, reward_terms
from facetwin.sim.twin import FaceTwin
from facetwin.spec import FaceSpec

ACTION_MODES = ("absolute", "delta")


class FaceEnv(gym.Env):
    """Base class; subclasses define the target (`_target_now`, `_target_panel`) and the episode."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        *,
        action_mode: str = "absolute",
        delta_scale: float = 0.25,
        reward_config: RewardConfig | dict | None = None,
        render_mode: str | None = None,
        render_size: int = 256,
        face_spec: FaceSpec | None = None,
        bundle: str | os.PathLike | None = None,
    ):
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        if not delta_scale > 0:
            raise ValueError(f"delta_scale must be > 0, got {delta_scale}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.action_mode, self.delta_scale = action_mode, float(delta_scale)
        self.reward_config = RewardConfig(**reward_config) if isinstance(reward_config, dict) else reward_config or RewardConfig()
        self.render_mode, self.render_size = render_mode, int(render_size)
        self.twin = FaceTwin(face_spec, bundle)
        self.face_spec = self.twin.spec
        self.layout = ObservationLayout(self.face_spec.n)
        self.observation_space = self.layout.space()
        self.action_space = spaces.Box(-1.0, 1.0, (self.face_spec.n,), np.float32)
        self.command = np.zeros(self.face_spec.n)
        self._current = np.zeros(55, np.float32)

    # -- what subclasses provide --------------------------------------------------------------
    def _target_now(self) -> np.ndarray:
        """The (55,) target the observation shows now (head in degrees)."""
        raise NotImplementedError

    def _target_panel(self, size: int) -> np.ndarray:
        raise NotImplementedError

    # -- shared mechanics ---------------------------------------------------------------------
    @property
    def observation_names(self) -> tuple[str, ...]:
        return self.layout.names(self.face_spec.names)

    def command_from_action(self, action) -> np.ndarray:
        """The command the servos get: absolute = the action; delta = last command + delta_scale * action;
        then clipped to [-1, 1] and passed through the spec's mouth-corner/jaw coupling limit."""
        a = np.clip(np.asarray(action, np.float64).reshape(self.face_spec.n), -1.0, 1.0)
        raw = a if self.action_mode == "absolute" else self.command + self.delta_scale * a
        return np.clip(limit_coupling(np.clip(raw, -1.0, 1.0), self.face_spec), -1.0, 1.0)

    def _reset_twin(self) -> None:
        self.twin.reset()
        self.command = np.zeros(self.face_spec.n)
        self._current = self.twin.expression().vector

    def _drive(self, command: np.ndarray, physics_steps: int | None) -> None:
        """Hold `command` for `physics_steps` (None: until the face settles) and read the face."""
        self.twin.set_command(command)
        if physics_steps is None:
            self.twin.settle()
        else:
            self.twin.step(physics_steps)
        self.command = command
        self._current = self.twin.expression().vector

    def _reward(self, target: np.ndarray, previous_command: np.ndarray) -> RewardTerms:
        return reward_terms(self.reward_config, target, self._current, self.command, previous_command)

    def _observation(self) -> np.ndarray:
        return self.layout.build(self._target_now(), self._current, self.twin.servo_positions())

    def _info(self, terms: RewardTerms | None) -> dict:
        info = {"command": self.command.astype(np.float32), "expression": self._current.copy()}
        if terms is not None:
            info.update(terms.as_info())
        return info

    def render(self) -> np.ndarray | None:
        """rgb_array: (render_size, 2 * render_size, 3) uint8, the target left and the twin right."""
        if self.render_mode is None:
            gym.logger.warn("render() was called without a render_mode; make the env with render_mode='rgb_array'")
            return None
        return side_by_side(self._target_panel(self.render_size), self.twin.render(self.render_size))

    def close(self) -> None:
        self.twin.close()
