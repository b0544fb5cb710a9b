"""Headless rendering and the pixel path: the full MediaPipe landmarker reads the rendered twin."""

import numpy as np
import pytest

from facetwin.expression import blendshape_index
from facetwin.motion.poses import named_pose
from facetwin.perception import FacePerceiver


@pytest.fixture(scope="module")
def perceiver():
    with FacePerceiver(mode="image") as p:
        yield p


def test_render_is_a_headless_rgb_image(twin):
    twin.reset()
    img = twin.render(256)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    assert img.std() > 10  # a face on a backdrop, not a blank buffer


@pytest.mark.parametrize("pose", ["neutral", "smile", "blink", "jaw_open", "head_turn_left"])
def test_every_pose_shows_exactly_one_face_that_agrees_with_the_fast_path(twin, perceiver, pose):
    twin.reset()
    state = twin.apply(named_pose(pose, twin.spec))
    seen = perceiver.perceive(twin.render(512))
    assert seen.face_found and seen.extra["faces_detected"] == 1
    # Pixel-path landmarks sit within a few pixels of the twin's own.
    assert np.median(np.abs(seen.landmarks[:468, :2] - state.expression.landmarks[:468, :2])) < 6
    mad = np.abs(seen.blendshapes - state.expression.blendshapes).mean()
    assert mad < 0.13, f"{pose}: fast/pixel mean abs difference {mad:.3f}"
    assert abs(seen.head[0] - state.expression.head[0]) < 5


def test_smile_reads_as_a_smile_through_the_pixels(twin, perceiver):
    twin.reset()
    neutral = perceiver.perceive(twin.render(512))
    twin.apply(named_pose("smile", twin.spec))
    smile = perceiver.perceive(twin.render(512))
    for name in ("mouthSmileLeft", "mouthSmileRight"):
        i = blendshape_index(name)
        assert smile.blendshapes[i] - neutral.blendshapes[i] >= 0.35


def test_named_poses_read_through_the_pixels_as_the_twin_means_them(twin, perceiver):
    """The acceptance list of the twin, through MediaPipe's full landmarker on 512 px renders.

    `facetwin bench sim` reports the exact figures against the goals (all met: e.g. blink +0.61/+0.51 for
    0.5, mean fast/pixel difference 0.049 for 0.05); this test leaves 0.02 of slack on the rises and 0.002
    on the difference so a one-pixel change in the software renderer does not fail CI, while any real
    regression of the mechanism does.
    """
    from facetwin.app.bench.twin import pose_agreement

    result = pose_agreement(twin, perceiver)
    assert set(result["faces_detected"].values()) == {1}
    assert result["fast_vs_pixel_mad_mean"] <= 0.052
    for check, rise in result["pixel_rises"].items():
        assert rise["pixel_rise"] >= rise["least"] - 0.02 * max(1.0, rise["least"]), check
