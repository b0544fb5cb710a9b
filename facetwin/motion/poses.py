"""Named full-intensity poses: the reference faces for tests, demos and twin sanity checks.

Emotions are combinations of primitives (in the spirit of FACS prototypes): smile = smile + half a
lip_raise (a full smile lifts the upper lip off the teeth with the corners); surprise = brow_raise +
eye_wide + jaw_open; sad = brow_inner_raise + frown; anger = brow_furrow + lip_press + squint;
disgust = lip_raise + brow_furrow + squint (the robot has no nose servo; the raised upper lip carries
the sneer). Every pose is clipped to [-1, 1] and passed through the coupling limit.
"""

from __future__ import annotations

import numpy as np

from facetwin.motion.constraints import limit_coupling
from facetwin.motion.primitives import Activation, compose
from facetwin.spec import FaceSpec, default_spec


def _single(name: str) -> tuple[Activation, ...]:
    return (Activation(name, 1.0),)


NAMED_POSES: dict[str, tuple[Activation, ...]] = {
    "neutral": (),
    "smile": (Activation("smile", 1.0), Activation("lip_raise", 0.5)),
    "sad": (Activation("brow_inner_raise", 1.0), Activation("frown", 0.8)),
    "surprise": (Activation("brow_raise", 1.0), Activation("eye_wide", 1.0), Activation("jaw_open", 0.8)),
    "anger": (Activation("brow_furrow", 1.0), Activation("lip_press", 0.8), Activation("squint", 0.6)),
    "disgust": (Activation("lip_raise", 1.0), Activation("brow_furrow", 0.6), Activation("squint", 0.5)),
    "blink": _single("blink"),
    "wink_left": _single("wink_left"),
    "jaw_open": _single("jaw_open"),
    "brow_raise": _single("brow_raise"),
    "brow_furrow": _single("brow_furrow"),
    "pucker": _single("pucker"),
    "look_left": _single("look_left"),
    "look_right": _single("look_right"),
    "look_up": _single("look_up"),
    "look_down": _single("look_down"),
    "head_turn_left": _single("head_turn_left"),
    "head_nod": _single("head_nod"),
}


def named_pose(name: str, spec: FaceSpec | None = None) -> np.ndarray:
    """The (n_servos,) command of a named pose, in the spec's servo order."""
    try:
        activations = NAMED_POSES[name]
    except KeyError:
        raise KeyError(f"unknown pose {name!r}; known poses: {', '.join(NAMED_POSES)}") from None
    spec = spec or default_spec()
    return np.clip(limit_coupling(compose(activations, spec), spec), -1.0, 1.0)
