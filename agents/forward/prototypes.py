"""Prototype emotional expressions in MediaPipe's blendshape terms, for training targets that look like people.

The twin's recorded expressions are what its servos can do; a person's carry the co-activations of
real facial muscles: a smile raises the upper lip and squints the eyes and cheeks with it, disgust
wrinkles the nose while the upper lip rises. A policy trained only on the twin's combinations and
random perturbations of them meets those combinations first on a human face, and errs most there
(the smile's upper-lip raise: docs/experiments.md#emotion-prototypes). These sets follow the EMFACS
prototypes of Ekman and Friesen's six basic emotions, each action unit written as the ARKit/MediaPipe
coefficients that read it (AU6 cheek raiser -> cheekSquint + eyeSquint, AU10 upper lip raiser ->
mouthUpperUp, AU9 nose wrinkler -> noseSneer, ...). They come from the literature, not from any
evaluation face.
"""

from __future__ import annotations

import numpy as np

from facetwin.expression import BLENDSHAPE_NAMES


def _both(*stems: str) -> list[str]:
    return [stem + side for stem in stems for side in ("Left", "Right")]


PROTOTYPES: dict[str, list[str]] = {
    # AU6 + AU12 (Duchenne smile), with AU10 and dimples as smiles usually carry them
    "happiness": _both("mouthSmile", "cheekSquint", "eyeSquint", "mouthUpperUp", "mouthDimple"),
    # AU1 + AU4 + AU15 (+ AU17 chin raiser, AU24 lip press)
    "sadness": ["browInnerUp", "mouthShrugLower", *_both("browDown", "mouthFrown", "mouthPress")],
    # AU4 + AU5/7 + AU23/24 (+ AU9 in many displays)
    "anger": ["mouthShrugUpper", *_both("browDown", "eyeSquint", "mouthPress", "noseSneer")],
    # AU9 + AU10 (+ AU4, AU6, AU15, AU17)
    "disgust": ["mouthShrugUpper", *_both("noseSneer", "mouthUpperUp", "browDown", "cheekSquint", "mouthFrown")],
    # AU1 + AU2 + AU4 + AU5 + AU20 + AU26
    "fear": ["browInnerUp", "jawOpen", *_both("browOuterUp", "eyeWide", "mouthStretch")],
    # AU1 + AU2 + AU5 + AU26 (+ rounded lips)
    "surprise": ["browInnerUp", "jawOpen", "mouthFunnel", *_both("browOuterUp", "eyeWide")],
}

PROTOTYPE_INDICES: dict[str, np.ndarray] = {
    name: np.array([BLENDSHAPE_NAMES.index(c) for c in coefficients]) for name, coefficients in PROTOTYPES.items()
}


def overlay_prototypes(targets: np.ndarray, rows: np.ndarray, rng: np.random.Generator, keep: float = 0.8) -> None:
    """In place: each row in `rows` takes one prototype at a random intensity in [0.2, 1], each of its
    coefficients kept with probability `keep` and scaled by U(0.3, 1) (people show parts of a prototype,
    unevenly), raising the row's value where the prototype's is higher."""
    names = list(PROTOTYPE_INDICES)
    for r in rows:  # few hundred rows per batch; a loop keeps the per-row draws readable
        idx = PROTOTYPE_INDICES[names[rng.integers(len(names))]]
        chosen = idx[rng.random(len(idx)) < keep]
        values = rng.uniform(0.2, 1.0) * rng.uniform(0.3, 1.0, len(chosen))
        targets[r, chosen] = np.maximum(targets[r, chosen], values)
