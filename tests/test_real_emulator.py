"""The virtual bus answers the unmodified vendor SDK the way 25 STS servos would."""

import time

import numpy as np
import pytest
import scservo_sdk as sdk

from facetwin.real import control_table as ct
from facetwin.real.calibration import Calibration
from facetwin.real.emulator import ServoEmulator
from facetwin.spec import default_spec


@pytest.fixture
def emulator():
    with ServoEmulator() as emu:
        yield emu


@pytest.fixture
def sts(emulator):
    """The vendor SDK's STS packet handler on the emulator's pty, as a user would open real hardware."""
    port = sdk.PortHandler(emulator.port)
    assert port.openPort()
    assert port.setBaudRate(1_000_000)
    yield sdk.sms_sts(port)
    port.closePort()


def test_emulates_the_face_spec_bus_ids(emulator):
    assert sorted(emulator.servos.ids) == sorted(s.bus_id for s in default_spec().servos)
    assert len(emulator.servos.ids) == 25


def test_sdk_pings_all_25_servos_and_reads_their_model_numbers(sts, emulator):
    for sid in emulator.servos.ids:
        model, result, error = sts.ping(sid)
        assert result == sdk.COMM_SUCCESS, f"servo {sid}: {sts.getTxRxResult(result)}"
        assert (model, error) == (ct.DEFAULT_MODEL_NUMBER, 0)
    _, result, _ = sts.ping(99)
    assert result == sdk.COMM_RX_TIMEOUT


def test_servos_start_at_their_calibrated_neutral(sts, emulator):
    cal = Calibration.from_spec()
    for s in cal.servos:
        pos, _, result, _ = sts.ReadPosSpeed(s.bus_id)
        assert result == sdk.COMM_SUCCESS
        assert pos == s.neutral_ticks


def test_sdk_sync_write_moves_servos_and_sync_read_reports_them(sts, emulator):
    cal = Calibration.from_spec()
    goals = cal.to_ticks(np.full(25, 0.5))
    for sid in cal.ids:
        assert sts.write1ByteTxRx(sid, ct.TORQUE_ENABLE.address, 1) == (sdk.COMM_SUCCESS, 0)
    for sid, goal in zip(cal.ids, goals):
        assert sts.SyncWritePosEx(sid, int(goal), 0, 0)
    assert sts.groupSyncWrite.txPacket() == sdk.COMM_SUCCESS
    time.sleep(0.3)  # the largest move here is 256 ticks: well under 0.3 s at the emulated 3400 ticks/s

    group = sdk.GroupSyncRead(sts, ct.PRESENT_POSITION.address, 2)
    for sid in cal.ids:
        group.addParam(sid)
    assert group.txRxPacket() == sdk.COMM_SUCCESS
    read = [group.getData(sid, ct.PRESENT_POSITION.address, 2) for sid in cal.ids]
    assert read == goals.tolist()


def test_motion_follows_the_goal_speed_limit(sts, emulator):
    sid = 23
    sts.write1ByteTxRx(sid, ct.TORQUE_ENABLE.address, 1)
    start = emulator.positions()[sid]
    t0 = time.monotonic()
    assert sts.WritePosEx(sid, start + 400, 1000, 0) == (sdk.COMM_SUCCESS, 0)  # 1000 ticks/s -> 0.4 s
    time.sleep(0.15)
    moved = emulator.positions()[sid] - start
    elapsed = time.monotonic() - t0
    assert 50 < moved <= 1000 * elapsed + 2, (moved, elapsed)  # moving, never faster than the goal speed
    time.sleep(0.5)
    assert emulator.positions()[sid] == start + 400


def test_torque_off_servo_does_not_move(sts, emulator):
    sid = 5
    start = emulator.positions()[sid]
    sts.WritePosEx(sid, start + 100, 0, 0)
    time.sleep(0.1)
    assert emulator.positions()[sid] == start


def test_goals_beyond_the_angle_limits_are_clamped_to_them(sts, emulator):
    sid = 21  # jaw_open: the narrowest range on the face
    limit = sts.read2ByteTxRx(sid, ct.MAX_ANGLE_LIMIT.address)[0]
    sts.write1ByteTxRx(sid, ct.TORQUE_ENABLE.address, 1)
    sts.WritePosEx(sid, 4000, 0, 0)
    assert sts.read2ByteTxRx(sid, ct.GOAL_POSITION.address)[0] == limit


def test_eeprom_writes_need_the_lock_cleared(sts, emulator):
    sid = 7
    sts.write2ByteTxRx(sid, ct.MIN_ANGLE_LIMIT.address, 1000)
    assert sts.read2ByteTxRx(sid, ct.MIN_ANGLE_LIMIT.address)[0] != 1000
    sts.unLockEprom(sid)
    sts.write2ByteTxRx(sid, ct.MIN_ANGLE_LIMIT.address, 1000)
    assert sts.read2ByteTxRx(sid, ct.MIN_ANGLE_LIMIT.address)[0] == 1000


def test_reg_write_waits_for_action(sts, emulator):
    sid = 24
    sts.write1ByteTxRx(sid, ct.TORQUE_ENABLE.address, 1)
    start = emulator.positions()[sid]
    assert sts.RegWritePosEx(sid, start + 50, 0, 0) == (sdk.COMM_SUCCESS, 0)
    time.sleep(0.05)
    assert emulator.positions()[sid] == start
    sts.RegAction()
    time.sleep(0.1)
    assert emulator.positions()[sid] == start + 50


def test_twin_hook_receives_normalised_positions():
    seen = []
    with ServoEmulator(on_positions=seen.append, positions_period_s=0.01):
        time.sleep(0.1)
    assert seen and all(c.shape == (25,) for c in seen)
    np.testing.assert_allclose(seen[-1], 0.0)
