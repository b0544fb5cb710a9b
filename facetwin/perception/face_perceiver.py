"""Faces in RGB frames -> ``Expression``s, with MediaPipe's Face Landmarker.

The same perceiver reads a person, the twin's renders and the real robot through a camera, so every
stage of the project scores expressions with one network and one head-angle convention.
"""

from __future__ import annotations

import threading
import time
import weakref
from pathlib import Path

import numpy as np

from facetwin import landmarker_bundle
from facetwin.expression import N_BLENDSHAPES, N_LANDMARKS, Expression, head_angles_deg
from facetwin.perception.errors import PerceptionError
from facetwin.perception.one_euro import OneEuroConfig, OneEuroFilter

MODES = ("image", "video")
SELECTIONS = ("largest", "first")
# Head angles are smoothed in units of this many degrees, so one OneEuroConfig (tuned for
# coefficients spanning about [0, 1]) treats a 30-degree turn like a full smile.
HEAD_SMOOTHING_SCALE_DEG = 30.0


_OPEN: "weakref.WeakSet[FacePerceiver]" = weakref.WeakSet()
_exit_hook_installed = False


def _close_open_perceivers() -> None:
    for perceiver in list(_OPEN):
        perceiver.close()


def _install_exit_hook() -> None:
    """Close forgotten perceivers at exit while MediaPipe can still do it.

    MediaPipe runs every native call on a ThreadPoolExecutor, which Python shuts down at exit before
    ``atexit`` handlers run; its own ``__del__`` then fails during teardown and prints a traceback.
    Hooks registered with ``threading._register_atexit`` run, newest first, before that shutdown.
    """
    global _exit_hook_installed
    if _exit_hook_installed:
        return
    import concurrent.futures.thread  # noqa: F401  (its exit hook must be registered before ours)

    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError
        register(_close_open_perceivers)
    except RuntimeError:
        import atexit

        atexit.register(_close_open_perceivers)
    _exit_hook_installed = True


def as_rgb_frame(rgb: np.ndarray) -> np.ndarray:
    """Check a frame is (H, W, 3) uint8 (an alpha channel is dropped); C-contiguous for MediaPipe."""
    arr = np.asarray(rgb)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise PerceptionError(
            f"a frame must be an (H, W, 3) uint8 RGB array, got {arr.shape} {arr.dtype}; "
            "convert floats with (img * 255).clip(0, 255).astype(np.uint8)"
        )
    return np.ascontiguousarray(arr)


