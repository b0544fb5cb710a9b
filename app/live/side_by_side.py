"""The side-by-side video: the person | the twin, with their leading blendshapes as bars beneath.

Each bar row names one of the person's leading coefficients and shows the person's value (blue) over
the twin's value for the same coefficient (orange), so mimicry reads at a glance.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facetwin.expression import ACTIVE_BLENDSHAPES, BLENDSHAPE_NAMES

HEIGHT = 360
LEADING = 4
ROW_H = 26
PERSON_RGB = (70, 140, 255)
TWIN_RGB = (255, 150, 40)


class SideBySideError(RuntimeError):
    """The video cannot be written (no encoder, unwritable path)."""


def leading(person: np.ndarray | None, twin: np.ndarray | None, k: int = LEADING) -> list[int]:
    """The k largest active coefficients of the person (of the twin when there is no face)."""
    ref = person if person is not None else twin
    if ref is None:
        return []
    return sorted(ACTIVE_BLENDSHAPES, key=lambda i: -float(ref[i]))[:k]


def _fit_height(rgb: np.ndarray, height: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    width = max(2, int(round(w * height / h)) // 2 * 2)  # even: H.264/MPEG-4 encoders want it
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def compose(person_rgb: np.ndarray, twin_rgb: np.ndarray | None, person_bs: np.ndarray | None,
            twin_bs: np.ndarray | None, *, height: int = HEIGHT, k: int = LEADING, caption: str = "") -> np.ndarray:
    """One RGB frame: both views at ``height`` px side by side, bars for ``k`` coefficients below."""
    left = _fit_height(person_rgb, height)
    right = _fit_height(twin_rgb, height) if twin_rgb is not None else np.zeros((height, height, 3), np.uint8)
    top = np.concatenate([left, right], axis=1)
    panel = np.full((ROW_H * k + 12, top.shape[1], 3), 24, np.uint8)
    bar_x, bar_w = 190, top.shape[1] - 190 - 60
    for row, i in enumerate(leading(person_bs, twin_bs, k)):
        y = 6 + row * ROW_H
        cv2.putText(panel, BLENDSHAPE_NAMES[i], (8, y + 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1, cv2.LINE_AA)
        for j, (values, colour) in enumerate(((person_bs, PERSON_RGB), (twin_bs, TWIN_RGB))):
            if values is None:
                continue
            v = float(np.clip(values[i], 0.0, 1.0))
            y0 = y + 2 + j * 11
            cv2.rectangle(panel, (bar_x, y0), (bar_x + int(bar_w * v), y0 + 9), colour, -1)
            cv2.putText(panel, f"{v:.2f}", (bar_x + bar_w + 6, y0 + 9), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1,
                        cv2.LINE_AA)
    cv2.putText(top, "person", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, PERSON_RGB, 1, cv2.LINE_AA)
    cv2.putText(top, "twin", (left.shape[1] + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, TWIN_RGB, 1, cv2.LINE_AA)
    if caption:
        cv2.putText(top, caption, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([top, panel], axis=0)


class SideBySideWriter:
    """An mp4 (MPEG-4 Part 2, which every OpenCV build can encode) sized by its first frame."""

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise SideBySideError(f"--out {self.path}: the side-by-side video is written as .mp4; name it *.mp4")
        if not self.path.parent.exists():
            raise SideBySideError(f"--out {self.path}: folder {self.path.parent} does not exist")
        self.fps = fps
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None

    def write(self, rgb: np.ndarray, repeat: int = 1) -> None:
        """Append ``rgb``; ``repeat`` > 1 fills the slots of frames skipped in real time, so the video keeps the source's clock."""
        if self._writer is None:
            h, w = rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise SideBySideError(f"cannot write {self.path}: OpenCV has no MPEG-4 encoder or the path is unwritable")
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        for _ in range(max(1, repeat)):
            self._writer.write(bgr)
            self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
