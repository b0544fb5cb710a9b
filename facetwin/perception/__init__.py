"""Perception: faces in photos, videos, webcams and the twin's renders -> ``Expression``s."""

from facetwin.perception.errors import PerceptionError
from facetwin.perception.face_perceiver import FacePerceiver, detect_face_landmarks
from facetwin.perception.one_euro import OneEuroConfig, OneEuroFilter
from facetwin.perception.sources import Frame, FrameSource, open_source, read_image

__all__ = [
    "FacePerceiver",
    "LandmarkerResult",
    "TorchFaceLandmarker",
    "Frame",
    "FrameSource",
    "OneEuroConfig",
    "OneEuroFilter",
    "PerceptionError",
    "detect_face_landmarks",
    "open_source",
    "read_image",
]


def __getattr__(name: str):
    # the torch engine loads on first use, so reading faces with MediaPipe never imports torch
    if name in ("TorchFaceLandmarker", "LandmarkerResult"):
        from facetwin.perception import torch_landmarker

        return getattr(torch_landmarker, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
