"""The rotated crops MediaPipe feeds its networks, in pixels.

Three sources, each as MediaPipe's calculators compute it:
- the whole frame, letterboxed to a square (the detector's input);
- a detection: its box, rotated so detector keypoint 0 -> 1 lies level, scaled 1.5x
  (DetectionsToRectsCalculator + RectTransformationCalculator in face_detector_graph.cc);
- a previous frame's landmarks: their bounding box, rotated by landmark 33 -> 263, made square on its
  long side and scaled 1.5x (the tracking rect of face_landmarks_detector_graph.cc), so the detector
  can be skipped where the face's place is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from facetwin.perception.torch_landmarker import constants as C


def array_module(array):
    """The array's library: the formulas below run on NumPy arrays (LiteRT's engine, on the CPU) and on
    torch tensors (the torch engine, on its device) alike."""
    return torch if isinstance(array, torch.Tensor) else np


@dataclass
class Crops:
    """N rotated rectangles in pixels of their source frames (MediaPipe's RotatedRect).

    center: (N, 2) x, y; size: (N, 2) width, height; rotation: (N,) radians, positive turning the
    crop's x axis towards the image's y axis (down), as cv::RotatedRect's angle. All torch tensors
    or all NumPy arrays; ``to(device)`` gives tensors.
    """

    center: torch.Tensor | np.ndarray
    size: torch.Tensor | np.ndarray
    rotation: torch.Tensor | np.ndarray

    def __len__(self) -> int:
        return int(self.center.shape[0])

    def to(self, device: torch.device | str) -> "Crops":
        return Crops(*(torch.as_tensor(t, device=device) for t in (self.center, self.size, self.rotation)))

    def __getitem__(self, index) -> "Crops":
        return Crops(self.center[index], self.size[index], self.rotation[index])

    def source_points(self, u, v):
        """Crop coordinates u, v in [0, 1], shaped (N or 1, ...), -> (N, ..., 2) source pixels.

        u = 0 is the crop's left edge, not a pixel centre: ImageToTensorCalculator maps the rect's
        corners to the output tensor's corners.
        """
        xp = array_module(self.center)
        shape = (-1,) + (1,) * (max(u.ndim, v.ndim) - 1)
        lx = (u - 0.5) * self.size[:, 0].reshape(shape)
        ly = (v - 0.5) * self.size[:, 1].reshape(shape)
        cos, sin = xp.cos(self.rotation).reshape(shape), xp.sin(self.rotation).reshape(shape)
        x = self.center[:, 0].reshape(shape) + cos * lx - sin * ly
        y = self.center[:, 1].reshape(shape) + sin * lx + cos * ly
        return xp.stack([x, y], axis=-1)


def normalize_radians(angle):
    return angle - 2 * math.pi * array_module(angle).floor((angle + math.pi) / (2 * math.pi))


def _rotation(start, end):
    """MediaPipe's ComputeRotation: the angle that levels start -> end (pixels), target angle 0."""
    return normalize_radians(-array_module(start).arctan2(-(end[:, 1] - start[:, 1]), end[:, 0] - start[:, 0]))


def _pixels(xy, width: int, height: int):
    """(..., 2) normalised x, y -> pixels of a width x height frame."""
    return array_module(xy).stack([xy[..., 0] * width, xy[..., 1] * height], axis=-1)


def letterbox(n: int, width: int, height: int) -> Crops:
    """The whole frame padded to a square about its centre (keep_aspect_ratio), n times (NumPy; ``.to`` a device)."""
    side = float(max(width, height))
    return Crops(
        center=np.tile(np.array([[0.5 * width, 0.5 * height]], np.float32), (n, 1)),
        size=np.full((n, 2), side, np.float32),
        rotation=np.zeros(n, np.float32),
    )


def from_detections(boxes, keypoints, width: int, height: int) -> Crops:
    """Detections in normalised image coordinates -> the landmark model's crops.

    boxes: (N, 4) xmin, ymin, width, height; keypoints: (N, 6, 2) x, y.
    """
    center = _pixels(boxes[:, :2] + 0.5 * boxes[:, 2:], width, height)
    size = _pixels(boxes[:, 2:], width, height) * C.DETECTOR_RECT_SCALE
    a, b = C.DETECTOR_ROTATION_KEYPOINTS
    return Crops(center, size, _rotation(_pixels(keypoints[:, a], width, height), _pixels(keypoints[:, b], width, height)))


def from_landmarks(landmarks, width: int, height: int) -> Crops:
    """(N, 478, >=2) normalised landmarks of a previous frame -> the crops MediaPipe tracks them with."""
    xp = array_module(landmarks)
    xy = _pixels(landmarks[..., :2], width, height)
    low, high = xp.amin(xy, axis=1), xp.amax(xy, axis=1)
    center = 0.5 * (low + high)
    long_side = xp.amax(high - low, axis=1) * C.TRACKING_RECT_SCALE
    a, b = C.TRACKING_ROTATION_LANDMARKS
    return Crops(center, xp.stack([long_side, long_side], axis=-1), _rotation(xy[:, a], xy[:, b]))
