"""Arbitrary bytes on the wire: the driver's reply parsing and the emulator's instruction parsing never crash,
never hang past their timeouts, and never let a goal outside the calibrated limits reach a servo.

Replies are rewritten through the emulator's own fault mechanism (`Faults.garble`), so the real vendor SDK
and the real driver read them off a pty exactly as they would read a noisy bus.
"""

from __future__ import annotations

import os
import select
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facetwin.real import control_table as ct
from facetwin.real.bus import ServoBus
from facetwin.real.calibration import Calibration
from facetwin.real.control_table import Instruction
from facetwin.real.emulator import ServoEmulator
from facetwin.real.protocol import MAX_LENGTH, PacketParser, ProtocolError, checksum, decode, encode_instruction, encode_status
from facetwin.real.robot import FaceRobot
from facetwin.real.safety import SafetyStop

CAL = Calibration.from_spec()
IDS = list(CAL.ids)
TIMEOUT_MS, RETRIES = 5.0, 1
FUZZ = settings(max_examples=60, deadline=2000, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- the driver's reply parser ---------------------------------------------------------------------
@settings(max_examples=300, deadline=500, derandomize=True, database=None)
@given(data=st.binary(max_size=700), cuts=st.lists(st.integers(0, 700), max_size=8))
def test_reply_parser_takes_any_bytes_in_any_pieces_and_yields_only_valid_packets(data, cuts):
    whole = PacketParser().feed(data)
    parser, pieces = PacketParser(), []
    edges = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    for a, b in zip(edges, edges[1:]):
        pieces += parser.feed(data[a:b])
    assert pieces == whole  # how the bytes were split on the way in does not matter
    for p in whole:  # a packet out is a whole, checksummed packet that was in the bytes
        body = bytes([p.servo_id, len(p.params) + 2, p.code]) + p.params
        raw = b"\xff\xff" + body + bytes([checksum(body)])
        assert decode(raw) == p and len(raw) <= MAX_LENGTH and raw in data


@pytest.fixture(scope="module")
def wire():
    """One emulated bus and one driver for the module; each example sets `faults.garble`."""
    with ServoEmulator(calibration=CAL) as emu, ServoBus(emu.port, timeout_ms=TIMEOUT_MS, retries=RETRIES) as bus:
        yield emu, bus


def _bound_s(transactions: int) -> float:
    """Worst case of one driver call: every attempt waits out its timeout(s), then a drain; 0.3 s of CI slack."""
    return ((1 + RETRIES) * (transactions + 1) + 1) * TIMEOUT_MS / 1000 + 0.3


@FUZZ
@given(reply=st.binary(max_size=120), op=st.sampled_from(["ping", "read", "sync_read"]))
def test_driver_answers_garbage_replies_with_a_value_or_a_typed_error_in_bounded_time(wire, reply, op):
    emu, bus = wire
    emu.faults.garble = lambda _real: reply
    calls = {"ping": (lambda: bus.ping(5), 2), "read": (lambda: bus.read(5, ct.PRESENT_POSITION), 1),
             "sync_read": (lambda: bus.sync_read_positions(IDS), 1)}
    call, transactions = calls[op]
    t0 = time.monotonic()
    try:
        out = call()
        assert isinstance(out, (int, dict))
    except ProtocolError:
        pass  # BusTimeoutError, ChecksumError, ServoStatusError: all typed
    finally:
        emu.faults.garble = None
    assert time.monotonic() - t0 < _bound_s(transactions)
    assert bus.ping(5) == ct.DEFAULT_MODEL_NUMBER  # the next clean exchange is not confused by the garbage


@FUZZ
@given(reply=st.binary(min_size=1, max_size=12), flips=st.lists(st.integers(0, 8 * 11 - 1), min_size=1, max_size=3))
def test_driver_survives_bit_flips_in_real_replies(wire, reply, flips):
    emu, bus = wire

    def flip(real: bytes) -> bytes:
        out = bytearray(real)
        for bit in flips:
            if bit // 8 < len(out):
                out[bit // 8] ^= 1 << (bit % 8)
        return bytes(out)

    emu.faults.garble = flip
    t0 = time.monotonic()
    try:
        positions = bus.sync_read_positions(IDS, check_status=False)
        assert sorted(positions) == sorted(IDS)
    except ProtocolError:
        pass
    finally:
        emu.faults.garble = None
    assert time.monotonic() - t0 < _bound_s(1)


positions = st.dictionaries(st.sampled_from(IDS), st.binary(min_size=2, max_size=2), min_size=1, max_size=6)


@settings(max_examples=25, deadline=5000, derandomize=True, database=None)
@given(lies=positions)
def test_servos_reporting_any_position_never_get_a_goal_outside_the_calibration(lies):
    """Replies that pass the checksum but carry garbage positions (0xFFFF, a negative sign-magnitude value, ...):
    the robot writes goal = present before torque on and in an emergency stop, and still no goal may leave
    the calibrated limits (the driver clamps every goal; the servos' own clamp must never be needed)."""

    def lie(real: bytes) -> bytes:
        sid, params = real[2], real[5:-1]
        if sid in lies and len(params) == 2:
            return encode_status(sid, real[4], lies[sid])
        return real

    with ServoEmulator(calibration=CAL) as emu:
        emu.faults.garble = lie
        robot = FaceRobot(emu.port, CAL, timeout_ms=TIMEOUT_MS, retries=RETRIES)
        try:
            with robot:
                for c in (0.5, -1.0, 1.0):
                    robot.send(np.full(len(IDS), c))
        except (SafetyStop, ProtocolError):
            pass
        assert emu.goals_outside_limits == 0, emu.servos.last_goal_outside
        assert np.all(robot.last_ticks >= CAL.min_ticks) and np.all(robot.last_ticks <= CAL.max_ticks)


# -- the emulator's instruction parser -------------------------------------------------------------
class _Listener:
    """Reads what the emulator answers on the client side of the pty, so its writes never block."""

    def __init__(self, fd: int):
        self.fd, self.buf, self._stop = fd, bytearray(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if select.select([self.fd], [], [], 0.01)[0]:
                try:
                    self.buf += os.read(self.fd, 65536)
                except OSError:
                    return

    def wait_for_status_from(self, sid: int, timeout: float = 1.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(p.servo_id == sid for p in PacketParser().feed(bytes(self.buf))):
                return True
            time.sleep(0.005)
        return False

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(1.0)


instruction_codes = st.one_of(st.sampled_from([int(i) for i in Instruction]), st.integers(0, 255))
packets = st.builds(
    lambda sid, code, params: encode_instruction(sid, code, params),
    st.one_of(st.sampled_from(IDS), st.just(ct.BROADCAST_ID), st.integers(0, ct.BROADCAST_ID)),
    instruction_codes,
    st.one_of(st.binary(max_size=48), st.lists(st.integers(0, 255), min_size=2, max_size=4).map(bytes)),  # short: address, length
)
byte = st.integers(0, 255)  # Hypothesis favours the edges (0, 255), where sizes overflow
requests = st.one_of(  # well-formed shapes with wild fields: what gets past the parser into the servos
    st.builds(lambda sid, a, n: encode_instruction(sid, Instruction.READ, bytes([a, n])), st.sampled_from(IDS), byte, byte),
    st.builds(lambda a, n, ids: encode_instruction(ct.BROADCAST_ID, Instruction.SYNC_READ, bytes([a, n, *ids])),
              byte, byte, st.lists(st.sampled_from(IDS), min_size=1, max_size=4)),
    st.builds(lambda sid, code, a, data: encode_instruction(sid, code, bytes([a]) + data),
              st.sampled_from([*IDS, ct.BROADCAST_ID]), st.sampled_from([Instruction.WRITE, Instruction.REG_WRITE]),
              byte, st.binary(max_size=8)),
    st.builds(lambda a, n, rows: encode_instruction(ct.BROADCAST_ID, Instruction.SYNC_WRITE, bytes([a, n]) + rows),
              byte, st.integers(0, 8), st.binary(max_size=40)),
    st.builds(lambda sid, code: encode_instruction(sid, code), st.sampled_from([*IDS, ct.BROADCAST_ID]),
              st.sampled_from([Instruction.ACTION, Instruction.PING, Instruction.RESET])),
)
wire_bytes = st.one_of(st.binary(max_size=400), st.lists(packets, max_size=6).map(b"".join),
                       st.tuples(st.binary(max_size=20), packets, st.binary(max_size=20)).map(b"".join))


@settings(max_examples=100, deadline=2000, derandomize=True, database=None)
@given(data=st.one_of(wire_bytes, st.lists(requests, min_size=1, max_size=8).map(b"".join)))
def test_emulator_takes_any_instruction_bytes_keeps_goals_in_limits_and_still_answers(data):
    _feed_and_check(data)


@settings(max_examples=100, deadline=2000, derandomize=True, database=None)
@given(data=st.lists(requests, min_size=1, max_size=8).map(b"".join))
def test_emulator_takes_well_formed_requests_with_wild_fields(data):
    _feed_and_check(data)


def _feed_and_check(data: bytes) -> None:
    emu = ServoEmulator(calibration=CAL, baudrate=100_000_000, reply_latency_s=0.0)  # not started: fed directly
    listener = _Listener(emu.slave_fd)
    try:
        t0 = time.monotonic()
        emu.feed(data)  # raises nothing
        assert time.monotonic() - t0 < 1.0
        for i, sid in enumerate(emu.servos.ids):
            lo, hi = emu.servos.get(i, ct.MIN_ANGLE_LIMIT), emu.servos.get(i, ct.MAX_ANGLE_LIMIT)
            if hi > lo:  # (a fuzzed EEPROM write may even cross the limits; then the firmware clamps nothing)
                assert lo <= emu.servos.get(i, ct.GOAL_POSITION) <= hi, f"servo {sid}"
        emu._parser = PacketParser()  # a line gap: a half packet left over is forgotten
        listener.buf.clear()
        emu.feed(encode_instruction(IDS[0], Instruction.PING))
        assert listener.wait_for_status_from(IDS[0])
    finally:
        listener.stop()
        emu.stop()


def test_oversized_reads_get_no_answer_instead_of_stopping_the_emulator():
    """What the fuzzing above found: a READ or SYNC READ of ~250 bytes killed the emulator's thread (its reply
    would not fit a packet), so every later request timed out."""
    with ServoEmulator(calibration=CAL) as emu, ServoBus(emu.port, timeout_ms=TIMEOUT_MS, retries=0) as bus:
        os.write(emu.slave_fd, encode_instruction(IDS[0], Instruction.READ, bytes([0, 250])))
        os.write(emu.slave_fd, encode_instruction(ct.BROADCAST_ID, Instruction.SYNC_READ, bytes([0, 250, IDS[0]])))
        time.sleep(0.05)
        assert bus.ping(IDS[0]) == ct.DEFAULT_MODEL_NUMBER
