"""The facial transformation matrix from normalised landmarks, as MediaPipe's face geometry pipeline computes it.

MediaPipe's landmarker reports head pose as a 4x4 matrix taking its canonical face (centimetres)
into camera space. It comes from tasks/cc/vision/face_geometry/libs/geometry_pipeline.cc (landmark
input source): the first 468 landmarks are lifted into a perspective camera (vertical field of view
63 degrees, near plane 1 cm, origin at the top-left corner; face_geometry_from_landmarks_graph.cc),
their depth rescaled in two passes by the scale of a weighted orthogonal Procrustes fit to the
canonical face, and a last fit gives the matrix. The canonical face and the Procrustes weights are
read from the bundle's geometry_pipeline_metadata_landmarks.binarypb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from facetwin import landmarker_bundle

VERTICAL_FOV_DEG = 63.0
NEAR_PLANE = 1.0
N_MESH = 468
_BASIS_FIELD = 2  # GeometryPipelineMetadata.procrustes_landmark_basis (landmark_id = 1, weight = 2)


@dataclass(frozen=True)
class CanonicalFace:
    points: np.ndarray  # (3, 468) canonical face, cm
    weights: np.ndarray  # (468,) Procrustes weights, zero off the basis


@lru_cache(maxsize=4)
def canonical_face(bundle: Path) -> CanonicalFace:
    blob = landmarker_bundle.read_member(bundle, landmarker_bundle.MESH_MEMBER)
    mesh = landmarker_bundle.parse_canonical_mesh(blob)
    weights = np.zeros(len(mesh.vertices), np.float64)
    for field, wire, value in landmarker_bundle.protobuf_fields(blob):
        if field != _BASIS_FIELD or wire != 2:
            continue
        ref = {f: v for f, _, v in landmarker_bundle.protobuf_fields(value)}
        weights[int(ref.get(1, 0))] = float(np.frombuffer(ref.get(2, b"\0\0\0\0"), "<f4")[0])
    if not weights.any():
        raise landmarker_bundle.LandmarkerModelError(f"{bundle}: the geometry metadata holds no Procrustes weights")
    return CanonicalFace(mesh.vertices.T.astype(np.float64), weights)


def _procrustes(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """MediaPipe's weighted orthogonal Procrustes with scale: the 4x4 [sR | t] taking source to target."""
    sw = np.sqrt(weights)
    ws, wt = source * sw, target * sw
    total = weights.sum()
    centre = (ws * sw).sum(axis=1) / total
    centred = ws - centre[:, None] * sw
    u, _, vt = np.linalg.svd(wt @ centred.T)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        u[:, 2] *= -1
    rotation = u @ vt
    scale = float(((rotation @ centred) * wt).sum() / (centred * ws).sum())
    translation = ((wt - scale * rotation @ ws) * sw).sum(axis=1) / total
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = scale * rotation, translation
    return out


def transformation_matrix(landmarks: np.ndarray, width: int, height: int, face: CanonicalFace) -> np.ndarray:
    """(>=468, 3) normalised landmarks of a width x height frame -> MediaPipe's 4x4 facial transformation."""
    height_near = 2.0 * NEAR_PLANE * math.tan(0.5 * math.radians(VERTICAL_FOV_DEG))
    width_near = width * height_near / height
    screen = np.asarray(landmarks[:N_MESH], np.float64).T.copy()  # (3, 468)
    screen[1] = 1.0 - screen[1]  # origin at the top-left corner
    screen *= np.array([width_near, height_near, width_near])[:, None]
    screen[0] -= 0.5 * width_near
    screen[1] -= 0.5 * height_near
    depth_offset = screen[2].mean()

    def lifted(scale: float) -> np.ndarray:
        pts = screen.copy()
        pts[2] = (pts[2] - depth_offset + NEAR_PLANE) / scale
        pts[0] *= pts[2] / NEAR_PLANE
        pts[1] *= pts[2] / NEAR_PLANE
        pts[2] *= -1  # to a right-handed camera
        return pts

    flipped = screen.copy()
    flipped[2] *= -1
    first = np.linalg.norm(_procrustes(face.points, flipped, face.weights)[:3, 0])
    second = np.linalg.norm(_procrustes(face.points, lifted(first), face.weights)[:3, 0])
    return _procrustes(face.points, lifted(first * second), face.weights)
