"""Contact sheets: the twin in several commands, labelled, on one image."""

from __future__ import annotations

import cv2
import numpy as np


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    scale = max(0.4, image.shape[0] / 512)
    cv2.putText(out, text, (8, int(24 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (20, 20, 20), 2, cv2.LINE_AA)
    return out


def grid(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * h, columns * w, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] = tile
    return sheet


def pose_sheet(twin, commands: dict[str, np.ndarray], size: int = 256, columns: int = 6) -> np.ndarray:
    tiles = []
    for name, command in commands.items():
        twin.reset()
        twin.apply(command, readout=False)
        tiles.append(label(twin.render(size), name))
    twin.reset()
    return grid(tiles, columns)
