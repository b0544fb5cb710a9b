"""The bundle's short-range face detector, batched: frames -> face boxes and six keypoints.

As MediaPipe's face_detector_graph.cc runs it: the frame letterboxed to 128x128 with a zero border,
the network, the 896 SSD anchors (SsdAnchorsCalculator), the sigmoid scores (clipped at +-100) over
a 0.5 threshold, weighted non-maximum suppression (IoU 0.5), and the boxes projected back from the
letterbox to normalised frame coordinates. The network runs on the module's device; the decoding and
suppression (``decode``, NumPy, shared with ``facetwin.perception.litert_landmarker``) on the CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from facetwin.perception.torch_landmarker import constants as C
from facetwin.perception.torch_landmarker.crops import letterbox
from facetwin.perception.torch_landmarker.tflite_graph import TfliteGraph
from facetwin.perception.torch_landmarker.warp import warp


@dataclass
class Detection:
    """One face in normalised frame coordinates (x right, y down, both in [0, 1] inside the frame)."""

    score: float
    box: np.ndarray  # (4,) xmin, ymin, width, height
    keypoints: np.ndarray  # (6, 2) x, y: eyes, nose tip, mouth, ear tragions (the observer's left first)


def ssd_anchors() -> np.ndarray:
    """(896, 2) anchor centres in [0, 1], in the regressor's order (SsdAnchorsCalculator, fixed size)."""
    strides = C.ANCHOR_STRIDES
    centres: list[tuple[float, float]] = []
    layer = 0
    while layer < C.ANCHOR_NUM_LAYERS:
        per_cell = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:  # same-stride layers share a grid
            per_cell += len(C.ANCHOR_ASPECT_RATIOS) + (1 if C.ANCHOR_INTERPOLATED_SCALE_ASPECT_RATIO > 0 else 0)
            last += 1
        cells = math.ceil(C.DETECTOR_SIZE / strides[layer])
        for y in range(cells):
            for x in range(cells):
                centres += [((x + C.ANCHOR_OFFSET) / cells, (y + C.ANCHOR_OFFSET) / cells)] * per_cell
        layer = last
    out = np.asarray(centres, np.float32)
    if len(out) != C.NUM_BOXES:
        raise AssertionError(f"{len(out)} anchors, the detector has {C.NUM_BOXES}")
    return out


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, iou: float) -> list[Detection]:
    """MediaPipe's WEIGHTED non-maximum suppression over one frame's candidates.

    boxes: (K, 4) xmin, ymin, xmax, ymax. Each kept face is the score-weighted mean of the boxes and
    keypoints overlapping the best remaining one by more than ``iou`` (the best one included).
    """
    order = list(np.argsort(-scores, kind="stable"))
    out: list[Detection] = []
    while order:
        top = order[0]
        cand = np.asarray(order)
        inter_w = np.clip(np.minimum(boxes[cand, 2], boxes[top, 2]) - np.maximum(boxes[cand, 0], boxes[top, 0]), 0, None)
        inter_h = np.clip(np.minimum(boxes[cand, 3], boxes[top, 3]) - np.maximum(boxes[cand, 1], boxes[top, 1]), 0, None)
        inter = inter_w * inter_h
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        union = area[cand] + area[top] - inter
        overlap = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
        merged = cand[overlap > iou]
        rest = cand[overlap <= iou]
        w = scores[merged]
        if len(merged):
            box = (boxes[merged] * w[:, None]).sum(0) / w.sum()
            kps = (keypoints[merged] * w[:, None, None]).sum(0) / w.sum()
        else:
            box, kps = boxes[top], keypoints[top]
        out.append(Detection(float(scores[top]), np.array([box[0], box[1], box[2] - box[0], box[3] - box[1]], np.float32),
                             kps.astype(np.float32)))
        if len(rest) == len(order):
            break
        order = list(rest)
    return out


