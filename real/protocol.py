"""Feetech STS packets: encode, decode, checksum, and the typed errors the bus raises.

Instruction packet `FF FF ID LEN INSTR P1..Pn CHK`, status packet `FF FF ID LEN ERR P1..Pn CHK`, with
LEN = n + 2 and CHK = ~(ID + LEN + INSTR/ERR + sum(P)) & 0xFF. The emulator parses instructions with
`PacketParser` and answers with `encode_status`; the bus driver uses the vendor SDK for transport but
raises these errors, so callers catch one family whichever layer failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from facetwin.real.control_table import BROADCAST_ID, StatusError

HEADER = b"\xff\xff"
MAX_LENGTH = 250  # the SDK's packet limit


class ProtocolError(Exception):
    """Base of every bus-level failure."""


class ChecksumError(ProtocolError):
    """A packet arrived with a wrong checksum (noise on the bus, a loose cable, a wrong baud rate)."""

    def __init__(self, message: str, servo_id: int | None = None):
        super().__init__(message)
        self.servo_id = servo_id


class BusTimeoutError(ProtocolError, TimeoutError):
    """No (complete) answer in time: the servo is unplugged, unpowered, on another ID or baud rate."""

    def __init__(self, message: str, servo_ids: tuple[int, ...] = ()):
        super().__init__(message)
        self.servo_ids = tuple(servo_ids)


class ServoStatusError(ProtocolError):
    """A servo answered with error bits set (overload, overheat, voltage, ...)."""

    def __init__(self, servo_id: int, bits: StatusError, all_faults: dict[int, StatusError] | None = None):
        self.servo_id = servo_id
        self.bits = StatusError(bits)
        self.all_faults = dict(all_faults) if all_faults else {servo_id: self.bits}
        listed = "; ".join(f"servo {i}: {StatusError(b).describe()}" for i, b in sorted(self.all_faults.items()))
        super().__init__(f"servo status error ({listed})")


@dataclass(frozen=True)
class Packet:
    servo_id: int
    code: int  # the instruction (instruction packet) or the ERR byte (status packet)
    params: bytes

    @property
    def is_broadcast(self) -> bool:
        return self.servo_id == BROADCAST_ID


def checksum(body: bytes | bytearray) -> int:
    """`body` = ID, LEN, INSTR/ERR and the parameters (no header, no checksum)."""
    return (~sum(body)) & 0xFF


def _encode(servo_id: int, code: int, params: bytes) -> bytes:
    if not 0 <= servo_id <= BROADCAST_ID:
        raise ValueError(f"servo id {servo_id} outside 0..{BROADCAST_ID}")
    length = len(params) + 2
    if length + 4 > MAX_LENGTH:
        raise ValueError(f"packet of {length + 4} bytes exceeds the {MAX_LENGTH}-byte limit; split the sync transfer")
    body = bytes([servo_id, length, code]) + bytes(params)
    return HEADER + body + bytes([checksum(body)])


def encode_instruction(servo_id: int, instruction: int, params: bytes | bytearray = b"") -> bytes:
    return _encode(servo_id, int(instruction), bytes(params))


def encode_status(servo_id: int, error: int, params: bytes | bytearray = b"") -> bytes:
    return _encode(servo_id, int(error) & 0x7F, bytes(params))


def decode(packet: bytes | bytearray) -> Packet:
    """Decode one complete packet; raises ChecksumError or ProtocolError if it is not one."""
    raw = bytes(packet)
    if len(raw) < 6 or raw[:2] != HEADER:
        raise ProtocolError(f"not a packet (needs FF FF ID LEN CODE CHK): {raw.hex(' ')}")
    servo_id, length = raw[2], raw[3]
    if len(raw) != length + 4:
        raise ProtocolError(f"packet length field says {length + 4} bytes, got {len(raw)}: {raw.hex(' ')}")
    if checksum(raw[2:-1]) != raw[-1]:
        raise ChecksumError(f"bad checksum from/to servo {servo_id}: {raw.hex(' ')}", servo_id)
    return Packet(servo_id, raw[4], raw[5:-1])


class PacketParser:
    """Incremental parser for a byte stream: feed bytes, get whole packets.

    Like a servo's firmware it resynchronises on the FF FF header and silently drops a packet whose
    checksum is wrong (a servo never answers a corrupted instruction); `dropped` counts them and
    `corrupt_ids` keeps the ID bytes of the checksum failures (a hint for the error message only).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.dropped = 0
        self.corrupt_ids: list[int] = []

    def feed(self, data: bytes) -> list[Packet]:
        self._buf.extend(data)
        out: list[Packet] = []
        while True:
            start = self._buf.find(HEADER)
            if start < 0:
                # keep a trailing FF: it may be the first half of the next header
                del self._buf[: max(0, len(self._buf) - 1)]
                return out
            del self._buf[:start]
            # FF FF FF ID...: a third FF is not an ID (IDs stop at FE), so skip one byte and look again
            if len(self._buf) >= 3 and self._buf[2] == 0xFF:
                del self._buf[0]
                continue
            if len(self._buf) < 4:
                return out
            total = self._buf[3] + 4
            if self._buf[3] < 2 or total > MAX_LENGTH:
                del self._buf[:2]
                self.dropped += 1
                continue
            if len(self._buf) < total:
                return out
            raw = bytes(self._buf[:total])
            try:
                out.append(decode(raw))
                del self._buf[:total]
            except ProtocolError:
                self.dropped += 1
                self.corrupt_ids.append(raw[2])
                del self._buf[:2]
