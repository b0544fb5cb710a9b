"""MediaPipe's Face Landmarker (IMAGE mode) in torch: detector, 478 landmarks and 52 blendshapes, batched.

``detect`` runs the whole pipeline on a batch of frames; ``track`` skips the detector and crops where
a previous frame's landmarks put the face, as MediaPipe's tracking does. Both return, per frame, what
MediaPipe's landmarker returns for one face: 478 normalised landmarks (x, y in [0, 1] of the frame's
width and height, z on the x scale), the 52 coefficients and whether a face was found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from facetwin import landmarker_bundle
from facetwin.expression import BLENDSHAPE_INPUT_LANDMARKS, N_LANDMARKS, Expression, head_angles_deg
from facetwin.perception.errors import PerceptionError
from facetwin.perception.torch_landmarker import constants as C
from facetwin.perception.torch_landmarker import crops as crop_sources
from facetwin.perception.torch_landmarker.crops import Crops
from facetwin.perception.torch_landmarker.detector import FaceDetector
from facetwin.perception.torch_landmarker.geometry import N_MESH, canonical_face, transformation_matrix
from facetwin.perception.torch_landmarker.landmarks import LandmarkModel

# crops per landmark-model call: bounds the activations a large batch holds at once
CHUNK = {"cpu": 32, "cuda": 256}


@dataclass
class LandmarkerResult:
    """One frame's face, as MediaPipe's landmarker reports it (the largest face where it found several)."""

    face_found: bool
    image_size: tuple[int, int]  # (width, height)
    landmarks: np.ndarray | None = None  # (478, 3) normalised x, y; z on the x scale
    blendshapes: np.ndarray | None = None  # (52,) in BLENDSHAPE_NAMES order
    presence: float = 0.0  # the landmark model's face-presence score
    transformation_matrix: np.ndarray | None = None  # (4, 4) canonical face -> camera, MediaPipe's head pose
    faces_detected: int = 0  # faces found in the frame (the largest is this one)
    crop: Crops | None = field(default=None, repr=False)  # the rotated crop the landmarks came from

    @property
    def head(self) -> np.ndarray:
        """(3,) yaw, pitch, roll in degrees, as ``FacePerceiver`` derives them from the matrix."""
        return head_angles_deg(self.require_face().transformation_matrix[:3, :3]).astype(np.float32)

    def landmarks_px(self) -> np.ndarray:
        """(478, 3) x, y in pixels and z in pixels of the frame's width, as ``Expression.landmarks``."""
        lm = self.require_face().landmarks
        width, height = self.image_size
        return lm * np.array([width, height, width], np.float32)

    def require_face(self) -> "LandmarkerResult":
        if not self.face_found:
            raise PerceptionError(f"no face found in the {self.image_size[0]}x{self.image_size[1]} frame; "
                                  "use a frame where a face is visible, or check result.face_found first")
        return self

    def expression(self, timestamp: float = 0.0) -> Expression:
        """This frame as an ``Expression``, with the fields ``FacePerceiver`` fills (landmarks in pixels)."""
        if not self.face_found:
            return Expression.empty(float(timestamp), self.image_size)
        return Expression(
            blendshapes=self.blendshapes.astype(np.float32),
            head=self.head,
            landmarks=self.landmarks_px(),
            timestamp=float(timestamp),
            face_found=True,
            image_size=self.image_size,
            extra={"faces_detected": self.faces_detected, "transformation_matrix": self.transformation_matrix,
                   "presence": self.presence},
        )


