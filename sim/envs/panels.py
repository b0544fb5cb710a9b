"""Pictures for `render()`: the target beside the twin, and a bar chart when the target has no face image."""

from __future__ import annotations

import cv2
import numpy as np

from facetwin.expression import ACTIVE_BLENDSHAPES, N_BLENDSHAPES
from facetwin.sim.envs.observation import HEAD_SCALE_DEG

BACKGROUND = (24, 24, 28)
BAR = (236, 170, 120)
HEAD_BAR = (120, 190, 236)


def fit(image: np.ndarray, size: int) -> np.ndarray:
    """A square image resized to (size, size, 3) uint8."""
    if image.shape[:2] == (size, size):
        return image
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR)


def expression_bars(vector: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3): one bar per active blendshape (height = coefficient), then head yaw/pitch/roll
    (signed about the middle, full height = HEAD_SCALE_DEG)."""
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = BACKGROUND
    values = np.asarray(vector, np.float64)
    n = len(ACTIVE_BLENDSHAPES) + 3
    edges = np.linspace(0, size, n + 1).astype(int)
    for k, i in enumerate(ACTIVE_BLENDSHAPES):
        top = int(round(size * (1.0 - np.clip(values[i], 0.0, 1.0))))
        img[top:, edges[k] : max(edges[k + 1] - 1, edges[k] + 1)] = BAR
    mid = size // 2
    for j in range(3):
        k = len(ACTIVE_BLENDSHAPES) + j
        h = int(round(mid * np.clip(values[N_BLENDSHAPES + j] / HEAD_SCALE_DEG, -1.0, 1.0)))
        lo, hi = sorted((mid, mid - h))
        img[lo : max(hi, lo + 1), edges[k] : max(edges[k + 1] - 1, edges[k] + 1)] = HEAD_BAR
    return img


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.concatenate([left, right], axis=1)
