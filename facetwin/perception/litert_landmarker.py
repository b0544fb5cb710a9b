"""MediaPipe's Face Landmarker (IMAGE mode) as a lean CPU pipeline: the bundle's networks on LiteRT.

The same three networks MediaPipe's graph runs (detector, 478 landmarks, 52 blendshapes), each on
LiteRT's interpreter with XNNPACK on one thread, and between them MediaPipe's crops with the
torch landmarker's own pieces (`facetwin.perception.torch_landmarker`: constants, crops, detector
decoding and suppression, landmark projection, head pose, result type), so the two engines share
every formula. Only the warp is OpenCV's here: `cv2.remap` with maps converted to fixed point
(`cv2.convertMaps`, CV_16SC2) is OpenCV's fixed-point bilinear path, the arithmetic MediaPipe's
`cv::warpPerspective` does on uint8 frames (positions rounded to 1/32 pixel), which
`torch_landmarker.warp` reproduces.

``detect`` reads frames as IMAGE mode does (detector, then landmarks from the detection's crop);
``track`` skips the detector and crops where known landmarks put the face (MediaPipe's tracking
rect): for the twin, its own projected landmarks. ``read_crops`` takes those crops already drawn at the
landmark network's size by a renderer (``sampled_regions`` says which square of the frame each one shows),
so no frame is drawn whole and no warp runs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facetwin import landmarker_bundle
from facetwin.blendshape_model import BlendshapeModel
from facetwin.perception.face_perceiver import as_rgb_frame
from facetwin.perception.errors import PerceptionError
from facetwin.perception.torch_landmarker import constants as C
from facetwin.perception.torch_landmarker import crops as crop_sources
from facetwin.perception.torch_landmarker.crops import Crops
from facetwin.perception.torch_landmarker.detector import decode
from facetwin.perception.torch_landmarker.geometry import canonical_face
from facetwin.perception.torch_landmarker.landmarker import LandmarkerResult, pick_faces, tracking_landmarks
from facetwin.perception.torch_landmarker.landmarks import to_frame

BORDERS = {"zero": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}  # MediaPipe's name -> OpenCV's


def warp(frame: np.ndarray, crops: Crops, size: int, border: str) -> np.ndarray:
    """One (H, W, 3) uint8 frame and N rotated crops of it -> (N, size, size, 3) uint8, as MediaPipe samples them.

    The source position of each output pixel is the torch warp's (``Crops.source_points``, here on NumPy);
    OpenCV rounds it to 1/32 pixel in ``convertMaps`` and sums the four neighbours in fixed point in ``remap``.
    """
    if border not in BORDERS:
        raise ValueError(f"border must be one of {tuple(BORDERS)}, got {border!r}")
    steps = np.arange(size, dtype=np.float32) / size
    grids = crops.source_points(steps[None, None, :], steps[None, :, None])  # (N, size, size, 2) pixels
    out = np.empty((len(crops), size, size, 3), np.uint8)
    for k, grid in enumerate(grids):
        fixed, fraction = cv2.convertMaps(grid.astype(np.float32, copy=False), None, cv2.CV_16SC2)
        cv2.remap(frame, fixed, fraction, cv2.INTER_LINEAR, dst=out[k], borderMode=BORDERS[border], borderValue=0)
    return out


def sampled_regions(crops: Crops, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The squares of the frame (centres (N, 2), sides (N,), rotations (N,), pixel (x, y)'s centre at (x, y))
    whose size x size pixel centres are the points ``warp`` samples for these square crops.

    The warp samples output pixel i at crop coordinate i / size (``Crops.source_points``), not at its centre
    (i + 0.5) / size, so the square is the crop moved back by half an output pixel along both of its axes.
    """
    side = np.asarray(crops.size, np.float64)
    if not np.allclose(side[:, 0], side[:, 1]):
        raise ValueError("sampled_regions takes square crops (MediaPipe's landmark crops are square)")
    rotation = np.asarray(crops.rotation, np.float64)
    back = -0.5 * side[:, 0] / size
    cos, sin = np.cos(rotation), np.sin(rotation)
    centers = np.asarray(crops.center, np.float64) + np.stack([cos * back - sin * back, sin * back + cos * back], axis=1)
    return centers, side[:, 0].copy(), rotation


class _Network:
    """One of the bundle's networks on a one-thread LiteRT interpreter: uint8 crops in, outputs as arrays."""

    def __init__(self, bundle: Path, member: str, size: int, value_range: tuple[float, float]):
        from ai_edge_litert.interpreter import Interpreter

        self._interp = Interpreter(model_content=landmarker_bundle.read_member(bundle, member), num_threads=1)
        self._interp.allocate_tensors()
        (inp,) = self._interp.get_input_details()
        if tuple(inp["shape"]) != (1, size, size, 3):
            raise landmarker_bundle.LandmarkerModelError(
                f"{bundle}: {member} takes {tuple(inp['shape'])}, expected (1, {size}, {size}, 3); "
                "use MediaPipe's face_landmarker.task")
        self._input = self._interp.tensor(inp["index"])
        self._outputs = [d["index"] for d in self._interp.get_output_details()]  # in the graph's output order
        low, high = value_range
        self._scale, self._low = np.float32((high - low) / 255.0), np.float32(low)

    def __call__(self, crop: np.ndarray) -> list[np.ndarray]:
        pixels = self._input()[0]
        np.multiply(crop, self._scale, out=pixels)
        pixels += self._low
        del pixels  # the interpreter refuses to run while a view of its memory is alive
        self._interp.invoke()
        return [self._interp.get_tensor(i)[0].copy() for i in self._outputs]