class FacePerceiver:
    """MediaPipe Face Landmarker over RGB frames, one ``Expression`` (one face) per frame.

    mode: "image" treats frames as unrelated photos; "video" tracks a face across frames (MediaPipe's
        VIDEO running mode) and needs increasing timestamps.
    max_faces: how many faces the landmarker looks for; the reported one is chosen by ``select``:
        "largest" (landmark bounding-box area) or "first" (MediaPipe's order).
    smoothing: a One-Euro filter over blendshapes and head angles (video mode only); landmarks stay raw.
    Close it (``close()`` or ``with``) to free the native graph; otherwise it is closed on collection
    or at interpreter exit.
    """

    def __init__(
        self,
        bundle: str | Path | None = None,
        *,
        mode: str = "image",
        max_faces: int = 4,
        select: str = "largest",
        smoothing: OneEuroConfig | None = None,
        min_detection_confidence: float = 0.5,
        min_presence_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if select not in SELECTIONS:
            raise ValueError(f"select must be one of {SELECTIONS}, got {select!r}")
        if max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        if smoothing is not None and mode != "video":
            raise ValueError("smoothing joins consecutive frames: use it with mode='video'")
        from mediapipe.tasks.python import BaseOptions, vision

        self.bundle = landmarker_bundle.resolve(bundle)
        self.mode, self.max_faces, self.select = mode, max_faces, select
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.bundle)),
            running_mode=vision.RunningMode.VIDEO if mode == "video" else vision.RunningMode.IMAGE,
            num_faces=max_faces,
            min_face_detection_confidence=min_detection_confidence,
            min_face_presence_confidence=min_presence_confidence,
            min_tracking_confidence=min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        _install_exit_hook()
        self._landmarker = vision.FaceLandmarker.create_from_options(options)
        # Closed when collected, when close() is called, or by the exit hook above, never by
        # MediaPipe's own __del__ during interpreter teardown (which prints a traceback).
        self._finalizer = weakref.finalize(self, self._landmarker.close)
        self._finalizer.atexit = False
        _OPEN.add(self)
        self._filter = OneEuroFilter(smoothing) if smoothing is not None else None
        self._last_ms = -1
        self._clock_start: float | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self) -> "FacePerceiver":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reset(self) -> None:
        """Forget the smoothing state (call between unrelated clips)."""
        if self._filter is not None:
            self._filter.reset()

    # --- perception --------------------------------------------------------------------------
    def perceive(self, rgb: np.ndarray, timestamp: float | None = None) -> Expression:
        """The chosen face in ``rgb`` as an ``Expression``; ``Expression.empty`` when there is none.

        timestamp: seconds. In video mode it must increase (a repeat is nudged 1 ms forward);
        None there means the wall clock since the first frame.
        """
        if self.closed:
            raise PerceptionError("this FacePerceiver is closed; create a new one")
        import mediapipe as mp

        frame = as_rgb_frame(rgb)
        height, width = frame.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=frame)
        if self.mode == "video":
            if timestamp is None:
                now = time.monotonic()
                self._clock_start = now if self._clock_start is None else self._clock_start
                timestamp = now - self._clock_start
            ms = max(int(round(timestamp * 1000.0)), self._last_ms + 1)
            self._last_ms = ms
            result = self._landmarker.detect_for_video(image, ms)
        else:
            timestamp = 0.0 if timestamp is None else timestamp
            result = self._landmarker.detect(image)

        size = (width, height)
        if not result.face_landmarks:
            self.reset()  # a face that reappears starts a fresh track, not a blend with the old one
            return Expression.empty(float(timestamp), size)

        scale = np.array([width, height, width], dtype=np.float32)
        faces = [
            np.array([(p.x, p.y, p.z) for p in lms], dtype=np.float32) * scale for lms in result.face_landmarks
        ]
        k = int(np.argmax([_bbox_area(f) for f in faces])) if self.select == "largest" else 0
        blendshapes = np.array([c.score for c in result.face_blendshapes[k]], dtype=np.float32)
        matrix = np.asarray(result.facial_transformation_matrixes[k], dtype=np.float64).reshape(4, 4)
        head = head_angles_deg(matrix[:3, :3]).astype(np.float32)
        assert blendshapes.shape == (N_BLENDSHAPES,) and faces[k].shape == (N_LANDMARKS, 3)
        if self._filter is not None:
            blendshapes, head = self._smooth(blendshapes, head, float(timestamp))
        return Expression(
            blendshapes=blendshapes,
            head=head,
            landmarks=faces[k],
            timestamp=float(timestamp),
            face_found=True,
            image_size=size,
            extra={"faces_detected": len(faces), "transformation_matrix": matrix},
        )

    def _smooth(self, blendshapes: np.ndarray, head: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        vec = np.concatenate([blendshapes, head / HEAD_SMOOTHING_SCALE_DEG])
        out = self._filter(vec, t)
        return (
            np.clip(out[:N_BLENDSHAPES], 0.0, 1.0).astype(np.float32),
            (out[N_BLENDSHAPES:] * HEAD_SMOOTHING_SCALE_DEG).astype(np.float32),
        )


def _bbox_area(points: np.ndarray) -> float:
    span = points[:, :2].max(axis=0) - points[:, :2].min(axis=0)
    return float(span[0] * span[1])


def detect_face_landmarks(
    rgb: np.ndarray, *, bundle: str | Path | None = None, perceiver: FacePerceiver | None = None
) -> np.ndarray | None:
    """The 478 landmarks (x, y pixels; z depth in pixel units) of the largest face, or None.

    Pass an image-mode ``perceiver`` to reuse one across calls; otherwise one is opened and closed here.
    """
    if perceiver is not None:
        expr = perceiver.perceive(rgb)
    else:
        with FacePerceiver(bundle, mode="image") as own:
            expr = own.perceive(rgb)
    return expr.landmarks if expr.face_found else None
