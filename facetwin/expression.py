"""The expression layout shared by perception, the twin, datasets and policies.

An expression is MediaPipe's 52 blendshape coefficients plus head yaw, pitch and roll (degrees).
The constants are MediaPipe's (Face Landmarker, Apache-2.0): the order of `face_blendshapes.tflite`'s
output and the 146 landmarks it reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp",
    "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward",
    "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
HEAD_ANGLE_NAMES: tuple[str, ...] = ("head_yaw", "head_pitch", "head_roll")
EXPRESSION_NAMES: tuple[str, ...] = BLENDSHAPE_NAMES + HEAD_ANGLE_NAMES
N_BLENDSHAPES = len(BLENDSHAPE_NAMES)  # 52
EXPRESSION_DIM = len(EXPRESSION_NAMES)  # 55
N_LANDMARKS = 478
# The 51 coefficients that carry an expression (MediaPipe's `_neutral` is a constant-ish bias).
ACTIVE_BLENDSHAPES = tuple(range(1, N_BLENDSHAPES))

# Landmarks fed to face_blendshapes.tflite, in its input order (includes the iris points 468-477).
BLENDSHAPE_INPUT_LANDMARKS: tuple[int, ...] = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40,
    46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80, 81, 82,
    84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145,
    146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168,
    172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269,
    270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311,
    312, 314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373,
    374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397,
    398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473, 474, 475,
    476, 477,
)


def blendshape_index(name: str) -> int:
    try:
        return BLENDSHAPE_NAMES.index(name)
    except ValueError:
        raise KeyError(f"{name!r} is not one of MediaPipe's 52 blendshape names") from None


def head_angles_deg(rotation: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees from a 3x3 rotation of the canonical face into camera axes.

    Camera axes as in MediaPipe's facial transformation matrix: x to the image right, y up, z towards
    the viewer. Yaw > 0 turns the face to the subject's left (image right), pitch > 0 tilts it up,
    roll > 0 tips it towards the subject's right shoulder
    (the eye line rises to the image right). R = Ry(yaw) Rx(-pitch) Rz(roll).
    """
    r = np.asarray(rotation, dtype=np.float64)[:3, :3]
    yaw = np.arctan2(r[0, 2], r[2, 2])
    pitch = -np.arcsin(np.clip(-r[1, 2], -1.0, 1.0))
    roll = np.arctan2(r[1, 0], r[1, 1])
    return np.degrees([yaw, pitch, roll])


@dataclass
class Expression:
    """One observed face: what crosses from perception (or the twin) into datasets and policies."""

    blendshapes: np.ndarray  # (52,) in BLENDSHAPE_NAMES order, each in [0, 1]
    head: np.ndarray  # (3,) yaw, pitch, roll in degrees
    landmarks: np.ndarray | None = None  # (478, 3): x, y in pixels, z in pixels-scaled depth
    timestamp: float = 0.0  # seconds from the start of the source
    face_found: bool = True
    image_size: tuple[int, int] | None = None  # (width, height) the landmarks are measured in
    extra: dict = field(default_factory=dict)

    @property
    def vector(self) -> np.ndarray:
        """The 55-dim expression vector: 52 coefficients then head yaw, pitch, roll (degrees)."""
        return np.concatenate([self.blendshapes, self.head]).astype(np.float32)

    def coefficient(self, name: str) -> float:
        return float(self.blendshapes[blendshape_index(name)])

    @classmethod
    def empty(cls, timestamp: float = 0.0, image_size: tuple[int, int] | None = None) -> "Expression":
        """A frame where no face was found: zeros, flagged, never a crash downstream."""
        return cls(
            blendshapes=np.zeros(N_BLENDSHAPES, np.float32),
            head=np.zeros(3, np.float32),
            landmarks=None,
            timestamp=timestamp,
            face_found=False,
            image_size=image_size,
        )
