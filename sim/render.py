"""Many twin poses per call from one GL context, as tiles of one offscreen framebuffer read back together.

Each pose re-poses one scene, which is drawn into its own viewport (tile); one `mjr_readPixels` per pass
returns every tile. On a GPU that shares the sync of a read-back across the batch. On Mesa's llvmpipe a
pass costs in proportion to the framebuffer's area, so there the default is one pose per pass, and what
is saved against `mujoco.Renderer` is the drawing itself (`trim_planes`) and the Python wrapper.

The model, camera, lights and materials are the twin's own, so a tile is the image `FaceTwin.render`
gives for the same pose, but for the part of the backdrop the camera never sees (`trim_planes`):
tests/test_sim_render_batch.py holds the images equal within rounding, and tests/test_sim_pixels.py
their reads through the landmarker equal within its jitter.

`render_with_landmarks` also returns where the twin's face landmarks fall in each image: the first 468
vertices of the "face" skin (the face mesh, in MediaPipe's landmark order, as `sim/skinning.py` poses
them) as MuJoCo already placed them for drawing, projected with the render camera. A landmark engine
that tracks crops the face there without running its detector.

`render_regions` draws only a square (turned) part of each image, straight at the size a network reads
it: the same camera with its view frustum narrowed to the region and rolled with it. Drawing the 256 px
crop a landmark network reads costs what a 256 px frame does, less than the 512 px frame it would
otherwise be cut from (docs/camera.md), and no warp resamples it afterwards.
"""

from __future__ import annotations

import copy
import math

import mujoco
import numpy as np

from facetwin.sim.camera import project

CAMERA = "front"
# Largest side of the offscreen framebuffer asked for: within every GL 4.5 driver's renderbuffer limit
# seen here (llvmpipe and NVIDIA allow 16384), and 8 x 8 tiles of 1024 px.
MAX_FRAMEBUFFER = 8192
MAX_GEOMS = 1000  # the twin's scene holds a few dozen
GPU_MAX_BATCH = 16
SOFTWARE_RASTERISERS = ("llvmpipe", "softpipe", "swrast", "swiftshader")
FACE_SKIN = "face"  # the twin's skin whose vertices are the face mesh (mjcf.py)
N_FACE_LANDMARKS = 468  # the face mesh's landmarks; MediaPipe's other 10 are the irises, inside their span


class RenderError(ValueError):
    """A pose batch or a size the renderer cannot draw; the message says what to pass instead."""


