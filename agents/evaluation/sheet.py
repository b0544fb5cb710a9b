"""A contact sheet: one row per face, human | twin (policy) | twin (oracle), each with its score written on.

Every tile is a square crop around the face's landmarks, so people photographed from afar and the
twin's fixed camera come out at the same scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

TILE = 256  # pixels per square tile
CROP_MARGIN = 0.25  # extra room around the landmarks' bounding box, as a fraction of its larger side
CAPTION_HEIGHT = 22


@dataclass
class SheetTile:
    image: np.ndarray  # (TILE, TILE, 3) uint8 RGB
    caption: str


def crop_face(rgb: np.ndarray, landmarks: np.ndarray | None, size: int = TILE, margin: float = CROP_MARGIN) -> np.ndarray:
    """A (size, size, 3) square crop centred on the landmarks (the whole frame, padded, without them)."""
    h, w = rgb.shape[:2]
    if landmarks is None or len(landmarks) == 0:
        cx, cy, side = w / 2.0, h / 2.0, float(max(w, h))
    else:
        lo, hi = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
        cx, cy = (lo + hi) / 2.0
        side = float(max(hi - lo)) * (1.0 + 2.0 * margin)
    half = max(side / 2.0, 1.0)
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    x1, y1 = int(round(cx + half)), int(round(cy + half))
    # Pad with black where the square leaves the frame, so the face stays centred and undistorted.
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    src = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0)) if pad else rgb
    crop = src[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR)


def captioned(tile: SheetTile) -> np.ndarray:
    img = np.ascontiguousarray(tile.image.copy())
    cv2.rectangle(img, (0, 0), (img.shape[1], CAPTION_HEIGHT), (0, 0, 0), thickness=-1)
    cv2.putText(img, tile.caption, (4, CAPTION_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def sheet_shape(n_rows: int, n_columns: int, tile: int = TILE) -> tuple[int, int]:
    """(height, width) in pixels of a sheet of n_rows x n_columns tiles."""
    return n_rows * tile, n_columns * tile


def compose_sheet(rows: list[list[SheetTile]], tile: int = TILE) -> np.ndarray:
    """Rows of equally many tiles -> one RGB image, row-major."""
    if not rows:
        raise ValueError("a contact sheet needs at least one row (no face was evaluated)")
    n_cols = len(rows[0])
    if any(len(r) != n_cols for r in rows):
        raise ValueError("every row of a contact sheet must have the same number of tiles")
    h, w = sheet_shape(len(rows), n_cols, tile)
    sheet = np.zeros((h, w, 3), np.uint8)
    for i, row in enumerate(rows):
        for j, t in enumerate(row):
            img = t.image if t.image.shape[:2] == (tile, tile) else cv2.resize(t.image, (tile, tile))
            sheet[i * tile : (i + 1) * tile, j * tile : (j + 1) * tile] = captioned(SheetTile(img, t.caption))
    return sheet


def write_sheet(path: str | Path, rows: list[list[SheetTile]], tile: int = TILE) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = compose_sheet(rows, tile)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write the contact sheet to {path} (use a .png path in a writable folder)")
    return path
