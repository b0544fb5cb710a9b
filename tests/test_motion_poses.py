"""Named poses: valid full-intensity reference faces, built from primitives by servo name."""

import dataclasses

import numpy as np
import pytest

from facetwin.motion.constraints import mirror_pairs
from facetwin.motion.poses import NAMED_POSES, named_pose
from facetwin.spec import default_spec

SPEC = default_spec()
POSES = (
    "neutral", "smile", "sad", "surprise", "anger", "disgust", "blink", "wink_left", "jaw_open", "brow_raise",
    "brow_furrow", "pucker", "look_left", "look_right", "look_up", "look_down", "head_turn_left", "head_nod",
)


def c(pose, servo):
    return named_pose(pose, SPEC)[SPEC.index(servo)]


def test_exactly_the_named_poses():
    assert tuple(NAMED_POSES) == POSES


@pytest.mark.parametrize("pose", POSES)
def test_every_pose_is_a_valid_command(pose):
    cmd = named_pose(pose)
    assert cmd.shape == (SPEC.n,)
    SPEC.check_command(cmd)  # raises outside [-1, 1] or on NaN
    assert SPEC.coupling_violations(cmd) == []


def test_neutral_is_all_zeros():
    assert not named_pose("neutral").any()


# (pose, servo, sign of the command) for the servos that make each pose what it is
CHARACTER = [
    ("smile", "corner_raise_left", +1), ("smile", "corner_raise_right", +1), ("smile", "corner_stretch_left", +1),
    ("sad", "brow_inner_left", +1), ("sad", "brow_outer_right", -1), ("sad", "corner_raise_right", -1),
    ("surprise", "brow_outer_left", +1), ("surprise", "eyelid_right", -1), ("surprise", "jaw_open", +1),
    ("anger", "brow_inner_right", -1), ("anger", "upper_lip_left", -1), ("anger", "eyelid_left", +1),
    ("disgust", "upper_lip_right", +1), ("disgust", "brow_inner_left", -1), ("disgust", "eyelid_right", +1),
    ("blink", "eyelid_left", +1), ("blink", "eyelid_right", +1),
    ("jaw_open", "jaw_open", +1), ("brow_raise", "brow_inner_right", +1), ("brow_furrow", "brow_inner_left", -1),
    ("pucker", "lip_purse_upper", +1), ("pucker", "lip_purse_lower", +1), ("pucker", "corner_stretch_right", -1),
    ("look_left", "eye_right_yaw", +1), ("look_left", "eye_left_yaw", +1), ("look_right", "eye_left_yaw", -1),
    ("look_up", "eye_right_pitch", +1), ("look_up", "eyelid_left", -1),
    ("look_down", "eye_left_pitch", -1), ("look_down", "eyelid_right", +1),
    ("head_turn_left", "neck_yaw", +1), ("head_nod", "neck_pitch", -1),
]


@pytest.mark.parametrize("pose,servo,sign", CHARACTER)
def test_pose_drives_its_defining_servos(pose, servo, sign):
    assert np.sign(c(pose, servo)) == sign
    assert abs(c(pose, servo)) >= 0.2


def test_full_intensity_single_primitive_poses_reach_the_limit():
    assert c("blink", "eyelid_left") == c("smile", "corner_raise_right") == c("jaw_open", "jaw_open") == 1.0


def test_poses_touch_nothing_beyond_their_primitives():
    assert np.count_nonzero(named_pose("jaw_open")) == 1
    assert np.count_nonzero(named_pose("head_nod")) == 1
    assert set(np.flatnonzero(named_pose("blink"))) == {SPEC.index("eyelid_left"), SPEC.index("eyelid_right")}


def test_wink_left_closes_only_the_left_lid_and_every_other_pose_is_mirror_symmetric():
    assert c("wink_left", "eyelid_left") == 1.0 and c("wink_left", "eyelid_right") == 0.0
    for pose in POSES:
        if pose != "wink_left":
            cmd = named_pose(pose)
            assert all(cmd[r] == cmd[l] for r, l in mirror_pairs(SPEC)), pose


def test_poses_follow_servo_names_under_any_spec_order():
    reordered = dataclasses.replace(SPEC, servos=SPEC.servos[::-1])
    for pose in POSES:
        assert np.array_equal(named_pose(pose, reordered)[::-1], named_pose(pose, SPEC))


def test_unknown_pose_lists_the_known_ones():
    with pytest.raises(KeyError, match="known poses: neutral, smile"):
        named_pose("grin")
