"""Facial motion primitives: named servo synergies that both the sim collector and the real robot play.

A primitive is what a face does with one intent ("raise the brows", "look left"), written as servo
targets at full intensity, by servo NAME: the face spec owns the order, so nothing here depends on it.
Signs follow the spec's `positive` / `negative` text (e.g. corner_raise_* positive = mouthSmile*).
The library's targets are written in the default face's servos; a face with other servos gives its own
targets for the same primitives in its spec (`primitives:`), and what it leaves out it does not play.
Playing a primitive at intensity s in [0, 1] scales its targets by s; primitives combine by summing,
then clipping to [-1, 1] (see `compose`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from facetwin.spec import REGIONS, FaceSpec, default_spec

# Upper lids follow gaze pitch (lid-gaze coupling): looking down lowers them, looking up lifts them.
# One linear gain in command units, so it survives interpolation between keyframes unchanged.
LID_FOLLOW_GAIN = 0.4


def lid_follow(gaze_pitch: float | np.ndarray) -> float | np.ndarray:
    """Eyelid command that accompanies a gaze-pitch command (positive pitch = looking up = lids open)."""
    return -LID_FOLLOW_GAIN * gaze_pitch


@dataclass(frozen=True)
class Primitive:
    name: str
    region: str  # the face region the intent belongs to (one of facetwin.spec.REGIONS)
    targets: Mapping[str, float]  # servo name -> command at intensity 1
    asymmetric: bool = False  # deliberately one-sided (wink, jaw shift): exempt from the mirror rule
    description: str = ""

    def __post_init__(self):
        if self.region not in REGIONS:
            raise ValueError(f"primitive {self.name!r}: region {self.region!r} not in {REGIONS}")
        bad = {k: v for k, v in self.targets.items() if not -1.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"primitive {self.name!r}: targets must lie in [-1, 1], got {bad}")

    @property
    def servos(self) -> tuple[str, ...]:
        return tuple(self.targets)

    def targets_for(self, spec: FaceSpec) -> Mapping[str, float]:
        """This primitive's servo targets on `spec`'s face: the spec's own if it writes them, else the library's."""
        if spec.primitives is None:
            return self.targets
        try:
            return spec.primitives[self.name]
        except KeyError:
            raise KeyError(f"face {spec.face!r} has no mechanism for motion primitive {self.name!r} (its spec's "
                           f"`primitives:` leaves it out); it plays: {', '.join(spec.primitives)}") from None

    def command(self, intensity: float = 1.0, spec: FaceSpec | None = None) -> np.ndarray:
        """The (n_servos,) command of this primitive alone at `intensity` in [0, 1], neutral elsewhere."""
        if not 0.0 <= intensity <= 1.0:
            raise ValueError(f"primitive {self.name!r}: intensity must be in [0, 1], got {intensity}")
        spec = spec or default_spec()
        out = np.zeros(spec.n)
        for servo, value in self.targets_for(spec).items():
            out[spec.index(servo)] = intensity * value
        return out


@dataclass(frozen=True)
class Activation:
    """One primitive played at one intensity: the unit poses and expert keyframes are made of."""

    primitive: str
    intensity: float = 1.0

    def __post_init__(self):
        if self.primitive not in PRIMITIVES:
            raise KeyError(f"unknown motion primitive {self.primitive!r}; known: {', '.join(PRIMITIVES)}")
        if not 0.0 <= self.intensity <= 1.0:
            raise ValueError(f"{self.primitive}: intensity must be in [0, 1], got {self.intensity}")


def _both(stem: str, value: float) -> dict[str, float]:
    """The same target on the right and left servo of a mirrored pair (`stem` has `{}` for the side)."""
    return {stem.format("right"): value, stem.format("left"): value}


def _p(name, region, targets, asymmetric=False, description=""):
    return Primitive(name, region, dict(targets), asymmetric, description)


_LIBRARY: tuple[Primitive, ...] = (
    # --- brows -----------------------------------------------------------------------------------
    _p("brow_raise", "brows", {**_both("brow_inner_{}", 0.8), **_both("brow_outer_{}", 1.0)},
       description="both brows up (browInnerUp, browOuterUp*)"),
    _p("brow_furrow", "brows", {**_both("brow_inner_{}", -1.0), **_both("brow_outer_{}", -1.0)},
       description="brows pulled down and in (browDown*)"),
    _p("brow_inner_raise", "brows", {**_both("brow_inner_{}", 1.0), **_both("brow_outer_{}", -0.25)},
       description="sad brows: inner corners up, outer slightly down (browInnerUp)"),
    # --- eyelids ---------------------------------------------------------------------------------
    _p("blink", "eyelids", _both("eyelid_{}", 1.0), description="both upper lids closed (eyeBlink*)"),
    _p("wink_left", "eyelids", {"eyelid_left": 1.0}, asymmetric=True, description="left lid closed (eyeBlinkLeft)"),
    _p("wink_right", "eyelids", {"eyelid_right": 1.0}, asymmetric=True,
       description="right lid closed (eyeBlinkRight)"),
    _p("squint", "eyelids", _both("eyelid_{}", 0.45), description="lids half lowered (eyeSquint*)"),
    _p("eye_wide", "eyelids", _both("eyelid_{}", -1.0), description="lids opened wide (eyeWide*)"),
    # --- gaze: both eyes' servos move together; lids follow pitch ---------------------------------
    _p("look_left", "eyes", _both("eye_{}_yaw", 1.0), description="both eyes to the subject's left"),
    _p("look_right", "eyes", _both("eye_{}_yaw", -1.0), description="both eyes to the subject's right"),
    _p("look_up", "eyes", {**_both("eye_{}_pitch", 1.0), **_both("eyelid_{}", lid_follow(1.0))},
       description="both eyes up, lids lifted with them (eyeLookUp*)"),
    _p("look_down", "eyes", {**_both("eye_{}_pitch", -1.0), **_both("eyelid_{}", lid_follow(-1.0))},
       description="both eyes down, lids lowered with them (eyeLookDown*)"),
    # --- mouth -----------------------------------------------------------------------------------
    _p("smile", "mouth", {**_both("corner_raise_{}", 1.0), **_both("corner_stretch_{}", 0.3)},
       description="corners up and back, a little outwards (mouthSmile*)"),
    _p("frown", "mouth", {**_both("corner_raise_{}", -1.0), **_both("lower_lip_{}", -0.4)},
       description="corners down, lower lip pushed up (mouthFrown*, mouthShrugLower)"),
    _p("jaw_open", "mouth", {"jaw_open": 1.0}, description="jaw opened (jawOpen)"),
    _p("pucker", "mouth", {"lip_purse_upper": 1.0, "lip_purse_lower": 1.0, **_both("corner_stretch_{}", -0.8)},
       description="lips drawn together, corners to the midline (mouthPucker, mouthFunnel)"),
    _p("lip_raise", "mouth", _both("upper_lip_{}", 1.0), description="upper lip up (mouthUpperUp*)"),
    _p("lip_depress", "mouth", _both("lower_lip_{}", 1.0), description="lower lip down (mouthLowerDown*)"),
    _p("lip_press", "mouth", {**_both("upper_lip_{}", -0.8), **_both("lower_lip_{}", -0.6), "jaw_open": -0.5},
       description="lips pressed together, jaw clenched (mouthPress*, mouthClose)"),
    _p("jaw_left", "mouth", {"jaw_lateral": 1.0}, asymmetric=True, description="jaw to the subject's left (jawLeft)"),
    _p("jaw_right", "mouth", {"jaw_lateral": -1.0}, asymmetric=True, description="jaw to the subject's right (jawRight)"),
    # --- neck ------------------------------------------------------------------------------------
    _p("head_nod", "neck", {"neck_pitch": -1.0}, description="head nodded down"),
    _p("head_up", "neck", {"neck_pitch": 1.0}, description="head tilted up"),
    _p("head_turn_left", "neck", {"neck_yaw": 1.0}, description="head turned to the subject's left"),
    _p("head_turn_right", "neck", {"neck_yaw": -1.0}, description="head turned to the subject's right"),
    _p("head_tilt", "neck", {"neck_roll": -1.0}, description="head rolled towards the subject's left shoulder"),
    _p("head_tilt_right", "neck", {"neck_roll": 1.0}, description="head rolled towards the subject's right shoulder"),
)

PRIMITIVES: dict[str, Primitive] = {p.name: p for p in _LIBRARY}


def primitive(name: str) -> Primitive:
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise KeyError(f"unknown motion primitive {name!r}; known: {', '.join(PRIMITIVES)}") from None


def compose(activations: Iterable[Activation], spec: FaceSpec | None = None) -> np.ndarray:
    """Sum of the activations' commands, clipped to [-1, 1]. Coupling limits are NOT applied here."""
    spec = spec or default_spec()
    out = np.zeros(spec.n)
    for a in activations:
        out += primitive(a.primitive).command(a.intensity, spec)
    return np.clip(out, -1.0, 1.0)


def available(spec: FaceSpec) -> tuple[Primitive, ...]:
    """The primitives `spec`'s face plays: all of the library, or those its spec writes targets for."""
    if spec.primitives is None:
        return _LIBRARY
    return tuple(p for p in _LIBRARY if p.name in spec.primitives)


def check_library(spec: FaceSpec) -> None:
    """Fail early, naming the primitive, if a spec lacks a servo the library drives (or names a primitive the
    library does not know)."""
    unknown = sorted(set(spec.primitives or {}) - set(PRIMITIVES))
    if unknown:
        raise KeyError(f"face spec {spec.name!r} writes targets for unknown motion primitive(s) {', '.join(unknown)}; "
                       f"known: {', '.join(PRIMITIVES)}")
    for p in available(spec):
        missing = [servo for servo in p.targets_for(spec) if servo not in spec.names]
        if missing:
            raise KeyError(
                f"motion primitive {p.name!r} drives {', '.join(missing)}, which face spec {spec.name!r} lacks; "
                f"known servos: {', '.join(spec.names)}"
            )
