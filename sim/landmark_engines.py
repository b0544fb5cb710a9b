"""The landmarkers a pixel readout can read renders with, chosen by name.

"mediapipe": MediaPipe's own Face Landmarker in IMAGE mode, one frame at a time (the reference).
"litert": the bundle's networks on LiteRT with NumPy and OpenCV crops
(`facetwin.perception.litert_landmarker`), one frame at a time on one thread: MediaPipe's reading
without its graph's overhead.
"torch": the bundle's networks in torch (`facetwin.perception.torch_landmarker`), batched on CPU or
CUDA; imported only when asked for.

An engine turns a batch of uint8 RGB frames (B, H, W, 3) into one `Expression` per frame
(`Expression.empty` where it finds no face), every field as `FacePerceiver.perceive` fills it.
Engines in `TRACKING_ENGINES` also `track`: frames whose face's place is known, given as (B, 468 or 478, 2)
landmarks in pixels (for the twin, its own projected landmarks), are read from MediaPipe's tracking
crop around them, without the detector. Engines in `DRAWN_CROP_ENGINES` also read those crops drawn by
the renderer itself at the landmark network's input size (`tracking_regions`, then `read_crops`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from facetwin.expression import Expression

ENGINES = ("mediapipe", "litert", "torch")
DEFAULT_ENGINE = "mediapipe"  # the reference: what a camera on the real face is read by
TRACKING_ENGINES = ("litert", "torch")
DRAWN_CROP_ENGINES = ("litert",)


class EngineError(ValueError):
    """An engine that cannot be opened here; the message names it and what to use instead."""


class LandmarkEngine(Protocol):
    name: str

    def detect(self, images: np.ndarray) -> list[Expression]: ...

    def close(self) -> None: ...


def _normalised(landmarks_px: np.ndarray, images: np.ndarray) -> np.ndarray:
    """(B, n, >=2) pixel landmarks of (B, H, W, 3) frames -> x, y normalised as MediaPipe's landmarks."""
    points = np.asarray(landmarks_px, np.float32)
    if points.ndim != 3 or points.shape[0] != len(images) or points.shape[2] < 2:
        raise ValueError(f"track needs (B, 478 or 468, 2) pixel landmarks for {len(images)} frames, got {points.shape}")
    height, width = images.shape[1:3]
    return points[..., :2] / np.array([width, height], np.float32)


class MediaPipeEngine:
    """MediaPipe's Face Landmarker, IMAGE mode, looking for the one face a twin render holds."""

    name = "mediapipe"

    def __init__(self, bundle=None):
        from facetwin.perception import FacePerceiver

        self._perceiver = FacePerceiver(bundle, mode="image", max_faces=1)

    def detect(self, images: np.ndarray) -> list[Expression]:
        return [self._perceiver.perceive(image) for image in images]

    def close(self) -> None:
        self._perceiver.close()


class LiteRTEngine:
    """The bundle's networks on LiteRT, MediaPipe's crops in NumPy and OpenCV, one frame at a time on one thread."""

    name = "litert"

    def __init__(self, bundle=None):
        from facetwin.perception.litert_landmarker import LiteRTFaceLandmarker

        self._landmarker = LiteRTFaceLandmarker(bundle)

    def detect(self, images: np.ndarray) -> list[Expression]:
        return [result.expression() for result in self._landmarker.detect(images)]

    def track(self, images: np.ndarray, landmarks_px: np.ndarray) -> list[Expression]:
        return [result.expression() for result in self._landmarker.track(images, _normalised(landmarks_px, images))]

    def tracking_regions(self, landmarks_px: np.ndarray, width: int, height: int):
        """(B, 468 or 478, 2) pixel landmarks of width x height frames -> (crops, regions): each frame's tracking
        crop, and the (centres, sides, rotations, size) a renderer draws so that its pixels are the crop's."""
        from facetwin.perception.litert_landmarker import sampled_regions
        from facetwin.perception.torch_landmarker.constants import LANDMARKS_SIZE

        points = np.asarray(landmarks_px, np.float32)[..., :2] / np.array([width, height], np.float32)
        crops = self._landmarker.tracking_crops(points, width, height)
        return crops, (*sampled_regions(crops, LANDMARKS_SIZE), LANDMARKS_SIZE)

    def read_crops(self, pixels: np.ndarray, crops, width: int, height: int) -> list[Expression]:
        return [result.expression() for result in self._landmarker.read_crops(pixels, crops, width, height)]

    def close(self) -> None:
        self._landmarker.close()


class TorchEngine:
    """The bundle's detector, landmark and blendshape networks in torch, one batched call per batch."""

    name = "torch"

    def __init__(self, bundle=None, device: str = "cpu"):
        try:
            from facetwin.perception.torch_landmarker import TorchFaceLandmarker
        except ImportError as exc:
            raise EngineError(
                f"the torch landmark engine is not available in this installation ({exc}); "
                "use engine='mediapipe'"
            ) from exc
        from facetwin.perception.errors import PerceptionError

        try:
            self._landmarker = TorchFaceLandmarker(bundle, device)
        except PerceptionError as exc:  # e.g. CUDA asked for where torch sees none
            raise EngineError(str(exc)) from exc

    def detect(self, images: np.ndarray) -> list[Expression]:
        return [result.expression() for result in self._landmarker.detect(images)]

    def track(self, images: np.ndarray, landmarks_px: np.ndarray) -> list[Expression]:
        return [result.expression() for result in self._landmarker.track(images, list(_normalised(landmarks_px, images)))]

    def close(self) -> None:
        pass  # torch modules hold no native handles


def open_engine(name: str, bundle=None, device: str = "cpu") -> LandmarkEngine:
    if name == "mediapipe":
        if device != "cpu":
            raise EngineError(f"the mediapipe engine runs on the CPU only, not {device!r}; use engine='torch' for {device}")
        return MediaPipeEngine(bundle)
    if name == "litert":
        if device != "cpu":
            raise EngineError(f"the litert engine runs on the CPU only, not {device!r}; use engine='torch' for {device}")
        return LiteRTEngine(bundle)
    if name == "torch":
        return TorchEngine(bundle, device)
    raise EngineError(f"unknown landmark engine {name!r}; choose one of {', '.join(ENGINES)}")
