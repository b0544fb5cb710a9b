"""Packets and the control table: the wire format every other part of facetwin.real relies on."""

import importlib

import pytest

from facetwin.real import control_table as ct
from facetwin.real.control_table import Instruction, StatusError
from facetwin.real.protocol import ChecksumError, PacketParser, ProtocolError, decode, encode_instruction, encode_status


def test_ping_packet_matches_the_documented_layout():
    # FF FF ID LEN INSTR CHK with LEN = 2 and CHK = ~(1 + 2 + 1) & 0xFF
    assert encode_instruction(1, Instruction.PING) == bytes([0xFF, 0xFF, 0x01, 0x02, 0x01, 0xFB])


def test_read_goal_position_packet_matches_the_vendor_sdk():
    import scservo_sdk as sdk

    class Capture:
        is_using = False
        written = b""

        def clearPort(self):  # noqa: N802
            pass

        def writePort(self, packet):  # noqa: N802
            self.written = bytes(packet)
            return len(packet)

        def setPacketTimeout(self, length):  # noqa: N802
            pass

    port = Capture()
    sdk.sms_sts(port).readTx(7, ct.GOAL_POSITION.address, 2)
    assert encode_instruction(7, Instruction.READ, bytes([42, 2])) == port.written


def test_status_packet_round_trips_with_error_bits():
    raw = encode_status(16, StatusError.OVERLOAD | StatusError.OVERHEAT, b"\x00\x08")
    packet = decode(raw)
    assert (packet.servo_id, packet.params) == (16, b"\x00\x08")
    assert StatusError(packet.code) == StatusError.OVERLOAD | StatusError.OVERHEAT
    assert StatusError(packet.code).describe() == "overheat, overload"


def test_a_flipped_checksum_raises_checksum_error_naming_the_servo():
    raw = bytearray(encode_status(5, 0, b"\x01"))
    raw[-1] ^= 0xFF
    with pytest.raises(ChecksumError) as info:
        decode(raw)
    assert info.value.servo_id == 5


def test_truncated_packet_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        decode(encode_status(5, 0, b"\x01\x02")[:-1])


def test_parser_resynchronises_on_noise_and_drops_corrupt_packets():
    good_a = encode_instruction(3, Instruction.PING)
    bad = bytearray(encode_instruction(4, Instruction.PING))
    bad[-1] ^= 0x01
    good_b = encode_instruction(0xFE, Instruction.SYNC_WRITE, bytes([42, 2, 1, 0x00, 0x08]))
    stream = b"\x00\x13\xff" + good_a + bytes(bad) + good_b
    parser = PacketParser()
    # fed one byte at a time, as a serial port may deliver it
    packets = [p for byte in stream for p in parser.feed(bytes([byte]))]
    assert [(p.servo_id, p.code) for p in packets] == [(3, Instruction.PING), (0xFE, Instruction.SYNC_WRITE)]
    assert parser.dropped == 1 and parser.corrupt_ids == [4]


@pytest.mark.parametrize("value", [0, 1, 2048, 4095, -1, -300])
def test_signed_registers_use_sign_magnitude(value):
    raw = ct.encode_value(ct.GOAL_SPEED, value)
    assert ct.decode_value(ct.GOAL_SPEED, raw) == value
    if value < 0:
        assert raw[1] & 0x80  # bit 15 carries the sign, the magnitude stays positive
        assert int.from_bytes(raw, "little") & 0x7FFF == -value


def test_control_table_addresses_agree_with_the_vendor_sdk():
    sts = importlib.import_module("scservo_sdk.sms_sts")  # the package re-exports a class under the module's name

    assert ct.MODEL_NUMBER.address == sts.SMS_STS_MODEL_L
    assert ct.TORQUE_ENABLE.address == sts.SMS_STS_TORQUE_ENABLE
    assert ct.GOAL_POSITION.address == sts.SMS_STS_GOAL_POSITION_L
    assert ct.PRESENT_POSITION.address == sts.SMS_STS_PRESENT_POSITION_L
    assert ct.PRESENT_TEMPERATURE.address == sts.SMS_STS_PRESENT_TEMPERATURE
    assert (ct.GOAL_BLOCK_ADDRESS, ct.GOAL_BLOCK_SIZE) == (sts.SMS_STS_ACC, 7)
    assert all(r.eeprom == (r.address < ct.TORQUE_ENABLE.address) for r in ct.REGISTERS)


def test_status_bits_agree_with_the_vendor_sdk():
    ph = importlib.import_module("scservo_sdk.protocol_packet_handler")

    assert StatusError.VOLTAGE == ph.ERRBIT_VOLTAGE
    assert StatusError.ANGLE == ph.ERRBIT_ANGLE
    assert StatusError.OVERHEAT == ph.ERRBIT_OVERHEAT
    assert StatusError.OVERELE == ph.ERRBIT_OVERELE
    assert StatusError.OVERLOAD == ph.ERRBIT_OVERLOAD
