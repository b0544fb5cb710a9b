"""The twin's fast-path readout for a batch of worlds, in torch on one device.

The same stages as FaceTwin's: linear-blend skinning with sim/skinning.py's bones, bind poses and
weights, sim/camera.py's pinhole projection, the head angles of facetwin.expression, and MediaPipe's
blendshape network: facetwin.blendshape_torch, so the batch is one forward pass, or LiteRT's
BlendshapeModel world by world (FaceTwin's own, steadier than torch's threads on a busy CPU).
Geometry runs in float64 so landmarks agree with the numpy path to rounding; the network runs in
float32 on float32 landmarks, as LiteRT does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from facetwin.blendshape_model import BlendshapeModel
from facetwin.blendshape_torch import TorchBlendshapes
from facetwin.expression import BLENDSHAPE_INPUT_LANDMARKS
from facetwin.sim.skinning import Skinning

# Worlds per blendshape forward pass. On CPU a small batch keeps the network's activations in cache
# (larger ones run slower per world); on a GPU a large one fills the device.
BLENDSHAPE_INPUT = list(BLENDSHAPE_INPUT_LANDMARKS)
BLENDSHAPE_CHUNK = {"cpu": 64, "cuda": 1024}


@dataclass
class Frames:
    """Body and camera poses the readout needs, per world, as MuJoCo's kinematics computed them."""

    bone_pos: torch.Tensor  # (N, B, 3) skinning bones' xpos
    bone_rot: torch.Tensor  # (N, B, 3, 3) skinning bones' xmat
    iris: torch.Tensor  # (N, 10, 3) iris sites' positions
    head_rot: torch.Tensor  # (N, 3, 3) the head body's xmat
    cam_pos: torch.Tensor  # (N, 3)
    cam_rot: torch.Tensor  # (N, 3, 3) columns: camera right, up, backwards


class BatchReadout:
    """Frames -> landmarks (pixels), head angles and blendshape coefficients for N worlds at once."""

    def __init__(self, skinning: Skinning, fovy_deg: float, size: tuple[int, int], device: torch.device,
                 blendshapes: TorchBlendshapes | BlendshapeModel | None, compile_network: bool = False):
        f64 = dict(dtype=torch.float64, device=device)
        rest = torch.as_tensor(skinning.rest, **f64)  # (V, 3)
        weights = torch.as_tensor(skinning.weights, **f64)  # (V, B)
        # v' = sum_b w_vb (R_b v + t_b). The rotation part is one matmul against the (V, 3B) matrix
        # A[v, 3b + j] = w_vb v_j, so no (N, V, B, 3) intermediate is ever formed.
        self._a = (weights[:, :, None] * rest[:, None, :]).reshape(len(rest), -1)
        self._weights = weights
        self._bind = torch.as_tensor(skinning.bind_pos, **f64)  # (B, 3); bind rotations are identity
        self.size = size
        self._focal = 0.5 * size[1] / math.tan(math.radians(fovy_deg) / 2)
        # A torch module runs batched on `device`; anything else (LiteRT's BlendshapeModel) world by world.
        self._litert = blendshapes if blendshapes is not None and not isinstance(blendshapes, torch.nn.Module) else None
        self._net = blendshapes.to(device).eval() if isinstance(blendshapes, torch.nn.Module) else None
        self._chunk = BLENDSHAPE_CHUNK[device.type]
        # torch.compile fuses the network's elementwise ops; every chunk is padded to one shape so it
        # compiles once (the first call pays for it, see docs/batch.md).
        self._compiled = compile_network and self._net is not None
        if self._compiled:
            self._net = torch.compile(self._net, dynamic=False)
        self.device = device

    def landmarks_world(self, fr: Frames) -> torch.Tensor:
        """(N, 478, 3) world positions (m): 468 skinned vertices, then the 10 iris sites."""
        rot = fr.bone_rot.to(torch.float64)
        trans = fr.bone_pos.to(torch.float64) - torch.einsum("nbij,bj->nbi", rot, self._bind)
        rflat = rot.transpose(-1, -2).reshape(rot.shape[0], -1, 3)  # [n, 3b + j, i] = R_b[i, j]
        verts = self._a @ rflat + self._weights @ trans
        return torch.cat([verts, fr.iris.to(torch.float64)], dim=1)

    def project(self, points: torch.Tensor, fr: Frames) -> torch.Tensor:
        """Batched sim/camera.py `project`: (N, P, 3) world points -> pixel x, y (down) and relative depth."""
        rot = fr.cam_rot.to(torch.float64)
        local = (points - fr.cam_pos.to(torch.float64)[:, None, :]) @ rot
        depth = -local[..., 2]
        if bool((depth <= 0).any()):
            worlds = torch.nonzero((depth <= 0).any(dim=1)).flatten().tolist()
            raise ValueError(f"a landmark is behind the camera in world(s) {worlds[:10]}")
        width, height = self.size
        x = 0.5 * width + self._focal * local[..., 0] / depth
        y = 0.5 * height - self._focal * local[..., 1] / depth
        ref = depth.mean(dim=1, keepdim=True)
        z = (depth - ref) * self._focal / ref
        return torch.stack([x, y, z], dim=-1)

    def landmarks_px(self, fr: Frames) -> torch.Tensor:
        return self.project(self.landmarks_world(fr), fr)

    @staticmethod
    def head_angles(fr: Frames) -> torch.Tensor:
        """(N, 3) yaw, pitch, roll (deg) of the head in camera axes: facetwin.expression.head_angles_deg, batched."""
        r = fr.cam_rot.to(torch.float64).transpose(-1, -2) @ fr.head_rot.to(torch.float64)
        yaw = torch.atan2(r[:, 0, 2], r[:, 2, 2])
        pitch = -torch.asin(torch.clamp(-r[:, 1, 2], -1.0, 1.0))
        roll = torch.atan2(r[:, 1, 0], r[:, 1, 1])
        return torch.rad2deg(torch.stack([yaw, pitch, roll], dim=1))

    def blendshapes(self, landmarks_px: torch.Tensor) -> torch.Tensor:
        """(N, 52) float32 coefficients; zeros when the twin was built without the network."""
        n = landmarks_px.shape[0]
        if self._litert is not None:
            return torch.from_numpy(self._litert.batch(landmarks_px.cpu().numpy()))
        if self._net is None:
            return torch.zeros(n, 52, dtype=torch.float32, device=landmarks_px.device)
        pts = landmarks_px[:, BLENDSHAPE_INPUT, :2].to(torch.float32)
        out = []
        with torch.no_grad():
            for i in range(0, n, self._chunk):
                part = pts[i:i + self._chunk]
                if self._compiled and len(part) < self._chunk:
                    part = torch.cat([part, part[-1:].expand(self._chunk - len(part), -1, -1)])
                out.append(self._net(part)[: min(self._chunk, n - i)])
        return torch.cat(out)
