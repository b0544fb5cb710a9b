"""The bundle's 478-landmark model on rotated crops, batched: crops -> normalised frame landmarks.

As face_landmarks_detector_graph.cc runs it: the crop warped to 256x256 from the uint8 frame with a
replicated border, scaled to [0, 1]; the network's 478 x, y, z in crop pixels; x, y rotated and
scaled back into the frame (LandmarkProjectionCalculator) and z scaled like x, all normalised by the
frame's width and height as MediaPipe returns them; the presence logit through a sigmoid.
"""

from __future__ import annotations

import torch
from torch import nn

from facetwin.perception.torch_landmarker import constants as C
from facetwin.perception.torch_landmarker.crops import Crops, array_module
from facetwin.perception.torch_landmarker.tflite_graph import TfliteGraph
from facetwin.perception.torch_landmarker.warp import warp


class LandmarkModel(nn.Module):
    def __init__(self, tflite: bytes):
        super().__init__()
        self.graph = TfliteGraph(tflite, label=C.LANDMARKS_MEMBER)
        if self.graph.input_shape() != (1, C.LANDMARKS_SIZE, C.LANDMARKS_SIZE, 3):
            raise ValueError(f"{C.LANDMARKS_MEMBER} takes {self.graph.input_shape()}, expected "
                             f"{C.LANDMARKS_SIZE}x{C.LANDMARKS_SIZE} RGB")

    def forward(self, frames: torch.Tensor, which: torch.Tensor, crops: Crops) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, H, W, 3) uint8; which (N,) frame of each crop -> landmarks (N, 478, 3), presence (N,)."""
        _, height, width, _ = frames.shape
        pixels = warp(frames, which, crops, C.LANDMARKS_SIZE, border="replicate")
        low, high = C.LANDMARKS_RANGE
        raw, presence_logit = self.graph(pixels * ((high - low) / 255.0) + low)[:2]
        return to_frame(raw, crops, width, height), torch.sigmoid(presence_logit.reshape(-1))


def to_frame(raw, crops: Crops, width: int, height: int):
    """The network's (N, 1434) x, y, z in crop pixels -> (N, 478, 3) normalised frame landmarks
    (LandmarkProjectionCalculator). A torch tensor or a NumPy array (``facetwin.perception.litert_landmarker``)."""
    xp = array_module(raw)
    local = raw.reshape(-1, C.NUM_LANDMARKS, 3) / C.LANDMARKS_SIZE  # crop-normalised x, y, z
    if xp is torch:
        crops = crops.to(local.device)
    xy = crops.source_points(local[..., 0], local[..., 1])  # frame pixels
    # "Z scaled as X": by the length, in normalised frame units, of the crop's rotated unit x axis
    # (LandmarkProjectionCalculator's CalculateZScale), which a non-square frame stretches
    z_scale = crops.size[:, 0] * xp.hypot(xp.cos(crops.rotation) / width, xp.sin(crops.rotation) / height)
    z = local[..., 2] * z_scale[:, None]
    return xp.stack([xy[..., 0] / width, xy[..., 1] / height, z], axis=-1)
