"""Human faces read once from images and videos, kept on disk so every env (and every worker) reuses them.

A clip is one file's frames: an image gives one frame, a video all of its frames (tracked, One-Euro
smoothed). Frames where no face was found take the nearest found frame's expression, so a video stays a
trajectory on the video's own clock. Each frame also keeps a small face crop for `render()`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facetwin import landmarker_bundle
from facetwin.expression import EXPRESSION_DIM
from facetwin.perception import FacePerceiver, OneEuroConfig, PerceptionError, open_source
from facetwin.perception.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES

THUMB = 160  # pixels per side of the stored face crops
CROP_MARGIN = 1.6  # crop side / the landmarks' larger extent
CACHE_VERSION = 1
_MEMO: dict[str, "PerceivedClip"] = {}


@dataclass
class PerceivedClip:
    """Expressions perceived in one image or video file."""

    path: str
    expressions: np.ndarray  # (T, 55) float32, head in degrees
    face_found: np.ndarray  # (T,) bool; False frames carry the nearest found frame's expression
    thumbnails: np.ndarray  # (T, THUMB, THUMB, 3) uint8 face crops
    fps: float  # 0.0 for a still image

    def __len__(self) -> int:
        return len(self.expressions)


def default_cache_dir() -> Path:
    """$FACETWIN_CACHE_DIR, else facetwin's user cache (where the landmarker bundle is kept too)."""
    if os.environ.get("FACETWIN_CACHE_DIR"):
        return Path(os.environ["FACETWIN_CACHE_DIR"])
    return landmarker_bundle.cache_dir()


def media_files(path: str | Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES + VIDEO_SUFFIXES) -> list[Path]:
    """`path` itself if it is a file, else the files in the folder with one of `suffixes`, sorted."""
    p = Path(path).expanduser()
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"{p} does not exist; give a folder of face images/videos or one such file")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in suffixes)
    if not files:
        raise FileNotFoundError(f"{p} holds no files ending in {', '.join(suffixes)}")
    return files


def perceive_file(path: str | Path, bundle: str | Path | None = None, cache_dir: str | Path | None = None) -> PerceivedClip:
    """The clip of `path`, from the in-process memo, the disk cache, or MediaPipe (then cached)."""
    path = Path(path).expanduser().resolve()
    bundle = landmarker_bundle.resolve(bundle)
    key = _cache_key(path, bundle)
    if key in _MEMO:
        return _MEMO[key]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    file = cache / "perceived" / f"{path.stem}-{key[:16]}.npz"
    clip = _read(file, path) if file.is_file() else None
    if clip is None:
        clip = _perceive(path, bundle)
        _write(file, clip)
    _MEMO[key] = clip
    return clip


def _cache_key(path: Path, bundle: Path) -> str:
    st = path.stat()
    text = f"{CACHE_VERSION}|{path}|{st.st_size}|{st.st_mtime_ns}|{bundle}|{bundle.stat().st_size}"
    return hashlib.sha256(text.encode()).hexdigest()


def _perceive(path: Path, bundle: Path) -> PerceivedClip:
    with open_source(path) as source:
        video = source.kind == "video"
        smoothing = OneEuroConfig() if video else None
        exprs, found, thumbs = [], [], []
        with FacePerceiver(bundle, mode="video" if video else "image", smoothing=smoothing) as perceiver:
            for frame in source:
                e = perceiver.perceive(frame.rgb, frame.timestamp)
                exprs.append(e.vector)
                found.append(e.face_found)
                thumbs.append(face_crop(frame.rgb, e.landmarks if e.face_found else None, THUMB))
        fps = float(source.fps) if video else 0.0
    found_arr = np.array(found, bool)
    if not found_arr.any():
        raise PerceptionError(f"no face found in {path}; remove it from the target folder or use a clearer image")
    return PerceivedClip(str(path), _fill_missing(np.stack(exprs), found_arr), found_arr, np.stack(thumbs), fps)


def _fill_missing(exprs: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Each frame without a face takes the expression of the nearest frame with one."""
    idx = np.flatnonzero(found)
    nearest = idx[np.abs(np.arange(len(exprs))[:, None] - idx[None, :]).argmin(axis=1)]
    return exprs[nearest].astype(np.float32)


def face_crop(rgb: np.ndarray, landmarks: np.ndarray | None, size: int) -> np.ndarray:
    """A square (size, size, 3) crop around the face's landmarks (the centre square when there are none)."""
    h, w = rgb.shape[:2]
    if landmarks is None:
        cx, cy, side = w / 2, h / 2, min(w, h)
    else:
        lo, hi = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
        (cx, cy), side = (lo + hi) / 2, CROP_MARGIN * float(max(hi - lo))
    half = max(side / 2, 1.0)
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    n = int(round(2 * half))
    pad = max(0, -x0, -y0, x0 + n - w, y0 + n - h)
    img = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad else rgb
    crop = img[y0 + pad : y0 + pad + n, x0 + pad : x0 + pad + n]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def _read(file: Path, path: Path) -> PerceivedClip | None:
    try:
        with np.load(file) as z:
            clip = PerceivedClip(str(path), z["expressions"], z["face_found"], z["thumbnails"], float(z["fps"]))
    except (OSError, KeyError, ValueError):
        return None  # a damaged cache entry is perceived again, not trusted
    return clip if clip.expressions.shape[1:] == (EXPRESSION_DIM,) else None


def _write(file: Path, clip: PerceivedClip) -> None:
    # Written to a private temporary name and renamed, so parallel workers never read half a file.
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, expressions=clip.expressions, face_found=clip.face_found, thumbnails=clip.thumbnails, fps=clip.fps)
    os.replace(tmp, file)
