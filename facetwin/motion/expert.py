"""The expert strategy: plausible facial motion built from primitives (after arXiv 2510.23059).

Rather than babbling, the expert plays what faces do: each keyframe combines 1-3 motion primitives at
random intensities, plus small neutral-relative noise, shaped by the rules in `ExpertStrategy`'s
docstring, and keyframes are joined by minimum-jerk moves with holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetwin.motion.constraints import bound_pair_difference, limit_coupling, mirror_pairs
from facetwin.motion.primitives import PRIMITIVES, Activation, available, check_library, compose, lid_follow
from facetwin.motion.trajectory import Segment, min_jerk_duration, sample
from facetwin.spec import FaceSpec, default_spec


@dataclass(frozen=True)
class RejectionRule:
    """Two primitives that no keyframe plays together once both reach `min_intensity`."""

    a: str
    b: str
    min_intensity: float  # 0.0 = at any intensity
    why: str

    def fires(self, activations: tuple[Activation, ...]) -> bool:
        level = {act.primitive: act.intensity for act in activations}
        return self.a in level and self.b in level and min(level[self.a], level[self.b]) >= self.min_intensity


REJECTION_RULES: tuple[RejectionRule, ...] = (
    RejectionRule("smile", "frown", 0.0, "corners cannot go up and down at once"),
    RejectionRule("blink", "eye_wide", 0.0, "lids cannot be closed and wide open"),
    RejectionRule("squint", "eye_wide", 0.0, "lids cannot be half closed and wide open"),
    RejectionRule("blink", "wink_left", 0.0, "a wink inside a blink is no wink"),
    RejectionRule("blink", "wink_right", 0.0, "a wink inside a blink is no wink"),
    RejectionRule("wink_left", "wink_right", 0.0, "two winks are a blink"),
    RejectionRule("brow_raise", "brow_furrow", 0.0, "brows cannot rise and lower at once"),
    RejectionRule("pucker", "smile", 0.6, "corners cannot draw in and pull back hard at once"),
    RejectionRule("look_left", "look_right", 0.0, "opposite gaze"),
    RejectionRule("look_up", "look_down", 0.0, "opposite gaze"),
    RejectionRule("lip_raise", "lip_press", 0.0, "upper lip cannot rise and press down"),
    RejectionRule("lip_depress", "lip_press", 0.0, "lower lip cannot drop and push up"),
    RejectionRule("jaw_open", "lip_press", 0.0, "pressing the lips clenches the jaw"),
    RejectionRule("jaw_left", "jaw_right", 0.0, "opposite jaw shift"),
    RejectionRule("head_nod", "head_up", 0.0, "opposite head pitch"),
    RejectionRule("head_turn_left", "head_turn_right", 0.0, "opposite head yaw"),
    RejectionRule("head_tilt", "head_tilt_right", 0.0, "opposite head roll"),
)


def rejected_by(activations: tuple[Activation, ...]) -> list[RejectionRule]:
    return [rule for rule in REJECTION_RULES if rule.fires(activations)]


@dataclass(frozen=True)
class ExpertConfig:
    min_primitives: int = 1
    max_primitives: int = 3
    intensity: tuple[float, float] = (0.3, 1.0)  # uniform range of each primitive's intensity
    # chance an activation plays at full intensity instead: the end of a primitive's travel, where the skin folds
    # and the camera reads what the middle of the range does not (browDown, docs/study.md); 0 = always uniform
    full_prob: float = 0.25
    noise_std: float = 0.03  # neutral-relative Gaussian noise on every servo, command units
    max_asymmetry: float = 0.15  # |right - left| bound for mirrored servos outside asymmetric primitives
    max_vergence: float = 0.1  # eye_right_yaw - eye_left_yaw in [0, this]: converge a little, never diverge
    asymmetric_prob: float = 0.1  # chance a keyframe includes one asymmetric primitive (wink, jaw shift)
    neutral_prob: float = 0.1  # chance a keyframe returns to (noisy) neutral
    move_s: tuple[float, float] = (0.3, 0.9)  # uniform move duration, stretched to respect max_speed_deg_s
    hold_s: tuple[float, float] = (0.15, 0.8)
    max_speed_deg_s: float = 300.0  # peak shaft speed of any servo during a move
    max_tries: int = 100  # resamples of a rejected combination before falling back to one primitive

    def __post_init__(self):
        problems = []
        if not 1 <= self.min_primitives <= self.max_primitives:
            problems.append("need 1 <= min_primitives <= max_primitives")
        for name in ("intensity", "move_s", "hold_s"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                problems.append(f"{name} must be (low, high) with 0 <= low <= high")
        if self.intensity[1] > 1.0:
            problems.append("intensity must stay within [0, 1]")
        for name in ("asymmetric_prob", "neutral_prob", "full_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be a probability")
        if min(self.noise_std, self.max_asymmetry, self.max_vergence) < 0 or self.max_speed_deg_s <= 0:
            problems.append("noise_std, max_asymmetry, max_vergence must be >= 0 and max_speed_deg_s > 0")
        if problems:
            raise ValueError("ExpertConfig: " + "; ".join(problems))


@dataclass(frozen=True)
class Keyframe:
    activations: tuple[Activation, ...]  # empty = back to neutral
    command: np.ndarray  # (n_servos,) after the expert rules
    move_s: float
    hold_s: float


class ExpertStrategy:
    """Expert facial motion: primitive combinations under anatomical rules.

    Per keyframe: with probability `neutral_prob` return to neutral; otherwise draw 1-3 distinct
    primitives, each at full intensity with probability `full_prob` and otherwise uniform in `intensity`,
    at most one of them asymmetric (with probability `asymmetric_prob`). Combinations hitting a rejection
    rule are redrawn. The summed command gets Gaussian noise (`noise_std`), then, in order:

    1. gaze: both eye pitches take their mean; eye_right_yaw - eye_left_yaw is bounded to
       [0, max_vergence] (the eyes move together and never diverge);
    2. lids follow gaze pitch: the lid offset that went with the pre-noise pitch is replaced by
       `lid_follow` of the final pitch (lid = intent + noise - LID_FOLLOW_GAIN * pitch);
    3. range: clip to [-1, 1];
    4. symmetry: every other right/left servo pair differs by at most `max_asymmetry`, except pairs an
       asymmetric primitive (wink) drives;
    5. coupling: mouth-corner commands are scaled down so |corner| + max(jaw_open, 0) <= the spec's limit.

    Moves are minimum-jerk, lasting at least long enough that no servo's peak shaft speed exceeds
    `max_speed_deg_s`. All limits are convex, so every frame between two keyframes keeps them too.

    Rejection rules (combinations never played; "any" = at any intensity):

    ==============  ===============  =========  ============================================
    primitive       with             intensity  why
    ==============  ===============  =========  ============================================
    smile           frown            any        corners cannot go up and down at once
    blink           eye_wide         any        lids cannot be closed and wide open
    squint          eye_wide         any        lids cannot be half closed and wide open
    blink           wink_left        any        a wink inside a blink is no wink
    blink           wink_right       any        a wink inside a blink is no wink
    wink_left       wink_right       any        two winks are a blink
    brow_raise      brow_furrow      any        brows cannot rise and lower at once
    pucker          smile            >= 0.6     corners cannot draw in and pull back hard at once
    look_left       look_right       any        opposite gaze
    look_up         look_down        any        opposite gaze
    lip_raise       lip_press        any        upper lip cannot rise and press down
    lip_depress     lip_press        any        lower lip cannot drop and push up
    jaw_open        lip_press        any        pressing the lips clenches the jaw
    jaw_left        jaw_right        any        opposite jaw shift
    head_nod        head_up          any        opposite head pitch
    head_turn_left  head_turn_right  any        opposite head yaw
    head_tilt       head_tilt_right  any        opposite head roll
    ==============  ===============  =========  ============================================

    Episodes are deterministic in (seed, episode_index): each draws from
    np.random.default_rng([seed, episode_index]), so a resumed collection reproduces exactly.
    """

    name = "expert"

    def __init__(
        self, spec: FaceSpec | None = None, seed: int | np.random.Generator = 0, config: ExpertConfig | None = None
    ):
        self.spec = spec or default_spec()
        check_library(self.spec)
        # A Generator is accepted for convenience; it is drawn from once, here, so episodes stay pure.
        self.seed = int(seed.integers(2**63)) if isinstance(seed, np.random.Generator) else int(seed)
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        self.config = config or ExpertConfig()
        self._yaw, self._pitch = _gaze_pairs(self.spec)
        self._lids = [i for i, s in enumerate(self.spec.servos) if s.mechanism == "eyelid"]
        gaze = set(self._yaw) | set(self._pitch)
        self._mirrored = [p for p in mirror_pairs(self.spec) if not set(p) & gaze]
        plays = available(self.spec)
        self._symmetric = [p.name for p in plays if not p.asymmetric]
        self._asymmetric = [p.name for p in plays if p.asymmetric]
        # Degrees per command unit on the steeper side of each servo: a conservative speed bound.
        self._deg_per_unit = np.array([max(-s.range_deg[0], s.range_deg[1]) for s in self.spec.servos])

    # -- keyframes ------------------------------------------------------------------------------
    def draw_activations(self, rng: np.random.Generator) -> tuple[Activation, ...]:
        cfg = self.config
        if rng.random() < cfg.neutral_prob:
            return ()
        for _ in range(cfg.max_tries):
            k = int(rng.integers(cfg.min_primitives, cfg.max_primitives + 1))
            names = []
            if self._asymmetric and rng.random() < cfg.asymmetric_prob:
                names.append(str(rng.choice(self._asymmetric)))
                k -= 1
            names += [str(n) for n in rng.choice(self._symmetric, size=k, replace=False)]
            acts = tuple(Activation(n, self._intensity(rng)) for n in names)
            if not rejected_by(acts):
                return acts
        return (Activation(str(rng.choice(self._symmetric)), self._intensity(rng)),)

    def _intensity(self, rng: np.random.Generator) -> float:
        cfg = self.config
        level = float(rng.uniform(*cfg.intensity))  # drawn either way: one activation, the same two draws
        return cfg.intensity[1] if rng.random() < cfg.full_prob else level

    def shape(self, activations: tuple[Activation, ...], rng: np.random.Generator) -> np.ndarray:
        """The rules 1-5 applied to the activations' composed command plus noise."""
        cfg, spec = self.config, self.spec
        cmd = compose(activations, spec)
        pitch_before = cmd[list(self._pitch)].mean()
        cmd = cmd + rng.normal(0.0, cfg.noise_std, spec.n)
        cmd = bound_pair_difference(cmd, [self._pitch], 0.0, 0.0)
        cmd = bound_pair_difference(cmd, [self._yaw], 0.0, cfg.max_vergence)
        cmd = np.clip(cmd, -1.0, 1.0)
        pitch_after = cmd[list(self._pitch)].mean()
        cmd[self._lids] += lid_follow(pitch_after) - lid_follow(pitch_before)
        cmd = np.clip(cmd, -1.0, 1.0)
        one_sided = {spec.index(s) for a in activations if PRIMITIVES[a.primitive].asymmetric
                     for s in PRIMITIVES[a.primitive].targets_for(spec)}
        pairs = [p for p in self._mirrored if not set(p) & one_sided]
        cmd = bound_pair_difference(cmd, pairs, -cfg.max_asymmetry, cfg.max_asymmetry)
        return np.clip(limit_coupling(cmd, spec), -1.0, 1.0)

    def keyframe(self, rng: np.random.Generator, previous: np.ndarray) -> Keyframe:
        cfg = self.config
        acts = self.draw_activations(rng)
        cmd = self.shape(acts, rng)
        distance_deg = float(np.max(np.abs(cmd - previous) * self._deg_per_unit))
        move = max(float(rng.uniform(*cfg.move_s)), min_jerk_duration(distance_deg, cfg.max_speed_deg_s))
        return Keyframe(acts, cmd, move, float(rng.uniform(*cfg.hold_s)))

    def plan(self, episode_index: int, duration_s: float) -> list[Keyframe]:
        """Keyframes covering `duration_s` seconds from neutral; a longer plan extends a shorter one."""
        if episode_index < 0:
            raise ValueError(f"episode_index must be >= 0, got {episode_index}")
        rng = np.random.default_rng([self.seed, episode_index])
        frames, previous, t = [], np.zeros(self.spec.n), 0.0
        while t <= duration_s:
            kf = self.keyframe(rng, previous)
            frames.append(kf)
            previous, t = kf.command, t + kf.move_s + kf.hold_s
        return frames

    # -- episodes -------------------------------------------------------------------------------
    def episode(self, episode_index: int, n_frames: int, fps: float) -> np.ndarray:
        """(n_frames, n_servos) commands at `fps`, starting from neutral; deterministic per (seed, index)."""
        plan = self.plan(episode_index, max(n_frames - 1, 0) / fps)
        segments = [Segment(kf.command, kf.move_s, kf.hold_s) for kf in plan]
        return sample(np.zeros(self.spec.n), segments, fps, n_frames)


def _gaze_pairs(spec: FaceSpec) -> tuple[tuple[int, int], tuple[int, int]]:
    """(right, left) indices of the eyeball servos turning about the vertical axis (yaw) and about the
    horizontal one (pitch), found by their kinematics, so that any face with two gimballed eyes qualifies."""
    eyes = {i for i, s in enumerate(spec.servos) if s.mechanism == "eyeball"}
    found: dict[str, tuple[int, int]] = {}
    for right, left in mirror_pairs(spec):
        if right in eyes and left in eyes:
            axis = np.abs(np.asarray(spec.servos[right].axis))
            found["yaw" if axis[1] > axis[0] else "pitch"] = (right, left)
    if set(found) != {"yaw", "pitch"}:
        raise ValueError(f"the expert strategy moves two eyes together: face spec {spec.name!r} needs right/left "
                         "eyeball servos about the vertical (yaw) and horizontal (pitch) axes, named alike but for "
                         "the side (eye_right_yaw / eye_left_yaw)")
    return found["yaw"], found["pitch"]
