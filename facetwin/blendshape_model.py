"""The fast path from 478 landmarks to MediaPipe's 52 blendshape coefficients.

Runs the bundle's own `face_blendshapes.tflite` on LiteRT, so a simulated face, a robot and a person
are scored by the same network without rendering or detecting anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facetwin import landmarker_bundle
from facetwin.expression import BLENDSHAPE_INPUT_LANDMARKS, N_BLENDSHAPES, N_LANDMARKS

_IDX = np.asarray(BLENDSHAPE_INPUT_LANDMARKS, dtype=np.int64)


class BlendshapeModel:
    """`face_blendshapes.tflite` on LiteRT. Not thread-safe: one instance per worker."""

    def __init__(self, bundle: str | Path | None = None):
        from ai_edge_litert.interpreter import Interpreter

        path = landmarker_bundle.resolve(bundle)
        blob = landmarker_bundle.read_member(path, landmarker_bundle.BLENDSHAPES_MEMBER)
        self._interp = Interpreter(model_content=blob, num_threads=1)
        self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
        self.bundle = path

    def __call__(self, landmarks_xy: np.ndarray) -> np.ndarray:
        """landmarks_xy: (478, >=2) image coordinates (pixels; y down). Returns (52,) float32."""
        pts = np.asarray(landmarks_xy, dtype=np.float32)
        if pts.ndim != 2 or pts.shape[0] != N_LANDMARKS or pts.shape[1] < 2:
            raise ValueError(f"expected (478, 2 or 3) landmarks, got {pts.shape}")
        if not np.isfinite(pts[:, :2]).all():
            raise ValueError("landmarks contain NaN or inf")
        self._interp.set_tensor(self._in, pts[None, _IDX, :2].copy())
        self._interp.invoke()
        out = self._interp.get_tensor(self._out).reshape(-1)
        assert out.shape[0] == N_BLENDSHAPES
        return out.astype(np.float32, copy=True)

    def batch(self, landmarks_xy: np.ndarray) -> np.ndarray:
        return np.stack([self(lm) for lm in landmarks_xy]) if len(landmarks_xy) else np.zeros((0, N_BLENDSHAPES), np.float32)
