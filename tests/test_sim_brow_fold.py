"""A lowered brow hoods the eyes under one smooth fold, not a toothed edge that reads as a tear along the brows.

Read on renders with a plain grey skin, so that only shading shows: along the band from the brows down to the
lower lids, the darkest skin pixel of each column traces the fold's underside. A toothed edge shades as dark
dips in that trace beside and between the eyes (inside the eye openings the eye itself darkens it); the
tear is a row of them, a dashed line. Where a fold ends against the nose it may shade once (the default face's anger).
"""

import numpy as np
import pytest
from scipy.signal import find_peaks

from facetwin.motion.poses import named_pose
from facetwin.sim import face_topology as topo
from facetwin.spec import load_face

SIZE = 512
TOOTH = 12  # grey levels: a dip this deep along the fold reads as a tooth at this size
EYES = tuple((ring[0], ring[-1]) for ring in (topo.RIGHT_EYE_UPPER, topo.LEFT_EYE_UPPER))  # each eye's corners
BAND_TOP = topo.RIGHT_BROW + topo.LEFT_BROW  # the band runs from the brows' highest point ...
BAND_BOTTOM = topo.RIGHT_EYE_LOWER + topo.LEFT_EYE_LOWER  # ... to the lower lids' lowest
BAND_ENDS = (topo.RIGHT_BROW[0], topo.LEFT_BROW[0])  # the brows' outer ends


@pytest.fixture(scope="module", params=("rena", "eva"))
def grey_twin(request):
    from facetwin import landmarker_bundle
    from facetwin.sim.texture import SkinTexture
    from facetwin.sim.twin import FaceTwin

    uvs = landmarker_bundle.canonical_mesh(landmarker_bundle.resolve(None)).uvs
    grey = SkinTexture(np.full((64, 64, 3), 170, np.uint8), uvs, "plain grey")
    t = FaceTwin(load_face(request.param), texture=grey, blendshapes=False)
    yield t
    t.close()


def fold_trace(rgb: np.ndarray, landmarks_px: np.ndarray) -> tuple[np.ndarray, int]:
    """The darkest skin grey of each column across the band under the brows, and the band's first column."""
    y0, y1 = int(landmarks_px[list(BAND_TOP), 1].min()), int(landmarks_px[list(BAND_BOTTOM), 1].max()) + 2
    x0, x1 = (int(landmarks_px[i, 0]) for i in BAND_ENDS)
    band = rgb[y0:y1, x0:x1].astype(int)
    skin = (np.abs(band[..., 0] - band[..., 1]) < 6) & (np.abs(band[..., 1] - band[..., 2]) < 6)
    darkest = np.where(skin, band.mean(axis=-1), np.inf).min(axis=0)
    seen = np.isfinite(darkest)
    return np.interp(np.arange(len(darkest)), np.flatnonzero(seen), darkest[seen]), x0


def teeth(trace: np.ndarray, x0: int, landmarks_px: np.ndarray) -> list[int]:
    """Columns of the dips at least TOOTH grey levels deep in the trace, outside the eye openings."""
    dips, _ = find_peaks(-trace, prominence=TOOTH)
    openings = [(landmarks_px[list(e), 0].min() - 2, landmarks_px[list(e), 0].max() + 2) for e in EYES]
    return [int(x0 + d) for d in dips if not any(a <= x0 + d <= b for a, b in openings)]


@pytest.mark.parametrize("pose", ["brow_furrow", "anger"])
def test_a_lowered_brow_folds_without_teeth_beside_or_between_the_eyes(grey_twin, pose):
    grey_twin.reset(readout=False)
    grey_twin.apply(named_pose(pose, grey_twin.spec), readout=False)
    lm = grey_twin.landmarks_px((SIZE, SIZE))
    trace, x0 = fold_trace(grey_twin.render(SIZE), lm)
    found = teeth(trace, x0, lm)
    nose = lm[1, 0]
    sides = {side: [x for x in found if (x < nose) == (side == "right")] for side in ("right", "left")}
    where = f"{grey_twin.spec.face} {pose}: teeth along the brow fold at {sides}"
    assert all(len(t) <= 1 for t in sides.values()), where


def test_the_tooth_count_sees_teeth():
    """The measure itself: a trace with a saw edge cut into it beside the eyes has one tooth per notch."""
    lm = np.zeros((478, 2))
    lm[[33, 133], 0], lm[[263, 362], 0] = (40, 90), (150, 200)
    trace = np.full(240, 120.0)
    trace[50:80] = 60.0  # the right eye's opening: dark, and not a tooth
    for x in (10, 20, 110, 120, 130, 220):
        trace[x - 2 : x + 3] -= (0, 10, 20, 10, 0)
    assert teeth(trace, 0, lm) == [10, 20, 110, 120, 130, 220]
