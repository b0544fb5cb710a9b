"""The twin is a closed head: no view of any named pose sees through it.

Read from segmentation renders (which object each pixel shows), so a hole is a hole whatever its colour.
"""

import cv2
import mujoco
import numpy as np
import pytest

from facetwin.motion.poses import NAMED_POSES, named_pose

SIZE = 256
VIEWS = ("front", "side_left", "side_right", "above")  # the front camera, 60 deg to either side, 30 deg above


@pytest.fixture(scope="module")
def segmenter(twin):
    r = mujoco.Renderer(twin.model, SIZE, SIZE)
    r.enable_segmentation_rendering()
    yield r
    r.close()


def _segment(twin, renderer, camera: str) -> tuple[np.ndarray, np.ndarray]:
    renderer.update_scene(twin.data, camera=camera)
    seg = renderer.render()
    return seg[..., 0], seg[..., 1]


def _background(twin, ids: np.ndarray, types: np.ndarray) -> np.ndarray:
    backdrop = (types == mujoco.mjtObj.mjOBJ_GEOM) & (ids == twin.model.geom("backdrop").id)
    return backdrop | (ids < 0)


def holes_in_head(twin, ids: np.ndarray, types: np.ndarray) -> int:
    """Background pixels inside the head's silhouette (its outer outline, filled)."""
    background = _background(twin, ids, types)
    contours, _ = cv2.findContours((~background).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros(background.shape, np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return int((background & filled.astype(bool)).sum())


@pytest.mark.parametrize("pose", list(NAMED_POSES))
def test_no_view_of_any_named_pose_sees_background_through_the_head(twin, segmenter, pose):
    twin.reset(readout=False)
    twin.apply(named_pose(pose, twin.spec), readout=False)
    holes = {view: holes_in_head(twin, *_segment(twin, segmenter, view)) for view in VIEWS}
    assert holes == dict.fromkeys(VIEWS, 0), f"{pose}: background pixels inside the head's outline {holes}"


def test_the_hole_count_sees_a_hole(twin, segmenter):
    """The measure itself: a head with a window cut through it has that window's pixels as holes."""
    twin.reset(readout=False)
    ids, types = _segment(twin, segmenter, "front")
    ids, types = ids.copy(), types.copy()
    ids[120:130, 120:130], types[120:130, 120:130] = twin.model.geom("backdrop").id, mujoco.mjtObj.mjOBJ_GEOM
    assert holes_in_head(twin, ids, types) == 100
