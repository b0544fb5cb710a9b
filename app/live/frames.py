"""Frames for the live loop, each stamped with when it became available (the start of its latency).

- ``SequentialFrames``: every frame, in order, read when the loop asks (offline processing: nothing is
  dropped, a video runs as fast as the CPU allows).
- ``LatestFrames`` (--realtime): a capture thread keeps only the newest frame, so a slow loop skips
  frames instead of queueing them and latency stays bounded. A video file is paced by its own fps
  (frame k becomes available k / fps seconds after the start), as a camera would deliver it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from facetwin.perception import Frame, FrameSource


@dataclass
class TimedFrame:
    frame: Frame
    arrived: float  # time.perf_counter() when the frame was available to the loop


class SequentialFrames:
    def __init__(self, source: FrameSource):
        self.source = source
        self.read = 0
        self.dropped = 0

    def __iter__(self) -> Iterator[TimedFrame]:
        for frame in self.source:
            self.read += 1
            yield TimedFrame(frame, time.perf_counter())

    def close(self) -> None:
        pass


class LatestFrames:
    """A one-slot mailbox filled by a capture thread; a frame replaced before it was taken is dropped."""

    def __init__(self, source: FrameSource, *, pace: bool | None = None):
        self.source = source
        # Cameras deliver at their own rate; files would be read as fast as they decode.
        self.pace = source.kind != "webcam" if pace is None else pace
        self.fps = float(getattr(source, "fps", 30.0))
        self.read = 0
        self.dropped = 0
        self.error: BaseException | None = None
        self._slot: TimedFrame | None = None
        self._done = False
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._capture, name="mimic-capture", daemon=True)
        self._started = False

    def _capture(self) -> None:
        start = time.perf_counter()
        try:
            for frame in self.source:
                if self._stop.is_set():
                    break
                if self.pace:
                    due = start + frame.index / self.fps
                    if self._stop.wait(max(0.0, due - time.perf_counter())):
                        break
                with self._cond:
                    self.read += 1
                    if self._slot is not None:
                        self.dropped += 1
                    self._slot = TimedFrame(frame, time.perf_counter())
                    self._cond.notify()
        except BaseException as exc:  # surfaced in the loop's thread, not lost in this one
            self.error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify()

    def __iter__(self) -> Iterator[TimedFrame]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            with self._cond:
                while self._slot is None and not self._done:
                    self._cond.wait()
                item, self._slot = self._slot, None
            if item is None:
                if self.error is not None:
                    raise self.error
                return
            yield item

    def close(self) -> None:
        """Stop capturing; the source may be closed only after this (OpenCV reads are not thread-safe)."""
        self._stop.set()
        if self._started:
            self._thread.join(timeout=5.0)
