"""Batched renders (facetwin.sim.render): many poses per call, each the image FaceTwin.render draws."""

import cv2
import mujoco
import numpy as np
import pytest

from facetwin.motion.poses import named_pose
from facetwin.sim.render import GPU_MAX_BATCH, BatchRenderer, RenderError, is_software

POSES = ("neutral", "smile", "jaw_open", "blink", "head_turn_left")


@pytest.fixture(scope="module")
def poses_and_references(twin):
    """Settled poses and FaceTwin.render's image of each (kinematics brought up to the settled qpos)."""
    qpos, images = [], []
    for name in POSES:
        twin.reset(readout=False)
        twin.apply(named_pose(name, twin.spec), readout=False)
        mujoco.mj_forward(twin.model, twin.data)
        qpos.append(twin.data.qpos.copy())
        images.append(twin.render(256))
    twin.reset()
    return np.array(qpos), np.array(images)


@pytest.fixture(scope="module")
def renderer(twin):
    with BatchRenderer(twin.model, 256, max_batch=4) as r:
        yield r


def test_each_tile_is_the_image_the_twin_renders_for_that_pose(renderer, poses_and_references):
    """Within rounding: the batch draws only the part of the backdrop the camera sees (trim_planes)."""
    qpos, references = poses_and_references
    tiles = renderer.render(qpos)  # five poses through four tiles: two framebuffer passes
    assert tiles.shape == references.shape and tiles.dtype == np.uint8
    for name, tile, ref in zip(POSES, tiles, references):
        diff = np.abs(tile.astype(np.int16) - ref)
        assert diff.mean() < 0.05, f"{name}: mean difference {diff.mean():.4f} grey levels"
        assert (diff > 2).mean() < 1e-4, f"{name}: {(diff > 2).sum()} channel values differ by more than 2"


def test_a_pose_draws_the_same_alone_as_in_any_tile_of_a_batch(renderer, poses_and_references):
    """Up to one grey level: the rasteriser's rounding may depend on where in the framebuffer a tile sits."""
    qpos, _ = poses_and_references
    batch = renderer.render(qpos[::-1])[::-1]
    for i in range(len(qpos)):
        alone = renderer.render(qpos[i])[0]
        assert np.abs(alone.astype(np.int16) - batch[i]).max() <= 1, POSES[i]


def test_a_renderer_dropped_without_closing_leaves_the_others_drawing(twin, poses_and_references):
    qpos, references = poses_and_references
    first = BatchRenderer(twin.model, 256)
    first.render(qpos[:1])
    second = BatchRenderer(twin.model, 256)
    del first  # collected while the second renderer's GL context is current
    with second:
        tiles = second.render(qpos)
    assert np.abs(tiles.astype(np.int16) - references).mean() < 0.05


def test_the_callers_model_keeps_its_framebuffer(twin):
    before = (twin.model.vis.global_.offwidth, twin.model.vis.global_.offheight)
    with BatchRenderer(twin.model, 512, max_batch=9) as r:
        assert (r.model.vis.global_.offwidth, r.model.vis.global_.offheight) == (3 * 512, 3 * 512)
    assert (twin.model.vis.global_.offwidth, twin.model.vis.global_.offheight) == before


def test_bad_poses_get_one_clear_error(renderer, twin):
    with pytest.raises(RenderError, match=rf"\(B, {twin.model.nq}\) generalised positions"):
        renderer.render(np.zeros((2, 3)))
    with pytest.raises(RenderError, match="NaN"):
        renderer.render(np.full(twin.model.nq, np.nan))
    with pytest.raises(RenderError, match="no camera named"):
        BatchRenderer(twin.model, 64, camera="nowhere")


def test_only_the_backdrop_the_camera_sees_is_drawn_with_its_cells_unchanged(renderer, twin):
    backdrop = twin.model.geom("backdrop").id
    assert renderer.trimmed_planes == [backdrop]
    full, trimmed = twin.model.geom_size[backdrop], renderer.model.geom_size[backdrop]
    assert trimmed[0] < full[0] and trimmed[1] < full[1]
    assert np.isclose(trimmed[2], max(full[2], 2 * full[0] / mujoco.mjMAXPLANEGRID))  # the cell size drawn before


def test_a_software_rasteriser_draws_one_pose_per_pass_and_a_gpu_tiles_them(twin):
    with BatchRenderer(twin.model, 128) as r:
        assert r.max_batch == (1 if is_software(r.gl_renderer) else GPU_MAX_BATCH), r.gl_renderer
        assert (r.model.vis.global_.offwidth, r.model.vis.global_.offheight) == (r.columns * 128, r.rows * 128)


