"""`facetwin/FaceTrack-v0`: make the twin's face follow an expression that moves, frame by frame."""

from __future__ import annotations

import os

import numpy as np

from facetwin.motion import ExpertConfig
from facetwin.sim.envs.base import FaceEnv
from facetwin.sim.envs.panels import fit
from facetwin.sim.envs.rewards import RewardConfig
from facetwin.sim.envs.snapshot import render_state
from facetwin.sim.envs.trajectories import Trajectory, frame_skip, make_trajectory_source
from facetwin.spec import FaceSpec


class FaceTrackEnv(FaceEnv):
    """
    ## Description
    The target expression moves along a trajectory, one frame per step, and the agent drives the
    25 servos of the face twin to follow it with as little lag as it can. Trajectories come from
    `trajectory_source`:

    - ``"expert"`` (default): an expert episode (`facetwin.motion.ExpertStrategy`: keyframes of motion
      primitives joined by minimum-jerk moves) played on the twin at `fps` from the neutral face and
      read back per frame, so the trajectory is reachable: replaying its commands
      (``env.unwrapped.trajectory.commands[t]`` at step t) tracks it with zero error;
    - ``"video:PATH"``: a video file or every video in a folder, perceived per frame with MediaPipe
      (tracked, One-Euro smoothed) once and cached on disk; each episode plays one video from its first
      frame, on the video's own clock. Frames without a face take the nearest found frame's expression.

    ## Action Space
    As FaceMimic-v0: ``Box(-1, 1, (25,), float32)``, one command per servo in the face spec's order,
    absolute (default) or delta (previous command + ``delta_scale * action``), clipped to [-1, 1] and
    coupling-limited; ``info["command"]`` holds what was applied.

    ## Observation Space
    As FaceMimic-v0, ``Box(135,) float32``; the target block is the trajectory's current frame:

    | Num     | Observation                                         | Min | Max | Unit                   |
    |---------|-----------------------------------------------------|-----|-----|------------------------|
    | 0-51    | target blendshapes at the current frame             | 0   | 1   | coefficient            |
    | 52-54   | target head yaw, pitch, roll at the current frame   | -6  | 6   | degrees / 30           |
    | 55-106  | twin's current blendshape coefficients              | 0   | 1   | coefficient            |
    | 107-109 | twin's current head yaw, pitch, roll                | -6  | 6   | degrees / 30           |
    | 110-134 | measured servo positions (spec order)               | -2  | 2   | normalised shaft angle |

    ## Rewards
    The terms of FaceMimic-v0 (``reward_blendshape``, ``reward_head``, ``reward_smoothness``,
    ``reward_effort``, each in ``info``; the reward is their sum), with the error measured against the
    frame that is current when the step ends: the agent sees frame t, its command acts for one frame
    period, and the twin is scored against frame t + 1. A twin that merely copies what it saw trails
    by a frame and pays for it; following with little lag means anticipating the motion.
    ``info["frame"]`` is the index of the scored frame.

    ## Starting State
    The twin at its neutral face; the trajectory drawn with the env's seeded generator
    (``reset(seed=s)`` reproduces it); the observation shows frame 0.

    ## Episode End
    - Termination: never.
    - Truncation: at the trajectory's last frame, after ``len(trajectory) - 1`` steps (`episode_frames`
      frames for expert trajectories; the video's length, at most `max_frames`, for videos). Each
      step holds the command for one frame period (the nearest whole number of 2 ms physics steps).

    ## Arguments
    ``gymnasium.make("facetwin/FaceTrack-v0", **kwargs)``:

    | Parameter           | Type                 | Default        | Description                                   |
    |---------------------|----------------------|----------------|-----------------------------------------------|
    | `trajectory_source` | str                  | "expert"       | "expert" or "video:PATH" (file or folder)     |
    | `episode_frames`    | int                  | 61             | "expert": frames per trajectory (60 steps)    |
    | `fps`               | float                | 30.0           | "expert": frame rate (videos use their own)   |
    | `max_frames`        | int or None          | None           | "video": cut longer videos                    |
    | `action_mode`       | str                  | "absolute"     | "absolute" or "delta"                         |
    | `delta_scale`       | float                | 0.25           | command change per unit action in delta mode  |
    | `reward_config`     | RewardConfig or dict | RewardConfig() | term weights                                  |
    | `render_mode`       | str or None          | None           | "rgb_array": target frame beside twin         |
    | `render_size`       | int                  | 256            | pixels per panel side                         |
    | `cache_dir`         | path or None         | None           | perceived-video cache                         |
    | `expert_config`     | ExpertConfig or None | None           | "expert": the motion distribution             |
    | `face_spec`, `bundle` | FaceSpec, path     | None           | face spec; face_landmarker.task               |

    ``render()`` returns ``(render_size, 2 * render_size, 3)`` uint8: the current target frame on the
    left (the video's face crop, or the twin posed as the expert frame), the twin on the right.

    ## Version History
    - v0: initial version.
    """

    def __init__(
        self,
        trajectory_source: str = "expert",
        episode_frames: int = 61,
        fps: float = 30.0,
        *,
        max_frames: int | None = None,
        action_mode: str = "absolute",
        delta_scale: float = 0.25,
        reward_config: RewardConfig | dict | None = None,
        render_mode: str | None = None,
        render_size: int = 256,
        cache_dir: str | os.PathLike | None = None,
        expert_config: ExpertConfig | None = None,
        face_spec: FaceSpec | None = None,
        bundle: str | os.PathLike | None = None,
    ):
        if max_frames is not None and max_frames < 2:
            raise ValueError(f"max_frames must be >= 2 (one step needs two frames), got {max_frames}")
        super().__init__(action_mode=action_mode, delta_scale=delta_scale, reward_config=reward_config,
                         render_mode=render_mode, render_size=render_size, face_spec=face_spec, bundle=bundle)
        self.trajectories = make_trajectory_source(trajectory_source, self.twin, n_frames=episode_frames, fps=fps,
                                                   bundle=bundle, cache_dir=cache_dir, max_frames=max_frames,
                                                   expert_config=expert_config)
        self.metadata = {**self.metadata, "render_fps": int(round(fps))}
        self.trajectory: Trajectory | None = None
        self.frame = 0
        self._physics_steps = frame_skip(fps, self.twin.timestep)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.trajectory = self.trajectories.sample(self.np_random, self.twin, keep_states=self.render_mode is not None)
        self._physics_steps = frame_skip(self.trajectory.fps, self.twin.timestep)
        self._reset_twin()
        self.frame = 0
        return self._observation(), {**self._info(None), "frame": 0, "target_label": self.trajectory.label}

    def step(self, action):
        if self.trajectory is None:
            raise RuntimeError("call reset() before step()")
        if self.frame >= len(self.trajectory) - 1:
            raise RuntimeError("the trajectory has ended (truncated); call reset() to start another")
        previous = self.command
        self._drive(self.command_from_action(action), self._physics_steps)
        self.frame += 1
        terms = self._reward(self._target_now(), previous)
        truncated = self.frame >= len(self.trajectory) - 1
        return self._observation(), terms.total, False, truncated, {**self._info(terms), "frame": self.frame}

    def _target_now(self) -> np.ndarray:
        return self.trajectory.expressions[self.frame]

    def _target_panel(self, size: int) -> np.ndarray:
        if self.trajectory.images is not None:
            return fit(self.trajectory.images[self.frame], size)
        return render_state(self.twin, self.trajectory.physics_states[self.frame], size)
