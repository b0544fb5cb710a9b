"""MediaPipe's blendshape network as a differentiable torch module, read from the bundle's own weights.

`face_blendshapes.tflite` (an MLP-Mixer over the 146 input landmarks) is the last stage of every
read-out in facetwin. Running it in torch makes that stage differentiable and batched: a forward
model can predict landmarks (smooth, local functions of the servos) and let the real network turn
them into coefficients, instead of learning the network's nonlinearity again from data.

The graph is executed op by op as the flatbuffer describes it, by the same executor that runs the
landmarker's other two networks (`facetwin.perception.torch_landmarker.tflite_graph`); the graph's
batch of one becomes a batch of B. `tests/test_blendshape_torch.py` holds it to LiteRT's outputs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from facetwin import landmarker_bundle
from facetwin.expression import BLENDSHAPE_INPUT_LANDMARKS, N_BLENDSHAPES
from facetwin.perception.torch_landmarker.tflite_graph import TfliteGraph, UnsupportedGraph

__all__ = ["TorchBlendshapes", "UnsupportedGraph"]


class TorchBlendshapes(nn.Module):
    """(B, 146, 2) pixel landmarks (the blendshape subset) -> (B, 52) coefficients, like LiteRT's run."""

    def __init__(self, tflite: bytes):
        super().__init__()
        self.graph = TfliteGraph(tflite, label=landmarker_bundle.BLENDSHAPES_MEMBER)

    @classmethod
    def from_bundle(cls, bundle: str | Path | None = None) -> "TorchBlendshapes":
        path = landmarker_bundle.resolve(bundle)
        return cls(landmarker_bundle.read_member(path, landmarker_bundle.BLENDSHAPES_MEMBER))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """points: (B, 146, 2) pixel x, y of BLENDSHAPE_INPUT_LANDMARKS (y down). Returns (B, 52)."""
        if points.ndim != 3 or points.shape[1:] != (len(BLENDSHAPE_INPUT_LANDMARKS), 2):
            raise ValueError(f"expected (B, {len(BLENDSHAPE_INPUT_LANDMARKS)}, 2) landmarks, got {tuple(points.shape)}")
        (out,) = self.graph(points)
        return out.reshape(points.shape[0], N_BLENDSHAPES)

    def from_landmarks(self, landmarks: torch.Tensor) -> torch.Tensor:
        """(B, 478, >=2) landmarks -> (B, 52), picking the network's subset."""
        idx = torch.as_tensor(BLENDSHAPE_INPUT_LANDMARKS, device=landmarks.device)
        return self(landmarks[:, idx, :2])
