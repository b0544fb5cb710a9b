"""Where frames come from: image files, folders of images, video files and webcams.

``open_source(spec)`` turns a command-line string into a ``FrameSource`` that yields RGB ``Frame``s.
Everything unreadable fails early with a ``PerceptionError`` naming the file and what is accepted.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from facetwin.perception.errors import PerceptionError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".flv", ".webm", ".mpg", ".mpeg", ".wmv")
WEBCAM_PREFIX = "webcam:"
ACCEPTED = (
    f"an image ({', '.join(IMAGE_SUFFIXES)}), a folder of images, "
    f"a video ({', '.join(VIDEO_SUFFIXES)}) or a camera as '{WEBCAM_PREFIX}N'"
)
# Some containers report no frame rate; 30 fps is the common camera default.
FALLBACK_FPS = 30.0


@dataclass
class Frame:
    rgb: np.ndarray  # (H, W, 3) uint8, RGB
    timestamp: float  # seconds from the start of the source; 0.0 for still images
    index: int  # position in the source
    path: str  # the image file, the video file, or "webcam:N"


def read_image(path: str | Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; a ``PerceptionError`` if it cannot be read or decoded."""
    path = Path(path)
    try:
        # imdecode over bytes (not imread) so non-ASCII paths work and "missing" differs from "corrupt".
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise PerceptionError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise PerceptionError(
            f"{path} is not a readable image (corrupt or not {', '.join(IMAGE_SUFFIXES)}); "
            "re-export it as JPEG or PNG"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class FrameSource:
    """An iterable of ``Frame``s; a context manager that releases cameras and video files."""

    kind: str  # "image" (still images: frames are independent) | "video" | "webcam"
    spec: str

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageSource(FrameSource):
    kind = "image"

    def __init__(self, paths: list[Path], spec: str):
        self.paths, self.spec = paths, spec

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Frame]:
        for i, p in enumerate(self.paths):
            yield Frame(read_image(p), 0.0, i, str(p))


class _CaptureSource(FrameSource):
    """Frames from an OpenCV capture (video file or camera)."""

    def __init__(self, capture: cv2.VideoCapture, spec: str):
        self._cap, self.spec = capture, spec
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if np.isfinite(fps) and fps > 0 else FALLBACK_FPS

    def _read(self) -> np.ndarray | None:
        ok, bgr = self._cap.read()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok and bgr is not None else None

    def close(self) -> None:
        self._cap.release()


class VideoSource(_CaptureSource):
    kind = "video"

    def __init__(self, path: Path):
        cap = cv2.VideoCapture(str(path))
        super().__init__(cap, str(path))
        self.path = path
        self._first = self._read() if cap.isOpened() else None
        if self._first is None:
            cap.release()
            raise PerceptionError(
                f"{path} is not a readable video (corrupt, empty or an unsupported codec); "
                f"accepted: {', '.join(VIDEO_SUFFIXES)} that FFmpeg can decode"
            )
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = n if n > 0 else None

    def __iter__(self) -> Iterator[Frame]:
        if self._first is None:
            raise PerceptionError(f"{self.path} can be iterated once; open_source() it again")
        rgb, i = self._first, 0
        self._first = None
        while rgb is not None:
            # Frame index / fps, not CAP_PROP_POS_MSEC: some containers (FLV) report it unreliably.
            yield Frame(rgb, i / self.fps, i, self.spec)
            rgb, i = self._read(), i + 1


class WebcamSource(_CaptureSource):
    kind = "webcam"

    def __init__(self, device: int):
        cap = cv2.VideoCapture(device)
        if not cap.isOpened():
            cap.release()
            raise PerceptionError(
                f"{WEBCAM_PREFIX}{device}: no camera could be opened at index {device}; "
                "check the device is connected and free (try webcam:0, webcam:1, ...)"
            )
        super().__init__(cap, f"{WEBCAM_PREFIX}{device}")

    def __iter__(self) -> Iterator[Frame]:
        start, i = time.monotonic(), 0
        while (rgb := self._read()) is not None:
            yield Frame(rgb, time.monotonic() - start, i, self.spec)
            i += 1


def open_source(spec: str | Path) -> FrameSource:
    """A ``FrameSource`` for an image, a folder of images, a video file or ``webcam:N``."""
    text = str(spec)
    if text.startswith(WEBCAM_PREFIX):
        if not re.fullmatch(r"\d+", text[len(WEBCAM_PREFIX):]):
            raise PerceptionError(f"{text!r}: a camera is given as '{WEBCAM_PREFIX}N' with N = 0, 1, ...")
        return WebcamSource(int(text[len(WEBCAM_PREFIX):]))
    path = Path(text).expanduser()
    if not path.exists():
        raise PerceptionError(f"{path} does not exist; expected {ACCEPTED}")
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise PerceptionError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return ImageSource(images, text)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        read_image(path)  # fail now, not halfway through a run
        return ImageSource([path], text)
    if suffix in VIDEO_SUFFIXES:
        return VideoSource(path)
    raise PerceptionError(f"{path}: unknown kind of source {suffix or '(no suffix)'!r}; expected {ACCEPTED}")
