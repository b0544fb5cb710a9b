"""The bus driver over the vendor SDK: retries, typed errors and torque handling, against the emulator."""

import time

import pytest

from facetwin.real import control_table as ct
from facetwin.real.bus import ServoBus
from facetwin.real.control_table import StatusError
from facetwin.real.emulator import ServoEmulator
from facetwin.real.protocol import BusTimeoutError, ChecksumError, ProtocolError, ServoStatusError

IDS = list(range(1, 26))


@pytest.fixture
def emulator():
    with ServoEmulator() as emu:
        yield emu


@pytest.fixture
def bus(emulator):
    with ServoBus(emulator.port, timeout_ms=30, retries=3) as b:
        yield b


def test_scan_finds_exactly_the_servos_present(bus, emulator):
    emulator.faults.unplugged.add(9)
    found = bus.scan(range(1, 28))
    assert [f.servo_id for f in found] == [i for i in IDS if i != 9]
    assert {f.model_number for f in found} == {ct.DEFAULT_MODEL_NUMBER}


def test_dropped_replies_are_retried_until_they_get_through(emulator, bus):
    emulator.faults.drop_probability = 0.1  # with 3 retries an ID fails a read with odds 1e-4
    for _ in range(5):
        positions = bus.sync_read_positions(IDS)
        assert sorted(positions) == IDS
    assert bus.read(3, ct.PRESENT_POSITION) == emulator.positions()[3]
    assert emulator.replies_dropped > 0 and bus.retry_count > 0


def test_bad_checksums_are_retried_until_a_clean_reply(emulator, bus):
    emulator.faults.corrupt_probability = 0.1
    for _ in range(5):
        assert bus.sync_read_positions(IDS) == emulator.positions()
    assert bus.ping(12) == ct.DEFAULT_MODEL_NUMBER
    assert emulator.replies_corrupted > 0 and bus.retry_count > 0


def test_persistent_bad_checksums_are_reported_as_checksum_errors(emulator, bus):
    emulator.faults.corrupt_probability = 1.0
    with pytest.raises(ChecksumError) as single:
        bus.read(4, ct.PRESENT_POSITION)
    assert single.value.servo_id == 4
    with pytest.raises(ChecksumError):
        bus.sync_read_positions([4, 5])


def test_an_unplugged_servo_is_reported_by_id(emulator, bus):
    emulator.faults.unplugged.add(16)
    with pytest.raises(BusTimeoutError) as sync:
        bus.sync_read_positions(IDS)
    assert sync.value.servo_ids == (16,)
    assert "16" in str(sync.value)
    with pytest.raises(BusTimeoutError) as single:
        bus.ping(16)
    assert single.value.servo_ids == (16,)
    assert isinstance(single.value, TimeoutError)


def test_status_error_bits_are_raised_with_servo_id_and_decoded_bits(emulator, bus):
    emulator.faults.status_bits[7] = StatusError.OVERHEAT
    emulator.faults.status_bits[20] = StatusError.VOLTAGE
    with pytest.raises(ServoStatusError) as info:
        bus.sync_read_positions(IDS)
    assert info.value.servo_id == 7 and info.value.bits == StatusError.OVERHEAT
    assert info.value.all_faults == {7: StatusError.OVERHEAT, 20: StatusError.VOLTAGE}
    with pytest.raises(ServoStatusError) as single:
        bus.read(20, ct.PRESENT_VOLTAGE)
    assert single.value.bits == StatusError.VOLTAGE
    # the readings themselves are still available when asked for without the check
    assert sorted(bus.sync_read_positions(IDS, check_status=False)) == IDS


def test_sync_write_goals_reach_every_servo(emulator, bus):
    bus.set_torque(IDS, True)
    goals = {sid: 2048 + (10 if sid % 2 else -10) for sid in IDS}
    bus.sync_write_goals(goals)
    time.sleep(0.1)
    assert bus.sync_read_positions(IDS) == goals


def test_torque_enable_does_not_jump_to_a_stale_goal(emulator, bus):
    bus.write(1, ct.GOAL_POSITION, 2200)  # a goal written while torque is off
    bus.set_torque([1], True)
    time.sleep(0.1)
    assert emulator.positions()[1] == 2048


def test_torque_disabled_context_releases_then_restores(emulator, bus):
    bus.set_torque([2, 3], True)
    with bus.torque_disabled([2, 3]):
        assert not emulator.torque_enabled(2) and not emulator.torque_enabled(3)
    assert emulator.torque_enabled(2) and emulator.torque_enabled(3)


def test_closing_the_bus_releases_torque_by_default(emulator):
    with ServoBus(emulator.port, timeout_ms=10) as bus:
        bus.set_torque(IDS, True)
        assert all(emulator.torque_enabled(i) for i in IDS)
    assert not any(emulator.torque_enabled(i) for i in IDS)


def test_opening_a_missing_port_names_the_port():
    with pytest.raises(ProtocolError, match="/dev/does-not-exist"):
        ServoBus("/dev/does-not-exist").open()




def test_replies_slower_than_the_timeout_give_right_values_or_typed_errors():
    # each late reply lands while the next attempt waits: the driver may use it if it answers the same
    # question, but must never mis-parse it (the SDK alone raises IndexError here) or return a wrong value
    outcomes = []
    # 30 ms replies against a 20 ms timeout: each lands mid-drain, with 10 ms of slack for a busy CPU
    with ServoEmulator(reply_latency_s=0.03) as emu, ServoBus(emu.port, timeout_ms=20, retries=1) as bus:
        for sid in (1, 2, 3, 4):
            for ask, truth in ((lambda: bus.ping(sid), ct.DEFAULT_MODEL_NUMBER),
                               (lambda: bus.read(sid, ct.PRESENT_POSITION), emu.positions()[sid])):
                try:
                    assert ask() == truth
                    outcomes.append("value")
                except (BusTimeoutError, ChecksumError) as exc:
                    assert "timeout_ms=20" in str(exc) or isinstance(exc, ChecksumError)
                    outcomes.append("error")
    assert "error" in outcomes  # the lateness did bite
