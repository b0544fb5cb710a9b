"""``TorchFaceLandmarker`` behind ``FacePerceiver``'s interface: one frame in, one ``Expression`` out.

Image mode detects in every frame. Video mode tracks: a frame whose predecessor had a face is cropped
from that face's landmarks, as MediaPipe's VIDEO mode does, and the detector runs only when the
track is lost. MediaPipe's own landmark smoothing in VIDEO mode is not reproduced; ``smoothing``
filters coefficients and head angles exactly as ``FacePerceiver`` does.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from facetwin.expression import N_BLENDSHAPES, Expression
from facetwin.perception.face_perceiver import HEAD_SMOOTHING_SCALE_DEG, MODES, as_rgb_frame
from facetwin.perception.one_euro import OneEuroConfig, OneEuroFilter
from facetwin.perception.torch_landmarker.landmarker import LandmarkerResult, TorchFaceLandmarker


class TorchPerceiver:
    def __init__(self, bundle: str | Path | None = None, *, device: str = "cpu", mode: str = "image",
                 max_faces: int = 1, smoothing: OneEuroConfig | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if smoothing is not None and mode != "video":
            raise ValueError("smoothing joins consecutive frames: use it with mode='video'")
        self.landmarker = TorchFaceLandmarker(bundle, device, max_faces=max_faces)
        self.mode = mode
        self._filter = OneEuroFilter(smoothing) if smoothing is not None else None
        self._previous: LandmarkerResult | None = None
        self._clock_start: float | None = None

    def __enter__(self) -> "TorchPerceiver":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._previous = None

    def reset(self) -> None:
        self._previous = None
        if self._filter is not None:
            self._filter.reset()

    def perceive(self, rgb: np.ndarray, timestamp: float | None = None) -> Expression:
        frame = as_rgb_frame(rgb)[None]
        if timestamp is None and self.mode == "video":  # as FacePerceiver: the wall clock since the first frame
            now = time.monotonic()
            self._clock_start = now if self._clock_start is None else self._clock_start
            timestamp = now - self._clock_start
        t = 0.0 if timestamp is None else float(timestamp)
        result = None
        if self.mode == "video" and self._previous is not None:
            result = self.landmarker.track(frame, [self._previous])[0]
        if result is None or not result.face_found:
            result = self.landmarker.detect(frame)[0]
        if self.mode == "video":
            self._previous = result if result.face_found else None
        if not result.face_found:
            if self._filter is not None:
                self._filter.reset()  # a face that reappears starts a fresh track
            return result.expression(t)
        expr = result.expression(t)
        if self._filter is not None:
            vec = self._filter(np.concatenate([expr.blendshapes, expr.head / HEAD_SMOOTHING_SCALE_DEG]), t)
            expr.blendshapes = np.clip(vec[:N_BLENDSHAPES], 0.0, 1.0).astype(np.float32)
            expr.head = (vec[N_BLENDSHAPES:] * HEAD_SMOOTHING_SCALE_DEG).astype(np.float32)
        return expr
