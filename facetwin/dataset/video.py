"""MP4 files from RGB frames (OpenCV's VideoWriter, MPEG-4 part 2 `mp4v`: in every OpenCV wheel).

Used for the dataset's optional renders of the twin; also handy for previews.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

CODEC = "mp4v"


class VideoError(RuntimeError):
    """A video could not be written or read."""


class Mp4Writer:
    """Streams (H, W, 3) uint8 RGB frames of one size into an mp4 file."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        h, w = size
        if h % 2 or w % 2:
            raise VideoError(f"video frames must have even height and width for yuv420p, got {h}x{w}")
        self.path = Path(path)
        self.size = (h, w)
        self.frames = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._vw = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*CODEC), float(fps), (w, h))
        if not self._vw.isOpened():
            raise VideoError(f"OpenCV cannot open {self.path} for writing with codec {CODEC!r} (does the suffix say .mp4?)")

    def write(self, rgb: np.ndarray) -> None:
        frame = np.asarray(rgb)
        if frame.shape != (*self.size, 3) or frame.dtype != np.uint8:
            raise VideoError(f"expected a {self.size[0]}x{self.size[1]}x3 uint8 RGB frame, got {frame.shape} {frame.dtype}")
        self._vw.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self._vw is not None:
            self._vw.release()
            self._vw = None

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_mp4(path: str | Path, frames, fps: float) -> Path:
    """Write an iterable of RGB frames (all one size) to `path`; returns the path."""
    it = iter(frames)
    try:
        first = np.asarray(next(it))
    except StopIteration:
        raise VideoError(f"no frames to write to {path}") from None
    with Mp4Writer(path, fps, first.shape[:2]) as vw:
        vw.write(first)
        for f in it:
            vw.write(f)
    return Path(path)


def count_frames(path: str | Path) -> int:
    """Frames in a video file, counted by decoding (container headers can be wrong)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"OpenCV cannot open {path}")
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n
