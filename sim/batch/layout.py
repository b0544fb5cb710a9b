"""Where the readout's bodies, sites and camera live in the twin's model: shared by every physics backend."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from facetwin.sim.skinning import Skinning


@dataclass(frozen=True)
class ModelLayout:
    bone_ids: np.ndarray  # (B,) body ids of the skinning bones, in the weights' column order
    iris_sites: np.ndarray  # (10,) site ids of the iris landmarks 468-477
    head_id: int
    cam_id: int
    servo_qpos: np.ndarray  # (25,) qpos address of each servo joint, spec order

    @classmethod
    def of(cls, model: mujoco.MjModel, skinning: Skinning, servo_names, camera: str) -> "ModelLayout":
        return cls(
            bone_ids=np.asarray(skinning.body_ids),
            iris_sites=np.asarray(skinning.iris_sites),
            head_id=model.body("head").id,
            cam_id=model.camera(camera).id,
            servo_qpos=np.array([model.jnt_qposadr[model.joint(n).id] for n in servo_names]),
        )
