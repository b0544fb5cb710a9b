"""The twin: servos pull the skin, and MediaPipe's blendshape model reads the result."""

import mujoco
import numpy as np
import pytest

from facetwin.expression import blendshape_index
from facetwin.motion.poses import named_pose
from facetwin.spec import CommandError


def bs(state, name):
    return state.expression.blendshapes[blendshape_index(name)]


def test_actuators_follow_the_spec_order_and_limits(twin):
    m = twin.model
    assert tuple(m.actuator(i).name for i in range(m.nu)) == twin.spec.names
    for i, s in enumerate(twin.spec.servos):
        np.testing.assert_allclose(np.degrees(m.actuator_ctrlrange[i]), s.range_deg, atol=1e-4)


def test_skin_points_are_pulled_by_spatial_tendons_from_servo_horns(twin):
    m = twin.model
    spatial = [i for i in range(m.ntendon) if m.tendon_num[i] >= 2]
    assert len(spatial) == m.ntendon >= 2 * len([s for s in twin.spec.servos if s.mechanism == "cable"])
    assert m.opt.gravity.tolist() == [0, 0, 0]


def test_neutral_command_leaves_the_sculpted_face_at_rest(twin):
    state = twin.reset()
    state = twin.apply(np.zeros(25))
    np.testing.assert_allclose(state.servo_positions, 0, atol=1e-3)
    np.testing.assert_allclose(state.expression.head, 0, atol=1e-3)


def test_apply_settles_the_servos_on_the_command(twin):
    rng = np.random.default_rng(3)
    twin.reset()
    for _ in range(3):
        c = rng.uniform(-0.6, 0.6, 25)
        state = twin.apply(c)
        assert np.abs(twin.data.qvel).max() < 5e-3 * 2
        # Servos hold their loads within a degree or two of the goal, as a position loop does.
        spec = twin.spec
        np.testing.assert_allclose(spec.offsets_deg(np.clip(state.servo_positions, -1, 1)), spec.offsets_deg(c), atol=2.0)


@pytest.mark.parametrize(
    "pose, coefficients, rise",
    [
        ("smile", ["mouthSmileLeft", "mouthSmileRight"], 0.4),
        ("jaw_open", ["jawOpen"], 0.4),
        ("blink", ["eyeBlinkLeft", "eyeBlinkRight"], 0.5),
        ("brow_raise", ["browInnerUp"], 0.3),
        ("brow_furrow", ["browDownLeft", "browDownRight"], 0.3),
        ("pucker", ["mouthPucker"], 0.3),
        ("look_left", ["eyeLookOutLeft"], 0.3),
        ("look_right", ["eyeLookOutRight"], 0.3),
    ],
)
def test_expressions_emerge_from_the_servos_in_the_fast_path(twin, pose, coefficients, rise):
    neutral = twin.reset()
    posed = twin.apply(named_pose(pose, twin.spec))
    for name in coefficients:
        assert bs(posed, name) - bs(neutral, name) >= rise, (pose, name)


def test_the_neck_turns_the_head_pose(twin):
    twin.reset()
    state = twin.apply(named_pose("head_turn_left", twin.spec))
    assert state.expression.head[0] >= 15
    twin.reset()
    state = twin.apply(named_pose("head_nod", twin.spec))
    assert state.expression.head[1] <= -10


def test_fast_path_landmarks_are_the_rendered_skin(twin):
    """The numpy skinning equals MuJoCo's own <skin> vertices: one surface for readout and pixels."""
    twin.reset()
    twin.apply(named_pose("smile", twin.spec) + named_pose("head_turn_left", twin.spec) * 0.5)
    scene = mujoco.MjvScene(twin.model, maxgeom=1000)
    mujoco.mjv_updateScene(
        twin.model, twin.data, mujoco.MjvOption(), None, mujoco.MjvCamera(), mujoco.mjtCatBit.mjCAT_ALL, scene
    )
    skin = np.array(scene.skinvert).reshape(-1, 3)[:468]
    np.testing.assert_allclose(twin.landmarks_world()[:468], skin, atol=1e-6)


def test_the_lips_part_when_the_jaw_opens(twin):
    twin.reset()
    closed = twin.landmarks_world()
    twin.apply(named_pose("jaw_open", twin.spec))
    opened = twin.landmarks_world()
    gap = lambda lm: lm[13, 1] - lm[14, 1]  # noqa: E731  upper minus lower inner lip
    assert gap(opened) - gap(closed) > 0.01  # metres


def test_eyelids_close_over_the_irises(twin):
    twin.reset()
    twin.apply(named_pose("blink", twin.spec))
    lm = twin.landmarks_world()
    assert lm[159, 1] <= lm[145, 1] + 0.001  # upper lid margin reaches the lower lid
    assert lm[386, 1] <= lm[374, 1] + 0.001


@pytest.mark.parametrize("bad", [np.full(25, np.nan), np.zeros(7), np.full(25, 2.0)])
def test_bad_commands_never_reach_the_physics(twin, bad):
    before = twin.data.ctrl.copy()
    with pytest.raises(CommandError):
        twin.apply(bad)
    np.testing.assert_array_equal(twin.data.ctrl, before)