def test_renders_come_with_the_face_landmarks_where_the_twin_projects_them(renderer, twin, poses_and_references):
    """The face mesh's 468 landmarks as MuJoCo placed the skin for drawing, projected with the render camera:
    where FaceTwin.landmarks_px puts them (its skinning in float64, the scene's in float32), and the images
    are the plain render's."""
    qpos, _ = poses_and_references
    images, landmarks = renderer.render_with_landmarks(qpos)
    assert landmarks.shape == (len(qpos), 468, 2)
    np.testing.assert_array_equal(images, renderer.render(qpos))
    for name, q, got in zip(POSES, qpos, landmarks):
        twin.data.qpos[:] = q
        mujoco.mj_forward(twin.model, twin.data)
        expected = twin.landmarks_px((256, 256))[:468, :2]
        assert np.abs(got - expected).max() < 0.01, name
    twin.reset()


def _sampled(image: np.ndarray, center, side: float, rotation: float, size: int) -> np.ndarray:
    """The full image resampled (bilinear) at the points render_regions promises its pixel centres show."""
    steps = (np.arange(size) + 0.5) / size - 0.5
    lx, ly = np.meshgrid(steps * side, steps * side)
    cos, sin = np.cos(rotation), np.sin(rotation)
    x = (center[0] + cos * lx - sin * ly).astype(np.float32)
    y = (center[1] + sin * lx + cos * ly).astype(np.float32)
    return cv2.remap(image, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize("rotation", [0.0, 0.35])
def test_a_region_is_drawn_where_the_full_image_shows_it(renderer, poses_and_references, rotation):
    """The camera narrowed and rolled onto a square of the image draws that square's content at the region's size,
    within the rasteriser's sampling (a resampled full image is a little blurred); a square half a pixel off is
    further from it."""
    qpos, references = poses_and_references
    center, side, size = np.array([131.0, 112.0]), 150.0, 128
    n = len(qpos)
    regions = renderer.render_regions(qpos, np.tile(center, (n, 1)), np.full(n, side), np.full(n, rotation), size)
    moved = renderer.render_regions(qpos, np.tile(center + 0.5, (n, 1)), np.full(n, side), np.full(n, rotation), size)
    assert regions.shape == (n, size, size, 3) and regions.dtype == np.uint8
    for name, got, off, ref in zip(POSES, regions, moved, references):
        expected = _sampled(ref, center, side, rotation, size).astype(np.int16)
        here, there = np.abs(got - expected).mean(), np.abs(off - expected).mean()
        assert here < 2.5 and here < 0.6 * there, f"{name}: {here:.2f} grey levels off ({there:.2f} half a pixel away)"


def test_regions_without_a_region_for_every_pose_get_one_clear_error(renderer, poses_and_references):
    qpos, _ = poses_and_references
    with pytest.raises(RenderError, match="one region per pose"):
        renderer.render_regions(qpos, np.zeros((1, 2)), np.ones(1), np.zeros(1), 64)
    with pytest.raises(RenderError, match="positive sides"):
        renderer.render_regions(qpos[:1], np.zeros((1, 2)), np.zeros(1), np.zeros(1), 64)
    with pytest.raises(RenderError, match="size between 16 and 256"):
        renderer.render_regions(qpos[:1], np.zeros((1, 2)), np.ones(1), np.zeros(1), 512)


def test_landmarks_come_without_a_render_too(renderer, poses_and_references):
    qpos, _ = poses_and_references
    _, drawn = renderer.render_with_landmarks(qpos)
    np.testing.assert_array_equal(renderer.landmarks_px(qpos), drawn)


def test_landmarks_need_the_twins_face_skin(renderer):
    bare = mujoco.MjModel.from_xml_string('<mujoco><worldbody><camera name="front" pos="0 -1 0" xyaxes="1 0 0 0 0 1"/>'
                                          '<geom type="sphere" size=".1"/></worldbody></mujoco>')
    with BatchRenderer(bare, 64) as r:
        with pytest.raises(RenderError, match="no 'face' skin"):
            r.render_with_landmarks(np.zeros((1, bare.nq)))
    renderer.option.flags[mujoco.mjtVisFlag.mjVIS_SKIN] = 0
    try:
        with pytest.raises(RenderError, match="skins are switched off"):
            renderer.render_with_landmarks(np.zeros((1, renderer.nq)))
    finally:
        renderer.option.flags[mujoco.mjtVisFlag.mjVIS_SKIN] = 1