class BatchRenderer:
    """RGB images of the twin's model in a batch of poses (generalised positions), from one camera.

    model: the twin's MjModel (it is copied; the copy gets an offscreen framebuffer big enough for the
        tiles). size: image side in pixels, or (width, height). max_batch: tiles in the framebuffer; a
        larger batch is drawn in several passes. By default one on a software rasteriser and 16 on a
        GPU: llvmpipe spends time on every pass in proportion to the framebuffer's area, so there a
        framebuffer of one image is cheapest (`facetwin bench camera`, render_cpu_ms_per_frame), while
        a GPU's cost is the sync per read-back that tiles share.
        trim: draw only the part of static grid planes the camera sees (`trim_planes`).
    """

    def __init__(self, model: mujoco.MjModel, size: int | tuple[int, int] = 512, *, camera: str = CAMERA,
                 max_batch: int | None = None, trim: bool = True):
        width, height = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if not (16 <= width <= MAX_FRAMEBUFFER and 16 <= height <= MAX_FRAMEBUFFER):
            raise RenderError(f"image size {width}x{height}: give sides between 16 and {MAX_FRAMEBUFFER} pixels")
        if max_batch is not None and max_batch < 1:
            raise RenderError(f"max_batch must be at least 1, got {max_batch}")
        self.model = copy.deepcopy(model)  # the framebuffer size is a model setting; the caller's stays as it was
        cam_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cam_id < 0:
            raise RenderError(f"the model has no camera named {camera!r}")
        self._gl = mujoco.GLContext(width, height)  # EGL and GLFW contexts do not depend on the size
        self._gl.make_current()
        self.gl_renderer = _gl_renderer()
        if max_batch is None:
            max_batch = 1 if is_software(self.gl_renderer) else GPU_MAX_BATCH
        self.width, self.height = width, height
        self.columns = max(1, min(max_batch, MAX_FRAMEBUFFER // width, math.ceil(math.sqrt(max_batch))))
        self.rows = max(1, min(math.ceil(max_batch / self.columns), MAX_FRAMEBUFFER // height))
        self.max_batch = self.columns * self.rows
        self.model.vis.global_.offwidth = self.columns * width
        self.model.vis.global_.offheight = self.rows * height
        self.trimmed_planes = trim_planes(self.model, cam_id, width / height) if trim else []
        self._data = mujoco.MjData(self.model)
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._camera.fixedcamid = cam_id
        self.option = mujoco.MjvOption()  # what is drawn (groups, skin, ...), as mujoco.Renderer's scene option
        self._scene = mujoco.MjvScene(self.model, maxgeom=MAX_GEOMS)
        self._context = mujoco.MjrContext(self.model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._frame = np.empty((self.rows * height, self.columns * width, 3), np.uint8)
        self._face_skin = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SKIN, FACE_SKIN)

    @property
    def nq(self) -> int:
        return self.model.nq

    def check_qpos(self, qpos) -> np.ndarray:
        q = np.asarray(qpos, dtype=np.float64)
        if q.ndim == 1:
            q = q[None]
        if q.ndim != 2 or q.shape[1] != self.model.nq or len(q) == 0:
            raise RenderError(
                f"poses must be (B, {self.model.nq}) generalised positions (MjData.qpos), got shape {np.shape(qpos)}"
            )
        if not np.isfinite(q).all():
            raise RenderError("poses contain NaN or infinite values")
        return q

    def render(self, qpos) -> np.ndarray:
        """(B, nq) poses -> (B, height, width, 3) uint8 RGB, each as `FaceTwin.render` draws that pose."""
        return self._render(qpos, None)

    def render_with_landmarks(self, qpos) -> tuple[np.ndarray, np.ndarray]:
        """(B, nq) poses -> the images `render` gives and (B, 468, 2) pixel x, y (down) of the face mesh's
        landmarks in them, as `FaceTwin.landmarks_px` projects them."""
        self._check_face_skin()
        landmarks = np.empty((len(self.check_qpos(qpos)), N_FACE_LANDMARKS, 2))
        return self._render(qpos, landmarks), landmarks

    def landmarks_px(self, qpos) -> np.ndarray:
        """(B, nq) poses -> (B, 468, 2) pixel x, y of the face mesh's landmarks in the images `render`
        would give, without drawing them."""
        self._check_face_skin()
        q = self.check_qpos(qpos)
        out = np.empty((len(q), N_FACE_LANDMARKS, 2))
        for i, pose in enumerate(q):
            self._pose_scene(pose)
            out[i] = self._face_landmarks_px()
        return out

    def render_regions(self, qpos, centers, sides, rotations, size: int) -> np.ndarray:
        """(B, nq) poses and one square region of each pose's image -> (B, size, size, 3) uint8, each region
        drawn directly at size x size pixels by the camera `render` uses.

        centers (B, 2): the regions' centres in the image's pixels, pixel (x, y)'s centre at (x, y), the
        sampling positions of OpenCV's and MediaPipe's warps. sides (B,): side lengths in image pixels.
        rotations (B,): radians, as MediaPipe's rects: the region's x axis is (cos, sin) in the image (y down).
        Output pixel (i, j)'s centre shows the image point centre + side * ((i + 0.5) / size - 0.5) * x axis
        + side * ((j + 0.5) / size - 0.5) * y axis.
        """
        if self._context is None:
            raise RenderError("this BatchRenderer is closed; create a new one")
        q = self.check_qpos(qpos)
        centers = np.asarray(centers, np.float64).reshape(-1, 2)
        sides, rotations = np.asarray(sides, np.float64).ravel(), np.asarray(rotations, np.float64).ravel()
        if not (len(centers) == len(sides) == len(rotations) == len(q)):
            raise RenderError(f"render_regions needs one region per pose: {len(q)} poses, {len(centers)} centres, "
                              f"{len(sides)} sides, {len(rotations)} rotations")
        if not (np.isfinite(centers).all() and np.isfinite(rotations).all() and (sides > 0).all()):
            raise RenderError("regions need finite centres and rotations and positive sides")
        if not 16 <= size <= min(self.width, self.height):
            raise RenderError(f"a region is drawn in one tile: give a size between 16 and {min(self.width, self.height)}")
        out = np.empty((len(q), size, size, 3), np.uint8)
        self._gl.make_current()
        for start in range(0, len(q), self.max_batch):
            part = slice(start, start + self.max_batch)
            regions = list(zip(centers[part], sides[part], rotations[part]))
            out[part] = self._render_pass(q[part], None, regions, size)
        return out

    def _check_face_skin(self) -> None:
        if self._face_skin < 0 or self.model.skin_vertnum[self._face_skin] < N_FACE_LANDMARKS:
            raise RenderError(f"the model has no {FACE_SKIN!r} skin with the face mesh's {N_FACE_LANDMARKS} landmarks: "
                              "landmarks come with renders of the twin (FaceTwin().model) only")
        if not self.option.flags[mujoco.mjtVisFlag.mjVIS_SKIN]:
            raise RenderError("skins are switched off in this renderer's option, so the face's landmarks are not placed")

    def _render(self, qpos, landmarks: np.ndarray | None) -> np.ndarray:
        if self._context is None:
            raise RenderError("this BatchRenderer is closed; create a new one")
        q = self.check_qpos(qpos)
        out = np.empty((len(q), self.height, self.width, 3), np.uint8)
        self._gl.make_current()
        for start in range(0, len(q), self.max_batch):
            chunk = q[start : start + self.max_batch]
            placed = None if landmarks is None else landmarks[start : start + len(chunk)]
            out[start : start + len(chunk)] = self._render_pass(chunk, placed)
        return out

    def _pose_scene(self, pose: np.ndarray) -> None:
        m, d = self.model, self._data
        d.qpos[:] = pose
        mujoco.mj_fwdPosition(m, d)  # bodies, skin bones, camera and light poses for this pose
        mujoco.mjv_updateScene(m, d, self.option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL, self._scene)

    def _render_pass(self, q: np.ndarray, landmarks: np.ndarray | None, regions=None, size: int = 0) -> np.ndarray:
        w, h = (size, size) if regions else (self.width, self.height)
        rows_used = math.ceil(len(q) / self.columns)
        for i, pose in enumerate(q):
            self._pose_scene(pose)
            if landmarks is not None:
                landmarks[i] = self._face_landmarks_px()
            if regions:
                self._narrow_to(*regions[i])
            r, c = divmod(i, self.columns)
            # GL counts rows from the bottom: tile row r sits r tiles below the used rows' top.
            mujoco.mjr_render(mujoco.MjrRect(c * w, (rows_used - 1 - r) * h, w, h), self._scene, self._context)
        used = self._frame.reshape(-1)[: rows_used * h * self.columns * w * 3].reshape(rows_used * h, self.columns * w, 3)
        mujoco.mjr_readPixels(used, None, mujoco.MjrRect(0, 0, self.columns * w, rows_used * h), self._context)
        image = used[::-1]  # bottom-up rows -> top-down
        tiles = image.reshape(rows_used, h, self.columns, w, 3).transpose(0, 2, 1, 3, 4).reshape(-1, h, w, 3)
        return tiles[: len(q)]

    def _narrow_to(self, center: np.ndarray, side: float, rotation: float) -> None:
        """Turn the scene's camera into one that sees only this region of the full image: rolled by the
        region's rotation about its axis, with an off-centre frustum around the region."""
        half_h = self._scene.camera[0].frustum_top - self._scene.camera[0].frustum_bottom
        half_h, half_w = 0.5 * half_h, 0.5 * half_h * self.width / self.height
        # Pixel centres sit half a pixel inside the image's edges; the frustum spans the edges.
        x = ((center[0] + 0.5) / self.width * 2.0 - 1.0) * half_w
        y = (1.0 - (center[1] + 0.5) / self.height * 2.0) * half_h
        cos, sin = math.cos(rotation), math.sin(rotation)
        # The region's axes, in the near plane with y up: x = (cos, -sin), up = (sin, cos).
        fx, fy = x * cos - y * sin, x * sin + y * cos
        half_side = 0.5 * side / self.height * 2.0 * half_h
        for cam in self._scene.camera:
            forward, up = np.array(cam.forward), np.array(cam.up)
            right = np.cross(forward, up)
            cam.up[:] = sin * right + cos * up
            cam.frustum_center, cam.frustum_width = fx, half_side
            cam.frustum_bottom, cam.frustum_top = fy - half_side, fy + half_side

    def _face_landmarks_px(self) -> np.ndarray:
        """The face skin's landmark vertices as `mjv_updateScene` just placed them (world, float32) -> image pixels."""
        start = 3 * int(self._scene.skinvertadr[self._face_skin])
        world = self._scene.skinvert[start : start + 3 * N_FACE_LANDMARKS].reshape(-1, 3).astype(np.float64)
        cam = self._camera.fixedcamid
        d = self._data
        return project(world, d.cam_xpos[cam], d.cam_xmat[cam], float(self.model.cam_fovy[cam]), self.width, self.height)[:, :2]

    def close(self) -> None:
        if self._context is not None:
            self._gl.make_current()
            self._context.free()
            self._context = None
            self._gl.free()

    def __del__(self) -> None:
        # MuJoCo frees a context's GL objects in whichever GL context is current: left to the garbage collector,
        # an unclosed renderer would delete another live renderer's framebuffer and textures.
        try:
            self.close()
        except Exception:  # interpreter shutdown: GL and EGL may already be gone
            pass

    def __enter__(self) -> "BatchRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def trim_planes(model: mujoco.MjModel, cam_id: int, aspect: float, margin: float = 1.25) -> list[int]:
    """Shrink each static grid plane to the part a fixed camera sees, keeping its grid cells where they were.

    MuJoCo draws a plane as a grid of up to mjMAXPLANEGRID cells a side, and every cell goes through the
    vertex pipeline, in view or not. On a CPU rasteriser the twin's backdrop (a 200 x 200 grid, a few
    hundred cells of it in view) is the part of a frame's cost that no image size changes. Keeping the
    cell size keeps the per-vertex lighting the camera sees (within a grey level). Planes the camera
    sees to the horizon, or whose cells are not square, are left as they are. Returns the geoms trimmed.
    """
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    mujoco.mj_camlight(model, data)
    if model.cam_bodyid[cam_id] != 0:
        return []  # a moving camera sees different parts of the plane
    if model.cam_projection[cam_id] != mujoco.mjtProjection.mjPROJ_PERSPECTIVE or model.cam_sensorsize[cam_id].any():
        return []  # only the plain fovy pinhole's frustum is worked out here
    half = math.tan(math.radians(model.cam_fovy[cam_id]) / 2)
    cam_rot = data.cam_xmat[cam_id].reshape(3, 3)
    corners = [cam_rot @ np.array([sx * half * aspect, sy * half, -1.0]) for sx in (-1, 1) for sy in (-1, 1)]
    origin = data.cam_xpos[cam_id]
    trimmed = []
    for g in np.flatnonzero(model.geom_type == mujoco.mjtGeom.mjGEOM_PLANE):
        sx, sy, spacing = model.geom_size[g]
        if model.geom_bodyid[g] != 0 or spacing <= 0 or sx <= 0 or sy <= 0:
            continue
        cells = [max(spacing, 2 * s / mujoco.mjMAXPLANEGRID) for s in (sx, sy)]
        if not math.isclose(cells[0], cells[1]):
            continue
        rot, centre = data.geom_xmat[g].reshape(3, 3), data.geom_xpos[g]
        normal = rot[:, 2]
        reach = np.zeros(2)
        for ray in corners:
            along = ray @ normal
            t = (centre - origin) @ normal / along if abs(along) > 1e-9 else -1.0
            if t <= 0:
                break  # this corner never meets the plane: the view reaches its horizon
            reach = np.maximum(reach, np.abs(rot[:, :2].T @ (origin + t * ray - centre)))
        else:
            cell = cells[0]
            size = np.minimum([sx, sy], cell * np.ceil(margin * reach / cell))
            model.geom_size[g] = [size[0], size[1], cell]
            trimmed.append(int(g))
    return trimmed


def is_software(gl_renderer: str) -> bool:
    return any(name in gl_renderer.lower() for name in SOFTWARE_RASTERISERS)


def _gl_renderer() -> str:
    """The current context's GL_RENDERER: which device draws (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)")."""
    try:
        from OpenGL import GL

        return GL.glGetString(GL.GL_RENDERER).decode()
    except Exception:  # PyOpenGL missing or no string: the name is for reports only
        return "unknown"