class LiteRTFaceLandmarker:
    """The bundle's three networks on LiteRT with MediaPipe's IMAGE-mode crops between them, one frame at a time.

    bundle_path: face_landmarker.task (default: $FACETWIN_FACE_LANDMARKER or the user cache). max_faces:
    faces the detector keeps per frame; the largest one found is reported. Results are the torch
    landmarker's `LandmarkerResult` (``.expression()`` gives the `Expression` FacePerceiver would).
    One instance per thread or process: the interpreters are not thread-safe.
    """

    def __init__(self, bundle_path: str | Path | None = None, *, max_faces: int = 1,
                 min_detection_confidence: float = C.MIN_DETECTION_CONFIDENCE,
                 min_presence_confidence: float = C.MIN_PRESENCE_CONFIDENCE):
        if max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        self.bundle = landmarker_bundle.resolve(bundle_path)
        self._detector = _Network(self.bundle, C.DETECTOR_MEMBER, C.DETECTOR_SIZE, C.DETECTOR_RANGE)
        self._landmarks = _Network(self.bundle, C.LANDMARKS_MEMBER, C.LANDMARKS_SIZE, C.LANDMARKS_RANGE)
        self._blendshapes = BlendshapeModel(self.bundle)
        self._face = canonical_face(self.bundle)
        self.max_faces = max_faces
        self.min_detection_confidence, self.min_presence_confidence = min_detection_confidence, min_presence_confidence

    def detect(self, images) -> list[LandmarkerResult]:
        """Frames -> one result per frame. images: (B, H, W, 3) uint8, or a sequence of (H, W, 3) uint8
        frames of any sizes."""
        results = []
        for frame in _frames(images):
            height, width, _ = frame.shape
            (pixels,) = warp(frame, crop_sources.letterbox(1, width, height), C.DETECTOR_SIZE, "zero")
            raw, logits = self._detector(pixels)
            (faces,) = decode(raw[None], logits[None], width, height, max_faces=self.max_faces,
                              min_confidence=self.min_detection_confidence)
            crops = None
            if faces:
                crops = crop_sources.from_detections(np.stack([f.box for f in faces]),
                                                     np.stack([f.keypoints for f in faces]), width, height)
            results.append(self._read(frame, crops))
        return results

    def track(self, images, landmarks) -> list[LandmarkerResult]:
        """Frames whose face's place is known: each crop is MediaPipe's tracking rect around the frame's
        known landmarks and the detector is skipped. landmarks: per frame, a result with a face or
        (478 or 468, >=2) landmarks normalised by the frame's width and height."""
        frames = _frames(images)
        if len(landmarks) != len(frames):
            raise ValueError(f"track needs the landmarks of every frame: {len(frames)} frames, {len(landmarks)} landmark sets")
        results = []
        for k, frame in enumerate(frames):
            height, width, _ = frame.shape
            known = tracking_landmarks(k, landmarks[k])[None]
            results.append(self._read(frame, crop_sources.from_landmarks(known, width, height)))
        return results

    def tracking_crops(self, landmarks, width: int, height: int) -> Crops:
        """MediaPipe's tracking rect around each frame's known face: per frame a result with a face or (478 or
        468, >=2) landmarks normalised by the width x height frame -> one crop per frame."""
        known = np.stack([tracking_landmarks(k, p) for k, p in enumerate(landmarks)])
        return crop_sources.from_landmarks(known, width, height)

    def read_crops(self, pixels: np.ndarray, crops: Crops, width: int, height: int) -> list[LandmarkerResult]:
        """Each frame's face crop already drawn at the landmark network's input size: pixels (N, 256, 256, 3)
        uint8, crop k showing ``sampled_regions(crops, 256)[k]`` of a width x height frame -> one result per frame."""
        size = C.LANDMARKS_SIZE
        if pixels.ndim != 4 or pixels.shape[1:] != (size, size, 3) or pixels.dtype != np.uint8:
            raise PerceptionError(f"read_crops takes (N, {size}, {size}, 3) uint8 crops, got {pixels.shape} {pixels.dtype}")
        if len(pixels) != len(crops):
            raise ValueError(f"read_crops needs one crop per image: {len(pixels)} images, {len(crops)} crops")
        return [self._read_crops(pixels[k : k + 1], crops[k : k + 1], width, height) for k in range(len(pixels))]

    def _read(self, frame: np.ndarray, crops: Crops | None) -> LandmarkerResult:
        """The second half for one frame: its face crops -> landmarks, presence, coefficients and pose."""
        height, width, _ = frame.shape
        if crops is None:
            return LandmarkerResult(False, (width, height))
        return self._read_crops(warp(frame, crops, C.LANDMARKS_SIZE, "replicate"), crops, width, height)

    def _read_crops(self, pixels: np.ndarray, crops: Crops, width: int, height: int) -> LandmarkerResult:
        out = [LandmarkerResult(False, (width, height))]
        read = [self._landmarks(p) for p in pixels]
        landmarks = to_frame(np.stack([r[0].reshape(-1) for r in read]), crops, width, height)
        presence = 1.0 / (1.0 + np.exp(-np.array([float(r[1].reshape(-1)[0]) for r in read])))
        coeffs = self._blendshapes.batch(landmarks[..., :2] * np.array([width, height], np.float32))
        pick_faces(out, [0] * len(read), landmarks, presence, coeffs, crops, self.min_presence_confidence, self._face)
        return out[0]

    def close(self) -> None:
        pass  # the interpreters free their memory when collected


def _frames(images) -> list[np.ndarray]:
    if isinstance(images, np.ndarray) and images.ndim == 3:
        raise PerceptionError("expected a batch of frames (B, H, W, 3); wrap a single frame as frame[None]")
    return [as_rgb_frame(frame) for frame in images]
