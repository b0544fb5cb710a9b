"""Skin textures: a painted default in the canonical UV layout, or a face photo.

A photo becomes the skin by using its own detected landmarks as texture coordinates: vertex i of the
skin samples the photo where the person's landmark i is, so the person's features land exactly on the
twin's landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facetwin.sim import face_topology as topo


class TextureError(ValueError):
    """A skin texture could not be made from the given photo."""


@dataclass(frozen=True)
class SkinTexture:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    uvs: np.ndarray  # (468, 2) in [0, 1], v pointing down the image
    source: str = "default"

    def png_bytes(self) -> bytes:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(self.image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise TextureError("could not encode the skin texture as PNG")
        return buf.tobytes()


RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
    148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
HAIRLINE = (162, 21, 54, 103, 67, 109, 10, 338, 297, 332, 284, 251, 389)
HAIRLINE_DEPTH = 0.12  # fraction of the way from the face's top edge to the nose bridge
NOSTRILS = (((98, 240, 64, 48), (327, 460, 294, 278)))


def default_texture(uvs: np.ndarray, size: int = 1024) -> SkinTexture:
    """A painted face in MediaPipe's canonical UV layout: skin, brows, lips, lid lines, nostrils.

    Painted, not photographed, so the project ships no person's likeness; contrast is where a face
    detector looks for it (brows, eye lines, lips, nostrils).
    """
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = (205, 160, 135)
    px = lambda ids: np.round(uvs[list(ids)] * size).astype(np.int32)  # noqa: E731

    # Soft shading towards the face border gives the detector a rounded face.
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [px(FACE_OVAL)], 255)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    shade = np.clip(dist / (0.12 * size), 0, 1)[..., None]
    img = (img * (0.78 + 0.22 * shade)).astype(np.uint8)

    # A hairline along the top of the face: without it the forehead runs on into the skull and the
    # landmark model puts the face's top edge (landmarks 10, 109, 338) well below the skin's own.
    top = px(HAIRLINE).astype(np.float64)
    centre = uvs[168] * size
    inner = top + (centre - top) * HAIRLINE_DEPTH
    cv2.fillPoly(img, [np.round(np.vstack([top, inner[::-1]])).astype(np.int32)], (62, 42, 30), lineType=cv2.LINE_AA)

    cheek = np.zeros_like(img)
    for lm in (50, 280):
        c = tuple(int(v) for v in np.round(uvs[lm] * size))
        cv2.circle(cheek, c, int(0.06 * size), (40, 0, 0), -1)
    img = cv2.subtract(img, cv2.GaussianBlur(cheek, (0, 0), 0.03 * size) // 2)

    cv2.fillPoly(img, [px(LIPS_OUTER)], (165, 75, 75), lineType=cv2.LINE_AA)
    inner = px(topo.LIPS_INNER_UPPER + topo.MOUTH_CORNERS_INNER[1:] + topo.LIPS_INNER_LOWER[::-1] + topo.MOUTH_CORNERS_INNER[:1])
    cv2.polylines(img, [inner], True, (110, 40, 40), max(1, size // 300), cv2.LINE_AA)
    for brow in (RIGHT_BROW, LEFT_BROW):
        cv2.fillPoly(img, [px(brow)], (70, 48, 35), lineType=cv2.LINE_AA)
    for upper, lower in ((topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER), (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER)):
        # A thick lash line: it frames the open eye and is what a closed eye shows.
        cv2.polylines(img, [px(upper)], False, (40, 26, 22), max(3, size // 70), cv2.LINE_AA)
        cv2.polylines(img, [px(lower)], False, (120, 80, 70), max(1, size // 300), cv2.LINE_AA)
    for crease in (topo.RIGHT_LID_CREASE, topo.LEFT_LID_CREASE):
        # The fold above the lid: shading a moulded face has, and what shapes a closed eye's lid.
        cv2.polylines(img, [px(crease)], False, (150, 105, 90), max(2, size // 180), cv2.LINE_AA)
    for ring in NOSTRILS:
        cv2.fillPoly(img, [px(ring)], (95, 55, 50), lineType=cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (0, 0), size / 700)
    return SkinTexture(image=img, uvs=uvs.astype(np.float64), source="default")


def photo_texture(rgb: np.ndarray, landmarks_px: np.ndarray, source: str = "photo") -> SkinTexture:
    """Use a face photo as the skin: its 468 detected landmarks become the texture coordinates."""
    h, w = rgb.shape[:2]
    lm = np.asarray(landmarks_px, dtype=np.float64)[:468, :2]
    uvs = lm / np.array([w, h], dtype=np.float64)
    if not np.isfinite(uvs).all() or (uvs < -0.05).any() or (uvs > 1.05).any():
        raise TextureError(f"{source}: the face is not fully inside the photo; use a photo showing the whole face")
    return SkinTexture(image=np.ascontiguousarray(rgb[..., :3]), uvs=np.clip(uvs, 0, 1), source=source)


def load_texture_image(path: str | Path) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise TextureError(f"texture photo {p} does not exist")
    bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if bgr is None:
        raise TextureError(f"cannot read {p} as an image (expected a JPEG or PNG photo of a face)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def save_texture(texture: SkinTexture, path: str | Path) -> Path:
    """Store a texture as PNG plus its UVs (`<path>.uv.npy`) so `--texture` can reuse it."""
    p = Path(path)
    p.write_bytes(texture.png_bytes())
    np.save(p.with_suffix(".uv.npy"), texture.uvs)
    return p
