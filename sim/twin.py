"""The face twin: 25 normalised servo commands in, landmarks, blendshapes, head pose and pixels out."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import mujoco
import numpy as np

from facetwin import landmarker_bundle
from facetwin.blendshape_model import BlendshapeModel
from facetwin.expression import Expression, head_angles_deg
from facetwin.sim.camera import project
from facetwin.sim.face_geometry import FaceGeometry, build_geometry
from facetwin.sim.landmark_engines import DEFAULT_ENGINE
from facetwin.sim.mjcf import build_parts, load_model, resolve_includes, write_model
from facetwin.sim.skinning import Skinning
from facetwin.sim.texture import SkinTexture, default_texture
from facetwin.spec import FaceSpec, default_spec

SETTLE_TOL = 5e-3  # joint speed (rad/s or m/s) under which the face counts as still
SETTLE_CHUNK = 5
SETTLE_MAX_STEPS = 400
CAMERA = "front"
READOUT_SIZE = (512, 512)  # the camera the fast path projects into (matches the default render)


@dataclass
class TwinState:
    """What one settled command gives: the command, where the servos ended up, and the face read out."""

    command: np.ndarray  # (25,) as applied
    servo_positions: np.ndarray  # (25,) measured, normalised like the command
    expression: Expression
    settle_steps: int


class FaceTwin:
    """A MuJoCo robot face whose servos pull a skin that MediaPipe reads as an expression."""

    def __init__(
        self,
        spec: FaceSpec | None = None,
        bundle: str | os.PathLike | None = None,
        texture: SkinTexture | None = None,
        *,
        blendshapes: bool = True,
    ):
        self.spec = spec or default_spec()
        self.bundle = landmarker_bundle.resolve(bundle)
        mesh = landmarker_bundle.canonical_mesh(self.bundle)
        self.geometry: FaceGeometry = build_geometry(self.spec, mesh)
        self.texture = texture or default_texture(mesh.uvs)
        if texture is not None:
            self.geometry = _with_uvs(self.geometry, texture.uvs)
        self.parts = build_parts(self.spec, self.geometry)  # assets/xmls/scene.xml and the face.xml it includes
        self.xml = resolve_includes(self.parts)  # the same model as one standalone document
        self.model = load_model(self.parts, self.texture.png_bytes())
        self.data = mujoco.MjData(self.model)
        self._check_actuators()
        self._servo_qpos = np.array([self.model.jnt_qposadr[self.model.joint(n).id] for n in self.spec.names])
        self._ctrl_lo = self.model.actuator_ctrlrange[:, 0].copy()
        self._ctrl_hi = self.model.actuator_ctrlrange[:, 1].copy()
        self.skinning = Skinning(self.model, self.geometry)
        self._cam_id = self.model.camera(CAMERA).id
        self._fovy = float(self.model.cam_fovy[self._cam_id])
        self._blendshapes = BlendshapeModel(self.bundle) if blendshapes else None
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._pixel_readouts: dict[tuple, object] = {}
        self.command = np.zeros(self.spec.n)
        self.reset()

    # -- control ------------------------------------------------------------------------------
    def _check_actuators(self) -> None:
        names = tuple(self.model.actuator(i).name for i in range(self.model.nu))
        if names != self.spec.names:
            raise RuntimeError(f"actuator order {names} differs from the face spec's {self.spec.names}")

    def reset(self, *, readout: bool = True) -> TwinState | None:
        """Back to the neutral face at rest; `readout=False` skips reading it (a search resets often)."""
        mujoco.mj_resetData(self.model, self.data)
        self.command = np.zeros(self.spec.n)
        self.data.ctrl[:] = 0.0
        mujoco.mj_forward(self.model, self.data)
        return self.state(settle_steps=0) if readout else None

    def set_command(self, command) -> np.ndarray:
        """Validate and hold a command without stepping (for closed-loop control at the physics rate)."""
        c = self.spec.check_command(command)
        self.data.ctrl[:] = np.radians(self.spec.offsets_deg(c))
        self.command = c
        return c

    def step(self, n: int = 1) -> None:
        mujoco.mj_step(self.model, self.data, nstep=n)

    def settle(self, max_steps: int = SETTLE_MAX_STEPS) -> int:
        steps = 0
        while steps < max_steps:
            mujoco.mj_step(self.model, self.data, nstep=SETTLE_CHUNK)
            steps += SETTLE_CHUNK
            if np.abs(self.data.qvel).max() < SETTLE_TOL:
                break
        return steps

    def apply(self, command, *, settle: bool = True, readout: bool = True) -> TwinState:
        """Move the servos to `command` (25 values in [-1, 1], spec order) and let the skin settle."""
        self.set_command(command)
        steps = self.settle() if settle else 0
        return self.state(steps) if readout else TwinState(self.command.copy(), self.servo_positions(), None, steps)

    # -- readout ------------------------------------------------------------------------------
    def servo_positions(self) -> np.ndarray:
        return self.spec.commands_from_offsets(np.degrees(self.data.qpos[self._servo_qpos]))

    def landmarks_world(self) -> np.ndarray:
        """(478, 3) landmark positions in metres, world frame."""
        return self.skinning.landmarks(self.data)

    def landmarks_px(self, size: tuple[int, int] = READOUT_SIZE) -> np.ndarray:
        """(478, 3) landmarks projected into the front camera: pixel x, y and a MediaPipe-like z."""
        return project(
            self.landmarks_world(), self.data.cam_xpos[self._cam_id], self.data.cam_xmat[self._cam_id], self._fovy, *size
        )

    def head_pose(self) -> np.ndarray:
        """Head yaw, pitch, roll (deg) as the camera sees them, in MediaPipe's convention."""
        head = self.data.xmat[self.model.body("head").id].reshape(3, 3)
        cam = self.data.cam_xmat[self._cam_id].reshape(3, 3)
        return head_angles_deg(cam.T @ head)

    def blendshapes(self, landmarks_px: np.ndarray | None = None) -> np.ndarray:
        if self._blendshapes is None:
            raise RuntimeError("this twin was built with blendshapes=False")
        return self._blendshapes(self.landmarks_px() if landmarks_px is None else landmarks_px)

    def expression(self) -> Expression:
        lm = self.landmarks_px()
        bs = self.blendshapes(lm) if self._blendshapes is not None else np.zeros(52, np.float32)
        return Expression(
            blendshapes=bs,
            head=self.head_pose().astype(np.float32),
            landmarks=lm.astype(np.float32),
            timestamp=float(self.data.time),
            image_size=READOUT_SIZE,
        )

    def state(self, settle_steps: int) -> TwinState:
        return TwinState(self.command.copy(), self.servo_positions(), self.expression(), settle_steps)

    # -- pixels -------------------------------------------------------------------------------
    def render(self, size: int | tuple[int, int] = 512) -> np.ndarray:
        """RGB (H, W, 3) uint8 from the front camera, headless (MUJOCO_GL=egl)."""
        width, height = (size, size) if isinstance(size, int) else size
        key = (width, height)
        if key not in self._renderers:
            self._renderers[key] = mujoco.Renderer(self.model, height=height, width=width)
        r = self._renderers[key]
        r.update_scene(self.data, camera=CAMERA)
        return r.render().copy()

    def pixel_readout(self, engine: str = DEFAULT_ENGINE, *, size: int = 512, workers: int = 0, device: str = "cpu"):
        """The twin's `PixelReadout` (batched render -> landmark engine) for these settings, opened once and
        kept until `close()`; `read(qpos)` reads any batch of poses of this model."""
        from facetwin.sim.pixel_readout import PixelReadout

        key = (engine, size, workers, device)
        if key not in self._pixel_readouts:
            self._pixel_readouts[key] = PixelReadout(
                self.model, engine=engine, size=size, camera=CAMERA, bundle=self.bundle, device=device, workers=workers
            )
        return self._pixel_readouts[key]

    def read_pixels(self, commands, *, engine: str = DEFAULT_ENGINE, size: int = 512, workers: int = 0,
                    device: str = "cpu") -> list[Expression]:
        """Each command (one value per servo, or a (B, n) batch) settled from the neutral face, then all of them read
        through pixels in one batch, as a camera sees the face. The twin is left as it was."""
        batch = np.atleast_2d(np.asarray(commands, dtype=np.float64))
        checked = [self.spec.check_command(c) for c in batch]  # every command checked before any is applied
        saved, saved_command = mujoco.MjData(self.model), self.command.copy()
        mujoco.mj_copyData(saved, self.model, self.data)
        try:
            poses = []
            for c in checked:
                self.reset(readout=False)
                self.apply(c, readout=False)
                poses.append(self.data.qpos.copy())
        finally:
            mujoco.mj_copyData(self.data, self.model, saved)
            self.command = saved_command
        return self.pixel_readout(engine, size=size, workers=workers, device=device).read(np.array(poses))

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()
        for readout in self._pixel_readouts.values():
            readout.close()
        self._pixel_readouts.clear()

    def __enter__(self) -> "FaceTwin":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)


def _with_uvs(geo: FaceGeometry, uvs: np.ndarray) -> FaceGeometry:
    return replace(geo, uvs=np.asarray(uvs, dtype=np.float64))


def save_model(twin: FaceTwin, out_dir: str | Path) -> Path:
    """Write the twin's scene.xml, the face.xml it includes and its skin texture, so MuJoCo's own viewer
    can open it; returns the scene's path."""
    return write_model(twin.parts, twin.texture.png_bytes(), out_dir)
