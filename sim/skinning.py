"""The 478 landmarks of the twin, read from body poses without rendering.

Vertices 0-467 follow the bodies by linear-blend skinning with the same bones, bind poses and weights
as the MJCF `<skin>` that the renderer draws, so the fast path and the pixels see one surface; the
iris landmarks 468-477 are sites on the eyeballs.
"""

from __future__ import annotations

import mujoco
import numpy as np

from facetwin.sim.face_geometry import FaceGeometry
from facetwin.sim.face_topology import LEFT_IRIS, RIGHT_IRIS
from facetwin.sim.mjcf import bone_bind_positions


class Skinning:
    def __init__(self, model: mujoco.MjModel, geo: FaceGeometry):
        self.body_ids = np.array([model.body(name).id for name in geo.bones])
        bind = bone_bind_positions(geo)
        self.bind_pos = np.stack([bind[name] for name in geo.bones])  # (B, 3); bind rotations are identity
        self.rest = geo.vertices  # (V, 3)
        self.weights = geo.weights  # (V, B)
        self.iris_sites = np.array([model.site(f"iris_{i}").id for i in RIGHT_IRIS + LEFT_IRIS])

    def landmarks(self, data: mujoco.MjData) -> np.ndarray:
        """(478, 3) world positions (m)."""
        rot = data.xmat[self.body_ids].reshape(-1, 3, 3)  # (B, 3, 3)
        trans = data.xpos[self.body_ids] - np.einsum("bij,bj->bi", rot, self.bind_pos)  # (B, 3)
        # v' = sum_b w_vb (R_b v + t_b): one (V, 3) x (3, 3B) product, then the weighted sum over bones.
        stacked = rot.transpose(2, 0, 1).reshape(3, -1)  # [j, 3b + i] = R_b[i, j]
        per_bone = (self.rest @ stacked).reshape(len(self.rest), -1, 3)  # (V, B, 3)
        verts = np.einsum("vb,vbi->vi", self.weights, per_bone) + self.weights @ trans
        return np.concatenate([verts, data.site_xpos[self.iris_sites]], axis=0)
