"""Motion primitives: servo synergies named by intent, signed by the face spec's own words."""

import dataclasses

import numpy as np
import pytest

from facetwin.motion.constraints import bound_pair_difference, limit_coupling, mirror_pairs
from facetwin.motion.primitives import PRIMITIVES, Activation, check_library, compose, lid_follow, primitive
from facetwin.spec import REGIONS, default_spec

SPEC = default_spec()

# (primitive, servo, words the spec uses for that servo's move in the primitive's direction)
SPEC_WORDING = [
    ("smile", "corner_raise_right", "mouthSmileRight"),
    ("smile", "corner_raise_left", "mouthSmileLeft"),
    ("smile", "corner_stretch_left", "mouthStretchLeft"),
    ("frown", "corner_raise_left", "mouthFrownLeft"),
    ("frown", "lower_lip_right", "mouthShrugLower"),
    ("blink", "eyelid_left", "eyeBlinkLeft"),
    ("blink", "eyelid_right", "eyeBlinkRight"),
    ("wink_left", "eyelid_left", "eyeBlinkLeft"),
    ("eye_wide", "eyelid_right", "eyeWideRight"),
    ("squint", "eyelid_left", "closes"),
    ("brow_raise", "brow_outer_right", "browOuterUpRight"),
    ("brow_raise", "brow_inner_left", "browInnerUp"),
    ("brow_furrow", "brow_inner_left", "browDownLeft"),
    ("brow_furrow", "brow_outer_right", "browDownRight"),
    ("brow_inner_raise", "brow_inner_right", "browInnerUp"),
    ("pucker", "lip_purse_upper", "mouthPucker"),
    ("pucker", "lip_purse_lower", "mouthPucker"),
    ("pucker", "corner_stretch_right", "mouthPucker"),
    ("jaw_open", "jaw_open", "jawOpen"),
    ("lip_raise", "upper_lip_left", "mouthUpperUpLeft"),
    ("lip_depress", "lower_lip_right", "mouthLowerDownRight"),
    ("lip_press", "upper_lip_right", "mouthPressRight"),
    ("lip_press", "jaw_open", "mouthClose"),
    ("jaw_left", "jaw_lateral", "jawLeft"),
    ("jaw_right", "jaw_lateral", "jawRight"),
    ("look_left", "eye_right_yaw", "looks to the subject's left"),
    ("look_left", "eye_left_yaw", "looks to the subject's left"),
    ("look_right", "eye_left_yaw", "looks to the subject's right"),
    ("look_up", "eye_left_pitch", "looks up"),
    ("look_down", "eye_right_pitch", "looks down"),
    ("look_down", "eyelid_right", "closes"),
    ("head_turn_left", "neck_yaw", "to the subject's left"),
    ("head_turn_right", "neck_yaw", "to the subject's right"),
    ("head_nod", "neck_pitch", "nods it down"),
    ("head_tilt", "neck_roll", "left shoulder"),
]


@pytest.mark.parametrize("name,servo,words", SPEC_WORDING)
def test_primitive_moves_servo_the_way_the_spec_describes(name, servo, words):
    value = primitive(name).targets[servo]
    s = SPEC.servo(servo)
    assert words in (s.positive if value > 0 else s.negative)


def test_library_covers_the_requested_intents_and_only_spec_servos():
    required = {
        "brow_raise", "brow_furrow", "brow_inner_raise", "blink", "squint", "eye_wide", "look_left", "look_right",
        "look_up", "look_down", "smile", "frown", "jaw_open", "pucker", "lip_raise", "lip_depress", "lip_press",
        "jaw_left", "jaw_right", "head_nod", "head_turn_left", "head_turn_right", "head_tilt",
    }
    assert required <= set(PRIMITIVES)
    check_library(SPEC)
    assert all(p.region in REGIONS for p in PRIMITIVES.values())


def test_a_spec_missing_a_driven_servo_is_named_with_the_primitive():
    short = dataclasses.replace(SPEC, servos=tuple(s for s in SPEC.servos if s.name != "neck_roll"))
    with pytest.raises(KeyError, match="head_tilt.*neck_roll"):
        check_library(short)


def test_commands_follow_servo_names_not_positions():
    reordered = dataclasses.replace(SPEC, servos=SPEC.servos[::-1])
    a = primitive("smile").command(1.0, SPEC)
    b = primitive("smile").command(1.0, reordered)
    assert np.array_equal(a, b[::-1])


def test_intensity_scales_targets_linearly_and_is_bounded():
    full = primitive("brow_raise").command(1.0, SPEC)
    assert np.allclose(primitive("brow_raise").command(0.25, SPEC), 0.25 * full)
    assert not primitive("brow_raise").command(0.0, SPEC).any()
    with pytest.raises(ValueError, match="intensity"):
        primitive("brow_raise").command(1.5, SPEC)


def test_gaze_moves_both_eyes_together_and_lids_follow_pitch():
    for name in ("look_left", "look_right", "look_up", "look_down"):
        c = primitive(name).command(0.7, SPEC)
        assert c[SPEC.index("eye_right_yaw")] == c[SPEC.index("eye_left_yaw")]
        assert c[SPEC.index("eye_right_pitch")] == c[SPEC.index("eye_left_pitch")]
        pitch = c[SPEC.index("eye_right_pitch")]
        for lid in ("eyelid_right", "eyelid_left"):
            assert c[SPEC.index(lid)] == pytest.approx(lid_follow(pitch))
    assert lid_follow(-1.0) > 0 > lid_follow(1.0)  # looking down lowers (closes) the lids


def test_only_winks_and_jaw_shifts_are_asymmetric_and_symmetric_ones_mirror_exactly():
    assert {p.name for p in PRIMITIVES.values() if p.asymmetric} == {"wink_left", "wink_right", "jaw_left", "jaw_right"}
    for p in PRIMITIVES.values():
        if not p.asymmetric:
            c = p.command(1.0, SPEC)
            assert all(c[r] == c[l] for r, l in mirror_pairs(SPEC)), p.name


def test_compose_sums_then_clips():
    c = compose([Activation("blink", 1.0), Activation("look_down", 1.0)], SPEC)
    assert c[SPEC.index("eyelid_left")] == 1.0  # 1.0 + 0.4, clipped
    assert c[SPEC.index("eye_left_pitch")] == -1.0
    with pytest.raises(KeyError, match="known: .*smile"):
        Activation("grin")


def test_coupling_limit_scales_corners_not_the_jaw():
    c = limit_coupling(compose([Activation("smile"), Activation("jaw_open")], SPEC), SPEC)
    assert c[SPEC.index("jaw_open")] == 1.0
    assert c[SPEC.index("corner_raise_left")] == pytest.approx(0.5)
    assert SPEC.coupling_violations(c) == []
    closed = limit_coupling(compose([Activation("smile")], SPEC), SPEC)
    assert closed[SPEC.index("corner_raise_left")] == 1.0  # jaw closed: nothing to give way to


def test_mirror_pairs_and_pair_bounds():
    names = {(SPEC.names[r], SPEC.names[l]) for r, l in mirror_pairs(SPEC)}
    assert ("eye_right_yaw", "eye_left_yaw") in names and ("corner_raise_right", "corner_raise_left") in names
    assert len(names) == 9
    c = np.zeros(SPEC.n)
    c[[0, 2]] = [0.9, 0.1]
    out = bound_pair_difference(c, [(0, 2)], -0.2, 0.2)
    assert out[0] - out[2] == pytest.approx(0.2) and out[0] + out[2] == pytest.approx(1.0)
