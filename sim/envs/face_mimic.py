"""`facetwin/FaceMimic-v0`: make the twin's face show a target expression."""

from __future__ import annotations

import os

import numpy as np

from facetwin.expression import EXPRESSION_DIM
from facetwin.motion import ExpertConfig
from facetwin.sim.envs.base import FaceEnv
from facetwin.sim.envs.panels import expression_bars, fit
from facetwin.sim.envs.rewards import RewardConfig
from facetwin.sim.envs.snapshot import render_state
from facetwin.sim.envs.targets import Target, make_target_source
from facetwin.spec import FaceSpec


class FaceMimicEnv(FaceEnv):
    """
    ## Description
    Each episode shows a target facial expression: MediaPipe's 52 blendshape coefficients and the head's
    yaw, pitch and roll. The agent sets the 25 servo commands of the robot face twin (MuJoCo; servos pull
    a skin whose landmarks MediaPipe's blendshape network reads) and is rewarded for making the twin's
    expression match the target. Targets come from `target_source`:

    - ``"primitives"`` (default): an expert keyframe (1-3 motion primitives at random intensities under
      the expert rules of `facetwin.motion.ExpertStrategy`) applied to the twin and read back, so every
      target is reachable and the zero-error solution exists;
    - ``"faces:DIR"``: human faces in the images (and every `video_stride`-th video frame) of DIR,
      perceived once with MediaPipe and cached on disk (`cache_dir`);
    - ``"dataset:DIR"``: rows of a collected dataset's ``observation.expression``.

    A target can also be given per episode: ``reset(options={"target": vector55})`` (head in degrees).

    ## Action Space
    ``Box(-1, 1, (25,), float32)``, one value per servo in the face spec's order
    (``env.unwrapped.face_spec.names``; the order lives only in ``assets/face_spec.yaml``).

    | Num  | Action                                  | Min | Max | Name in the MJCF      | Unit                        |
    |------|-----------------------------------------|-----|-----|-----------------------|-----------------------------|
    | i    | servo i's command (absolute mode)       | -1  | 1   | actuator = servo name | normalised shaft angle      |
    | i    | servo i's command change (delta mode)   | -1  | 1   | actuator = servo name | `delta_scale` command units |

    Normalised shaft angle: 0 = neutral, +1 / -1 = the servo's ``range_deg`` limits. With
    ``action_mode="absolute"`` the action is the command; with ``"delta"`` the command is the previous
    command plus ``delta_scale * action``. Either way the applied command is clipped to [-1, 1] and passed
    through the spec's mouth-corner/jaw coupling limit (as the motion library does for the real robot);
    ``info["command"]`` holds what was applied.

    ## Observation Space
    ``Box(135,) float32``, three blocks (``env.unwrapped.observation_names`` names every entry):

    | Num     | Observation                                         | Min | Max | Unit                   |
    |---------|-----------------------------------------------------|-----|-----|------------------------|
    | 0-51    | target blendshape coefficients (MediaPipe order)    | 0   | 1   | coefficient            |
    | 52-54   | target head yaw, pitch, roll                        | -6  | 6   | degrees / 30           |
    | 55-106  | twin's current blendshape coefficients              | 0   | 1   | coefficient            |
    | 107-109 | twin's current head yaw, pitch, roll                | -6  | 6   | degrees / 30           |
    | 110-134 | measured servo positions (spec order)               | -2  | 2   | normalised shaft angle |

    Head angles are divided by 30 so a 30-degree turn weighs like a full blendshape; values are clipped
    to the bounds above (blendshapes are probabilities; measured servos may overshoot [-1, 1] slightly).

    ## Rewards
    ``reward = reward_blendshape + reward_head + reward_smoothness + reward_effort``, each in ``info``:

    - ``reward_blendshape = -blendshape_weight * mean |target - twin|`` over the 51 coefficients that
      carry expression (MediaPipe's ``_neutral`` is left out);
    - ``reward_head = -head_weight * mean |target - twin head angle| / 30`` (degrees);
    - ``reward_smoothness = -smoothness_weight * mean (command - previous command)^2``;
    - ``reward_effort = -effort_weight * mean command^2`` (distance from the neutral face).

    ``info`` also holds the unweighted ``blendshape_error`` and ``head_error_deg``, the applied
    ``command`` and the twin's ``expression`` (55, head in degrees). Weights: `reward_config`.

    ## Starting State
    The twin at its neutral face (all commands 0, at rest); the target is drawn from `target_source`
    with the env's seeded generator, so ``reset(seed=s)`` reproduces the episode exactly.

    ## Episode End
    - Termination: never (no state ends the task).
    - Truncation: after `episode_steps` steps (default 10). Each step holds the command for `control_dt`
      seconds of physics (default 0.1 s = 50 steps of 2 ms), or until the face is still when
      ``settle=True``.

    ## Arguments
    ``gymnasium.make("facetwin/FaceMimic-v0", **kwargs)``:

    | Parameter        | Type                      | Default        | Description                                        |
    |------------------|---------------------------|----------------|----------------------------------------------------|
    | `target_source`  | str                       | "primitives"   | "primitives", "faces:DIR" or "dataset:DIR"         |
    | `episode_steps`  | int                       | 10             | steps before truncation                            |
    | `action_mode`    | str                       | "absolute"     | "absolute" or "delta"                              |
    | `delta_scale`    | float                     | 0.25           | command change per unit action in delta mode       |
    | `control_dt`     | float                     | 0.1            | seconds of physics per step                        |
    | `settle`         | bool                      | False          | step until the face is still instead               |
    | `reward_config`  | RewardConfig or dict      | RewardConfig() | term weights (1.0, 0.2, 0.01, 0.001)               |
    | `render_mode`    | str or None               | None           | "rgb_array": target beside twin                    |
    | `render_size`    | int                       | 256            | pixels per panel side                              |
    | `video_stride`   | int                       | 10             | "faces:DIR": every n-th video frame is a target    |
    | `cache_dir`      | path or None              | None           | perceived-face cache ($FACETWIN_CACHE_DIR or ~/.cache/facetwin) |
    | `expert_config`  | ExpertConfig or None      | None           | "primitives": the keyframe distribution            |
    | `face_spec`, `bundle` | FaceSpec, path       | None           | face spec; face_landmarker.task ($FACETWIN_FACE_LANDMARKER) |

    ``render()`` returns ``(render_size, 2 * render_size, 3)`` uint8: the target on the left (the twin
    posed as the target for primitives, the face crop for human faces, coefficient bars for dataset
    rows and given targets), the twin now on the right.

    ## Version History
    - v0: initial version.
    """

    def __init__(
        self,
        target_source: str = "primitives",
        episode_steps: int = 10,
        *,
        action_mode: str = "absolute",
        delta_scale: float = 0.25,
        control_dt: float = 0.1,
        settle: bool = False,
        reward_config: RewardConfig | dict | None = None,
        render_mode: str | None = None,
        render_size: int = 256,
        video_stride: int = 10,
        cache_dir: str | os.PathLike | None = None,
        expert_config: ExpertConfig | None = None,
        face_spec: FaceSpec | None = None,
        bundle: str | os.PathLike | None = None,
    ):
        if episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1, got {episode_steps}")
        if not control_dt > 0:
            raise ValueError(f"control_dt must be > 0 seconds, got {control_dt}")
        super().__init__(action_mode=action_mode, delta_scale=delta_scale, reward_config=reward_config,
                         render_mode=render_mode, render_size=render_size, face_spec=face_spec, bundle=bundle)
        self.episode_steps = int(episode_steps)
        self.physics_steps = None if settle else max(1, int(round(control_dt / self.twin.timestep)))
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / control_dt))}
        self.targets = make_target_source(target_source, self.twin, bundle=bundle, cache_dir=cache_dir,
                                          video_stride=video_stride, expert_config=expert_config)
        self.target: Target | None = None
        self._target_image: np.ndarray | None = None  # this episode's left panel, drawn on first render
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        given = (options or {}).get("target")
        if given is not None:
            vector = np.asarray(given, np.float32).reshape(-1)
            if vector.shape != (EXPRESSION_DIM,) or not np.isfinite(vector).all():
                raise ValueError(f"options['target'] must be {EXPRESSION_DIM} finite numbers (52 blendshapes, head in degrees)")
            self.target = Target(vector, "given")
        else:
            self.target = self.targets.sample(self.np_random, self.twin)
        self._target_image = None
        self._reset_twin()
        self._steps = 0
        return self._observation(), {**self._info(None), "target_label": self.target.label}

    def step(self, action):
        if self.target is None:
            raise RuntimeError("call reset() before step()")
        previous = self.command
        self._drive(self.command_from_action(action), self.physics_steps)
        terms = self._reward(self.target.expression, previous)
        self._steps += 1
        truncated = self._steps >= self.episode_steps
        return self._observation(), terms.total, False, truncated, self._info(terms)

    def _target_now(self) -> np.ndarray:
        return self.target.expression

    def _target_panel(self, size: int) -> np.ndarray:
        if self._target_image is None or self._target_image.shape[0] != size:
            if self.target.physics_state is not None:
                self._target_image = render_state(self.twin, self.target.physics_state, size)
            elif self.target.image is not None:
                self._target_image = fit(self.target.image, size)
            else:
                self._target_image = expression_bars(self.target.expression, size)
        return self._target_image
