"""Perception: faces in photos, videos, webcams and the twin's renders -> ``Expression``s."""

from facetwin.perception.errors import PerceptionError
from facetwin.perception.face_perceiver import FacePerceiver, detect_face_landmarks
from facetwin.perception.one_euro import OneEuroConfig, OneEuroFilter
from facetwin.perception.sources import Frame, FrameSource, open_source, read_image

__all__ = [
    "FacePerceiver",
    "Frame",
    "FrameSource",
    "OneEuroConfig",
    "OneEuroFilter",
    "PerceptionError",
    "detect_face_landmarks",
    "open_source",
    "read_image",
]