def resolve_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise PerceptionError(f"device {str(device)!r} is not a torch device: use 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PerceptionError(f"device {str(device)!r} was asked for, but this torch ({torch.__version__}) sees no CUDA "
                              "device; use device='cpu' (or --device cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise PerceptionError(f"device {str(device)!r} is not supported: use 'cpu' or 'cuda'")
    return dev


class TorchFaceLandmarker(nn.Module):
    """The bundle's three networks in torch, with MediaPipe's IMAGE-mode crops between them.

    bundle_path: face_landmarker.task (default: $FACETWIN_FACE_LANDMARKER or the user cache).
    device: "cpu" or "cuda"; ``.to(device)`` moves it later. max_faces: faces the detector keeps per
    frame; the largest one found is reported (as ``FacePerceiver(select="largest")``).
    """

    def __init__(self, bundle_path: str | Path | None = None, device: str | torch.device = "cpu", *,
                 max_faces: int = 1, min_detection_confidence: float = C.MIN_DETECTION_CONFIDENCE,
                 min_presence_confidence: float = C.MIN_PRESENCE_CONFIDENCE):
        super().__init__()
        from facetwin.blendshape_torch import TorchBlendshapes

        if max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        dev = resolve_device(device)
        self.bundle = landmarker_bundle.resolve(bundle_path)
        members = {name: landmarker_bundle.read_member(self.bundle, name)
                   for name in (C.DETECTOR_MEMBER, C.LANDMARKS_MEMBER, landmarker_bundle.BLENDSHAPES_MEMBER)}
        self.detector = FaceDetector(members[C.DETECTOR_MEMBER], min_confidence=min_detection_confidence)
        self.landmark_model = LandmarkModel(members[C.LANDMARKS_MEMBER])
        self.blendshapes = TorchBlendshapes(members[landmarker_bundle.BLENDSHAPES_MEMBER])
        self.register_buffer("_subset", torch.as_tensor(BLENDSHAPE_INPUT_LANDMARKS), persistent=False)
        self._face = canonical_face(self.bundle)
        self.max_faces, self.min_presence_confidence = max_faces, min_presence_confidence
        self.eval().to(dev)

    @property
    def device(self) -> torch.device:
        return self._subset.device

    # -- entry points -------------------------------------------------------------------------------
    @torch.inference_mode()
    def detect(self, images) -> list[LandmarkerResult]:
        """A batch of frames -> one result per frame. images: (B, H, W, 3) uint8 (array or tensor), or a
        sequence of (H, W, 3) uint8 frames of any sizes (each size is one batch)."""
        def crops_for(frames: torch.Tensor, _idx: list[int]):
            _, height, width, _ = frames.shape
            detections = self.detector(frames, self.max_faces)
            faces = [f for per_frame in detections for f in per_frame]
            which = [b for b, per_frame in enumerate(detections) for _ in per_frame]
            if not faces:
                return which, None
            boxes = torch.as_tensor(np.stack([f.box for f in faces]), device=self.device)
            keypoints = torch.as_tensor(np.stack([f.keypoints for f in faces]), device=self.device)
            return which, crop_sources.from_detections(boxes, keypoints, width, height)
        return self._run(images, crops_for)

    @torch.inference_mode()
    def track(self, images, previous: Sequence[LandmarkerResult | np.ndarray]) -> list[LandmarkerResult]:
        """Frames whose face's place is known: each crop comes from the frame's previous landmarks
        (MediaPipe's tracking rect) and the detector is skipped. previous: per frame, a result with a
        face or (478, >=2) normalised landmarks."""
        frames = _as_frame_list(images)
        if len(previous) != len(frames):
            raise ValueError(f"track needs one previous result per frame: {len(frames)} frames, {len(previous)} previous")
        prev = [tracking_landmarks(k, p) for k, p in enumerate(previous)]

        def crops_for(batch: torch.Tensor, idx: list[int]):
            _, height, width, _ = batch.shape
            landmarks = torch.as_tensor(np.stack([prev[i] for i in idx]), device=self.device)
            return list(range(len(idx))), crop_sources.from_landmarks(landmarks, width, height)
        return self._run(frames, crops_for)

    # -- the shared second half: crops -> landmarks, presence, blendshapes, pose -----------------------
    def _run(self, images, crops_for) -> list[LandmarkerResult]:
        results: dict[int, LandmarkerResult] = {}
        for idx, frames in _groups(images, self.device):
            n, height, width, _ = frames.shape
            out = [LandmarkerResult(False, (width, height)) for _ in range(n)]
            which, crops = crops_for(frames, idx)
            if crops is not None:
                self._read(frames, which, crops, out)
            results.update(zip(idx, out))
        return [results[k] for k in range(len(results))]

    def _read(self, frames: torch.Tensor, which: list[int], crops: Crops, out: list[LandmarkerResult]) -> None:
        _, height, width, _ = frames.shape
        scale = torch.tensor([width, height], dtype=torch.float32, device=self.device)
        index = torch.as_tensor(which, device=self.device)
        chunk = CHUNK.get(self.device.type, 32)
        parts = []
        for start in range(0, len(which), chunk):
            sl = slice(start, start + chunk)
            landmarks, presence = self.landmark_model(frames, index[sl], crops[sl])
            parts.append((landmarks, presence, self.blendshapes(landmarks[:, self._subset, :2] * scale)))
        landmarks, presence, coeffs = (torch.cat(t).cpu().numpy() for t in zip(*parts))
        pick_faces(out, which, landmarks, presence, coeffs, crops.to("cpu"), self.min_presence_confidence, self._face)


def pick_faces(out: list[LandmarkerResult], which: list[int], landmarks: np.ndarray, presence: np.ndarray,
               coeffs: np.ndarray, crops: Crops, min_presence: float, face) -> None:
    """Each frame's largest present face (as FacePerceiver's "largest") into ``out[frame]``, with its head pose.

    which: (N,) the frame of each crop; landmarks (N, 478, 3) normalised, presence (N,), coeffs (N, 52),
    crops (N) on the CPU. Frames with no face over ``min_presence`` keep their empty result, with the
    best rejected presence score. Shared with ``facetwin.perception.litert_landmarker``.
    """
    chosen: dict[int, int] = {}
    area: dict[int, float] = {}
    count: dict[int, int] = {}
    for k, b in enumerate(which):
        width, height = out[b].image_size
        if presence[k] < min_presence:
            out[b].presence = max(out[b].presence, float(presence[k]))  # the best rejected score, for the caller
            continue
        span = (landmarks[k, :, :2].max(0) - landmarks[k, :, :2].min(0)) * (width, height)
        count[b] = count.get(b, 0) + 1
        if span[0] * span[1] > area.get(b, -1.0):
            chosen[b], area[b] = k, float(span[0] * span[1])
    for b, k in chosen.items():
        width, height = out[b].image_size
        out[b] = LandmarkerResult(True, (width, height), landmarks[k].copy(), coeffs[k].copy(), float(presence[k]),
                                  transformation_matrix(landmarks[k], width, height, face), count[b], crops[k : k + 1])


def tracking_landmarks(k: int, previous) -> np.ndarray:
    """Frame k's known face for a tracking crop: a result with a face, or (478 or 468, >=2) normalised
    landmarks (the 468 of the face mesh span the same box as all 478) -> (n, 2) float32."""
    if isinstance(previous, LandmarkerResult):
        if not previous.face_found:
            raise PerceptionError(f"frame {k}: the previous result has no face, so there is nothing to track; "
                                  "run detect() on this frame instead")
        previous = previous.landmarks
    p = np.asarray(previous, np.float32)
    if p.ndim != 2 or p.shape[0] not in (N_LANDMARKS, N_MESH) or p.shape[1] < 2:
        raise ValueError(f"frame {k}: previous landmarks must be ({N_LANDMARKS} or {N_MESH}, 2 or 3) normalised, "
                         f"got {p.shape}")
    return p[:, :2]


def _as_frame_list(images) -> list:
    if isinstance(images, (np.ndarray, torch.Tensor)):
        if images.ndim == 3:
            raise PerceptionError("expected a batch of frames (B, H, W, 3); wrap a single frame as frame[None]")
        return [images[i] for i in range(images.shape[0])]
    return list(images)


def _check_frame(k: int, frame) -> torch.Tensor:
    t = torch.as_tensor(np.ascontiguousarray(frame) if isinstance(frame, np.ndarray) else frame)
    if t.ndim == 3 and t.shape[-1] == 4:
        t = t[..., :3]
    if t.dtype != torch.uint8 or t.ndim != 3 or t.shape[-1] != 3 or t.shape[0] < 1 or t.shape[1] < 1:
        raise PerceptionError(f"frame {k} must be an (H, W, 3) uint8 RGB array, got {tuple(t.shape)} {t.dtype}; "
                              "convert floats with (img * 255).clip(0, 255).astype(np.uint8)")
    return t


def _groups(images, device: torch.device):
    """Frames grouped by size, each group one uint8 batch on the device, with their input positions."""
    if isinstance(images, np.ndarray) and images.ndim == 4 and images.dtype == np.uint8 and images.shape[-1] == 3:
        images = torch.from_numpy(np.ascontiguousarray(images))
    if isinstance(images, torch.Tensor) and images.ndim == 4 and images.dtype == torch.uint8 and images.shape[-1] == 3:
        yield list(range(images.shape[0])), images.to(device)
        return
    frames = [_check_frame(k, f) for k, f in enumerate(_as_frame_list(images))]
    by_size: dict[tuple[int, int], list[int]] = {}
    for k, f in enumerate(frames):
        by_size.setdefault(tuple(f.shape[:2]), []).append(k)
    for idx in by_size.values():
        yield idx, torch.stack([frames[k] for k in idx]).to(device)
