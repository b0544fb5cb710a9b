"""Safety as behaviour: slew limits, faults stop and release, the watchdog brings the face home."""

import time

import numpy as np
import pytest

from facetwin.real import control_table as ct
from facetwin.real.emulator import ServoEmulator
from facetwin.real.protocol import BusTimeoutError
from facetwin.real.robot import FaceRobot
from facetwin.real.safety import SafetyConfig, SafetyStop, SlewLimiter
from facetwin.spec import default_spec

SPEC = default_spec()
SMILE_SIDES = [SPEC.index("corner_raise_left"), SPEC.index("corner_raise_right")]


def smile(level=0.8):
    c = np.zeros(SPEC.n)
    c[SMILE_SIDES] = level
    return c


def wait_for(predicate, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def emulator():
    with ServoEmulator() as emu:
        yield emu


def test_slew_limiter_moves_at_most_the_rate_per_tick_and_caps_late_ticks():
    slew = SlewLimiter(2, max_rate=4.0, max_step=0.2)
    slew.reset(np.zeros(2))
    slew.step(np.array([1.0, -1.0]), now=0.0)
    out = slew.step(np.array([1.0, -1.0]), now=0.02)  # 20 ms at 4/s -> 0.08 more
    np.testing.assert_allclose(out, [0.28, -0.28])
    out = slew.step(np.array([1.0, -1.0]), now=5.0)  # a late tick still moves only max_step
    np.testing.assert_allclose(out, [0.48, -0.48])


def test_robot_reaches_a_command_and_reports_it_in_the_twin_action_space(emulator):
    with FaceRobot(emulator.port) as robot:
        measured = robot.move_to(smile())
        assert measured.shape == (SPEC.n,)
        np.testing.assert_allclose(measured, smile(), atol=0.01)
        np.testing.assert_allclose(robot.read_positions(), measured, atol=0.01)


def test_a_step_command_is_slew_limited_on_the_servos(emulator):
    with FaceRobot(emulator.port, safety=SafetyConfig(max_rate=2.0, max_step=0.1)) as robot:
        robot.send(smile(1.0))
        # one tick from neutral may move at most max_step, however far the target is
        assert np.max(np.abs(robot.slew.output)) == pytest.approx(0.1)
        widest_deg = max(max(-s.range_deg[0], s.range_deg[1]) for s in SPEC.servos)
        step_ticks = np.abs(robot.last_ticks - robot.calibration.to_ticks(np.zeros(SPEC.n)))
        assert 0 < step_ticks.max() <= 0.1 * widest_deg * 4096 / 360 + 1


def test_coupled_corner_gives_way_to_an_open_jaw_on_every_tick(emulator):
    c = np.zeros(SPEC.n)
    c[SPEC.index("jaw_open")] = 1.0
    c[SMILE_SIDES] = 1.0  # |corner| + jaw = 2 > the spec's coupling limit of 1.5
    assert SPEC.coupling_violations(c)
    with FaceRobot(emulator.port) as robot:
        outputs = []
        for _ in range(40):
            robot.send(c)
            outputs.append(robot.slew.output.copy())
            time.sleep(0.01)
        measured = robot.move_to(c)
    assert all(not SPEC.coupling_violations(o) for o in outputs)
    assert measured[SPEC.index("jaw_open")] == pytest.approx(1.0, abs=0.02)
    assert np.all(measured[SMILE_SIDES] <= 0.5 + 0.02)


@pytest.mark.parametrize("bit", [ct.StatusError.OVERLOAD, ct.StatusError.OVERHEAT, ct.StatusError.VOLTAGE])
def test_a_servo_fault_stops_motion_releases_torque_and_reports_the_servo(emulator, bit):
    with FaceRobot(emulator.port) as robot:
        robot.move_to(smile(0.2))
        if bit == ct.StatusError.OVERLOAD:
            emulator.faults.overload.add(16)  # corner_raise_left jams (and stalls)
        else:
            emulator.faults.status_bits[16] = bit
        with pytest.raises(SafetyStop) as info:
            for _ in range(100):
                robot.send(smile(1.0))
                time.sleep(0.01)
        assert info.value.faults == {16: bit}
        assert "corner_raise_left (ID 16)" in str(info.value) and bit.describe() in str(info.value)
        assert not any(emulator.torque_enabled(i) for i in robot.ids)
        frozen = emulator.positions()
        time.sleep(0.2)
        assert emulator.positions() == frozen  # nothing keeps moving
        with pytest.raises(SafetyStop, match="fault"):
            robot.send(smile(1.0))  # latched until reconnect


def test_watchdog_returns_to_neutral_then_releases_torque(emulator):
    config = SafetyConfig(watchdog_s=0.2, neutral_hold_s=0.1)
    with FaceRobot(emulator.port, safety=config) as robot:
        robot.move_to(smile())
        away = emulator.positions()[16]
        assert away != robot.calibration.neutral_ticks[SMILE_SIDES[0]]
        # no more commands: the watchdog must glide home, hold, then let go
        assert wait_for(lambda: robot.state == "released")
        neutral = dict(zip(robot.ids, robot.calibration.neutral_ticks.tolist()))
        assert all(abs(emulator.positions()[i] - neutral[i]) <= 1 for i in robot.ids)
        assert not any(emulator.torque_enabled(i) for i in robot.ids)
        # a new command re-engages from where the face is
        robot.send(smile(0.1))
        assert all(emulator.torque_enabled(i) for i in robot.ids)


def test_a_servo_vanishing_mid_motion_stops_the_face_and_names_it(emulator):
    with FaceRobot(emulator.port, timeout_ms=30, retries=1) as robot:
        robot.move_to(smile(0.2))
        emulator.faults.unplugged.add(21)
        with pytest.raises(SafetyStop) as info:
            robot.send(smile(0.5))
        assert info.value.missing == (21,)
        assert "jaw_open (ID 21)" in str(info.value)
        assert not any(emulator.torque_enabled(i) for i in robot.ids if i != 21)


def test_connect_refuses_when_a_servo_is_missing(emulator):
    emulator.faults.unplugged.add(3)
    with pytest.raises(BusTimeoutError, match="eye_left_yaw \\(ID 3\\)"):
        FaceRobot(emulator.port, timeout_ms=5, retries=0).connect()


def test_torque_is_released_when_the_with_block_is_interrupted(emulator):
    with pytest.raises(KeyboardInterrupt):
        with FaceRobot(emulator.port) as robot:
            robot.send(smile(0.1))
            assert all(emulator.torque_enabled(i) for i in robot.ids)
            raise KeyboardInterrupt
    assert not any(emulator.torque_enabled(i) for i in robot.ids)


def test_dry_run_opens_no_port_and_still_clamps_and_slews():
    with FaceRobot(None, safety=SafetyConfig(dry_run=True)) as robot:
        assert robot.bus is None
        neck = SPEC.region_indices("neck")
        c = np.zeros(SPEC.n)
        c[neck] = 5.0
        out = robot.move_to(c)
        np.testing.assert_allclose(out[neck], 1.0)
        np.testing.assert_array_equal(robot.last_ticks, robot.calibration.to_ticks(np.clip(c, -1, 1)))
