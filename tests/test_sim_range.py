"""The twin's expressive range as a camera reads it (`facetwin bench range`), and the reach its look gives."""

import numpy as np
import pytest

from facetwin.app.bench.range import PixelReader, mechanisms, maximise
from facetwin.expression import BLENDSHAPE_NAMES
from facetwin.perception import FacePerceiver


@pytest.fixture(scope="module")
def reader(twin):
    with FacePerceiver(mode="image") as p:
        yield PixelReader(twin, p)


def test_the_coefficients_searched_are_those_the_spec_gives_a_mechanism(twin):
    found = mechanisms(twin.spec)
    assert {"mouthSmileLeft", "browDownRight", "eyeBlinkLeft", "jawOpen", "eyeLookInLeft", "mouthUpperUpLeft"} <= set(found)
    assert "cheekPuff" not in found and "noseSneerLeft" not in found  # no servo of this face does these
    smile = found["mouthSmileLeft"]
    assert [twin.spec.servos[i].name for i in smile.servos] == ["corner_raise_left"] and smile.signs == (1,)
    assert set(found) <= set(BLENDSHAPE_NAMES)


def test_a_search_never_reports_less_than_its_mechanism_at_full_travel(twin, reader):
    """The search starts from the mechanism's own pose and keeps the best reading, checked from neutral."""
    mech = mechanisms(twin.spec)["mouthSmileLeft"]
    free = [i for i, s in enumerate(twin.spec.servos) if s.region != "neck"]
    start = reader.read(mech.start(twin.spec.n), from_neutral=True).coefficient("mouthSmileLeft")
    found = maximise(reader, mech, free, budget=5)
    assert found["value"] >= start - 0.02  # the same command re-read from neutral, within the renderer's noise
    assert np.asarray(found["command"])[[i for i, s in enumerate(twin.spec.servos) if s.region == "neck"]].tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    "pose, coefficient, least",
    [
        # The mask read 0.47 / 0.55 and 0.62 here (docs/face.md); these hold the gain, less 0.02 of slack.
        ("smile", "mouthSmileLeft", 0.54),
        ("smile", "mouthSmileRight", 0.60),
        ("blink", "eyeBlinkLeft", 0.68),
    ],
)
def test_the_mouth_and_eyes_read_as_a_faces_through_the_pixels(twin, reader, pose, coefficient, least):
    """Teeth, a dark mouth and the lid fold lift what the landmarker reads above the mask's figures."""
    from facetwin.motion.poses import named_pose

    seen = reader.read(named_pose(pose, twin.spec), from_neutral=True)
    assert seen is not None and seen.coefficient(coefficient) >= least, (pose, coefficient)


def test_the_bench_group_reports_reach_beside_people_and_the_camera_limit(faces_dir, tmp_path):
    import shutil

    from facetwin.app.bench import range as bench_range

    shutil.copy(faces_dir / "images" / "max_happy_baby.jpg", tmp_path / "happy.jpg")
    result = bench_range.run(quick=True, faces=tmp_path)
    assert result["people_frames"] == 1 and result["camera_limit_faces"] == 1
    for row in result["reach"].values():
        assert 0.0 <= row["twin_max"] <= 1.0 and 0.0 <= row["people_p95"] <= 1.0
    # The search starts from the neutral face, so its limit is never worse than neutral.
    assert result["camera_limit_mae"] <= result["neutral_mae"]
    assert result["max_search_budget"] == bench_range.MAX_BUDGET_QUICK and result["wall_seconds"] > 0
    assert result["named_poses"]["smile.mouthSmileLeft"] > result["named_poses"]["neutral.mouthPucker"]
