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

import torch

from facetwin.perception.torch_landmarker import constants as C


@dataclass
class Crops:
    """N rotated rectangles in pixels of their source frames (MediaPipe's RotatedRect).

    center: (N, 2) x, y; size: (N, 2) width, height; rotation: (N,) radians, positive turning the
    crop's x axis towards the image's y axis (down), as cv::RotatedRect's angle.
    """

    center: torch.Tensor
    size: torch.Tensor
    rotation: torch.Tensor

    def __len__(self) -> int:
        return int(self.center.shape[0])

    def to(self, device: torch.device | str) -> "Crops":
        return Crops(self.center.to(device), self.size.to(device), self.rotation.to(device))

    def __getitem__(self, index) -> "Crops":
        return Crops(self.center[index], self.size[index], self.rotation[index])

    def source_points(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Crop coordinates u, v in [0, 1], shaped (N or 1, ...), -> (N, ..., 2) source pixels.

        u = 0 is the crop's left edge, not a pixel centre: ImageToTensorCalculator maps the rect's
        corners to the output tensor's corners.
        """
        shape = (-1,) + (1,) * (max(u.ndim, v.ndim) - 1)
        lx = (u - 0.5) * self.size[:, 0].reshape(shape)
        ly = (v - 0.5) * self.size[:, 1].reshape(shape)
        cos, sin = torch.cos(self.rotation).reshape(shape), torch.sin(self.rotation).reshape(shape)
        x = self.center[:, 0].reshape(shape) + cos * lx - sin * ly
        y = self.center[:, 1].reshape(shape) + sin * lx + cos * ly
        return torch.stack([x, y], dim=-1)


def normalize_radians(angle: torch.Tensor) -> torch.Tensor:
    return angle - 2 * math.pi * torch.floor((angle + math.pi) / (2 * math.pi))


def _rotation(start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """MediaPipe's ComputeRotation: the angle that levels start -> end (pixels), target angle 0."""
    return normalize_radians(-torch.atan2(-(end[:, 1] - start[:, 1]), end[:, 0] - start[:, 0]))


def letterbox(n: int, width: int, height: int, device: torch.device | str = "cpu") -> Crops:
    """The whole frame padded to a square about its centre (keep_aspect_ratio), n times."""
    side = float(max(width, height))
    return Crops(
        center=torch.tensor([[0.5 * width, 0.5 * height]], device=device).expand(n, 2).clone(),
        size=torch.full((n, 2), side, device=device),
        rotation=torch.zeros(n, device=device),
    )


def from_detections(boxes: torch.Tensor, keypoints: torch.Tensor, width: int, height: int) -> Crops:
    """Detections in normalised image coordinates -> the landmark model's crops.

    boxes: (N, 4) xmin, ymin, width, height; keypoints: (N, 6, 2) x, y.
    """
    scale = torch.tensor([width, height], dtype=boxes.dtype, device=boxes.device)
    center = (boxes[:, :2] + 0.5 * boxes[:, 2:]) * scale
    size = boxes[:, 2:] * scale * C.DETECTOR_RECT_SCALE
    a, b = C.DETECTOR_ROTATION_KEYPOINTS
    return Crops(center, size, _rotation(keypoints[:, a] * scale, keypoints[:, b] * scale))


def from_landmarks(landmarks: torch.Tensor, width: int, height: int) -> Crops:
    """(N, 478, >=2) normalised landmarks of a previous frame -> the crops MediaPipe tracks them with."""
    scale = torch.tensor([width, height], dtype=landmarks.dtype, device=landmarks.device)
    xy = landmarks[..., :2]
    low, high = xy.min(dim=1).values, xy.max(dim=1).values
    center = 0.5 * (low + high) * scale
    long_side = ((high - low) * scale).max(dim=1).values
    size = (long_side * C.TRACKING_RECT_SCALE)[:, None].expand(-1, 2).clone()
    a, b = C.TRACKING_ROTATION_LANDMARKS
    return Crops(center, size, _rotation(xy[:, a] * scale, xy[:, b] * scale))
