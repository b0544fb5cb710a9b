"""Pinhole projection matching MuJoCo's camera, so fast-path landmarks land where the renderer draws them."""

from __future__ import annotations

import numpy as np


def project(points: np.ndarray, cam_pos: np.ndarray, cam_mat: np.ndarray, fovy_deg: float, width: int, height: int) -> np.ndarray:
    """World points (N, 3) -> (N, 3): pixel x, pixel y (down), and depth relative to the centroid in pixels.

    The third column mimics MediaPipe's landmark z (smaller = nearer, on the x scale); the blendshape
    model reads only x and y.
    """
    rot = np.asarray(cam_mat).reshape(3, 3)  # columns: camera x (right), y (up), z (backwards)
    local = (np.asarray(points) - cam_pos) @ rot
    depth = -local[:, 2]
    if (depth <= 0).any():
        raise ValueError("a landmark is behind the camera")
    f = 0.5 * height / np.tan(np.radians(fovy_deg) / 2)
    x = 0.5 * width + f * local[:, 0] / depth
    y = 0.5 * height - f * local[:, 1] / depth
    ref = depth.mean()
    z = (depth - ref) * f / ref
    return np.stack([x, y, z], axis=1)
