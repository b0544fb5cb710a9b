"""Rotated crops of uint8 frames, sampled as MediaPipe's CPU path samples them, for a batch at once.

MediaPipe warps the uint8 frame with cv::warpPerspective (bilinear) and only then converts to the
network's float range. OpenCV's bilinear warp on uint8 is fixed point: source positions are rounded
to 1/32 pixel, the weights are whole multiples of 2**-10 and the sum is rounded half up to uint8.
Here the positions are rounded the same way and torch's bilinear ``grid_sample`` does the sum in
float64, where every term is exact; so the crops are OpenCV's to the bit, batched and on any device.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from facetwin.perception.torch_landmarker.constants import WARP_SUBPIXELS
from facetwin.perception.torch_landmarker.crops import Crops

BORDERS = {"zero": "zeros", "replicate": "border"}  # MediaPipe's name -> grid_sample's padding mode
# below the 2**-10 step of the exact sums, above float64's rounding of the grid: ties round up, as OpenCV's
_HALF_UP = 0.5 + 1e-6


def warp(images: torch.Tensor, which: torch.Tensor, crops: Crops, size: int, border: str) -> torch.Tensor:
    """images (B, H, W, 3) uint8; which (N,) the frame of each crop -> (N, size, size, 3) float32 in [0, 255].

    border: "zero" (the detector's letterbox) or "replicate" (the landmark model's crop).
    """
    if border not in BORDERS:
        raise ValueError(f"border must be one of {tuple(BORDERS)}, got {border!r}")
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected (B, H, W, 3) uint8 frames, got {tuple(images.shape)} {images.dtype}")
    device = images.device
    _, height, width, _ = images.shape
    steps = torch.arange(size, device=device, dtype=torch.float32) / size
    src = crops.to(device).source_points(steps[None, None, :], steps[None, :, None])  # (N, size, size, 2) pixels
    src = torch.round(src * WARP_SUBPIXELS).to(torch.float64) / WARP_SUBPIXELS
    # grid_sample's coordinates (align_corners=False): pixel i's centre sits at (2i + 1) / extent - 1
    grid = torch.stack([(2 * src[..., 0] + 1) / width - 1, (2 * src[..., 1] + 1) / height - 1], dim=-1)
    frames = images[which.to(device).long()].permute(0, 3, 1, 2).to(torch.float64)
    out = F.grid_sample(frames, grid, mode="bilinear", padding_mode=BORDERS[border], align_corners=False)
    return torch.floor(out + _HALF_UP).permute(0, 2, 3, 1).to(torch.float32)