def decode(raw: np.ndarray, logits: np.ndarray, width: int, height: int, *, max_faces: int | None = None,
           min_confidence: float = C.MIN_DETECTION_CONFIDENCE,
           min_suppression_iou: float = C.MIN_SUPPRESSION_IOU) -> list[list[Detection]]:
    """The network's outputs for B letterboxed frames of one width x height -> per frame, the faces, best first.

    raw: (B, 896, 16) regressors; logits: (B, 896, 1) scores. Boxes and keypoints come back in
    normalised coordinates of the frame, the letterbox removed.
    """
    n = raw.shape[0]
    anchors = _anchors()
    clipped = np.clip(logits[..., 0].astype(np.float64), -C.SCORE_CLIPPING, C.SCORE_CLIPPING)  # exp(100) overflows float32
    scores = (1.0 / (1.0 + np.exp(-clipped))).astype(np.float32)
    # XYWH (reverse_output_order) in letterbox pixels, relative to fixed 1x1 anchors
    centre = raw[..., 0:2] / C.DETECTOR_SIZE + anchors
    half = raw[..., 2:4] / C.DETECTOR_SIZE / 2
    boxes = np.concatenate([centre - half, centre + half], axis=-1)
    keypoints = raw[..., 4:].reshape(n, C.NUM_BOXES, C.NUM_KEYPOINTS, 2) / C.DETECTOR_SIZE + anchors[:, None, :]
    keep = (scores >= min_confidence) & (half[..., 0] >= 0) & (half[..., 1] >= 0)
    side = float(max(width, height))
    scale = np.array([side / width, side / height], np.float32)  # letterbox -> frame, about the centre
    out: list[list[Detection]] = []
    for b in range(n):
        idx = np.flatnonzero(keep[b])
        faces = weighted_nms(scores[b, idx], boxes[b, idx], keypoints[b, idx], min_suppression_iou) if len(idx) else []
        if max_faces is not None:
            faces = faces[:max_faces]
        for face in faces:
            face.box[:2] = (face.box[:2] - 0.5) * scale + 0.5
            face.box[2:] = face.box[2:] * scale
            face.keypoints[:] = (face.keypoints - 0.5) * scale + 0.5
        out.append(faces)
    return out


@lru_cache(maxsize=1)
def _anchors() -> np.ndarray:
    anchors = ssd_anchors()
    anchors.flags.writeable = False
    return anchors


class FaceDetector(nn.Module):
    """(B, H, W, 3) uint8 frames -> per frame, the faces found, best first (normalised coordinates)."""

    def __init__(self, tflite: bytes, *, min_confidence: float = C.MIN_DETECTION_CONFIDENCE,
                 min_suppression_iou: float = C.MIN_SUPPRESSION_IOU):
        super().__init__()
        self.graph = TfliteGraph(tflite, label=C.DETECTOR_MEMBER)
        if self.graph.input_shape() != (1, C.DETECTOR_SIZE, C.DETECTOR_SIZE, 3):
            raise ValueError(f"{C.DETECTOR_MEMBER} takes {self.graph.input_shape()}, expected the "
                             f"{C.DETECTOR_SIZE}x{C.DETECTOR_SIZE} short-range detector")
        self.min_confidence, self.min_suppression_iou = min_confidence, min_suppression_iou

    def forward(self, frames: torch.Tensor, max_faces: int | None = None) -> list[list[Detection]]:
        n, height, width, _ = frames.shape
        crops = letterbox(n, width, height).to(frames.device)
        pixels = warp(frames, torch.arange(n, device=frames.device), crops, C.DETECTOR_SIZE, border="zero")
        low, high = C.DETECTOR_RANGE
        raw, logits = self.graph(pixels * ((high - low) / 255.0) + low)
        return decode(raw.float().cpu().numpy(), logits.float().cpu().numpy(), width, height, max_faces=max_faces,
                      min_confidence=self.min_confidence, min_suppression_iou=self.min_suppression_iou)
