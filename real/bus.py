"""The STS servo bus driver: the vendor SDK as transport, with retries, typed errors and torque safety.

Transport: Feetech's own `scservo_sdk` (PyPI `ftservo-python-sdk`). It already does everything the
face needs on the wire (ping, read, write, sync write of the 7-byte goal block, sync read of present
positions with per-packet timeouts) and it is what the servos are tested against, so a second protocol
stack here would only be a second place for wire bugs. Two things are adapted, not rewritten: the SDK's
fixed 50 ms latency allowance becomes `timeout_ms`, and its receive loop sleeps on the port instead of
spinning (`_Port`); sync-read replies are parsed with `protocol.PacketParser` so a lost reply and a
corrupted one get different errors. What the SDK lacks is added on top: retries on timeouts and bad
checksums, the status ERR byte raised as `ServoStatusError`, and torque released when the bus closes.

Status packets carry no request identity, so a reply that misses its timeout could pass for the answer
to the next request; after any failed transfer the bus waits `timeout_ms` more and discards what came
(`_drain`). Keep `timeout_ms` above the adapter's worst latency (FTDI adapters default to a 16 ms latency
timer; 1 ms via /sys/bus/usb-serial/devices/ttyUSB*/latency_timer makes 20 ms ample).
"""

from __future__ import annotations

import select
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import scservo_sdk as sdk
import serial

from facetwin.real import control_table as ct
from facetwin.real.control_table import STOP_BITS, StatusError
from facetwin.real.protocol import BusTimeoutError, ChecksumError, PacketParser, ProtocolError, ServoStatusError


class _Port(sdk.PortHandler):
    """The SDK's port with a configurable reply allowance and a receive wait that does not spin."""

    def __init__(self, port_name: str, timeout_ms: float):
        super().__init__(port_name)
        self.timeout_ms = timeout_ms

    def setPacketTimeout(self, packet_length):  # noqa: N802 (SDK name)
        self.packet_start_time = self.getCurrentTime()
        self.packet_timeout = self.tx_time_per_byte * (packet_length + 3.0) + self.timeout_ms

    def readPort(self, length):  # noqa: N802
        # The SDK polls with a zero timeout in a tight loop; wait up to 0.5 ms for bytes instead.
        if not self.ser.in_waiting:
            try:
                select.select([self.ser.fileno()], [], [], 0.0005)
            except (OSError, ValueError, AttributeError):
                pass
        return self.ser.read(length)


@dataclass(frozen=True)
class ServoInfo:
    servo_id: int
    model_number: int


class ServoBus:
    """One half-duplex STS bus. Use as a context manager; torque is released on close by default."""

    def __init__(
        self,
        port: str,
        baudrate: int = 1_000_000,
        *,
        timeout_ms: float = 20.0,
        retries: int = 3,
        release_torque_on_close: bool = True,
        goal_limits: Mapping[int, tuple[int, int]] | None = None,
    ):
        self.port = port
        self.baudrate = baudrate
        self.retries = retries
        self.release_torque_on_close = release_torque_on_close
        # id -> (min, max) ticks: every goal this bus sends is clamped here first, whoever computed it
        # (a command, or goal = present before torque on / in an emergency stop, where `present` came off
        # the wire and may be garbage that passed the 8-bit checksum). The servo's own EEPROM limits are
        # the second line, never the first.
        self.goal_limits: dict[int, tuple[int, int]] = dict(goal_limits or {})
        self._port = _Port(port, timeout_ms)
        self._packets = sdk.sms_sts(self._port)
        self._known_ids: set[int] = set()
        self.last_status: dict[int, StatusError] = {}
        self.retry_count = 0  # transfers repeated because of timeouts or bad checksums

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._port.is_open

    def open(self) -> ServoBus:
        if self.is_open:
            return self
        self._port.baudrate = self.baudrate
        try:
            ok = self._port.openPort()
        except (serial.SerialException, OSError) as exc:
            raise ProtocolError(
                f"cannot open serial port {self.port}: {exc}; check the adapter is plugged in and you may use it "
                f"(Linux: member of the 'dialout' group)"
            ) from exc
        if not ok:
            raise ProtocolError(f"serial port {self.port} refused baud rate {self.baudrate}; use one of {sorted(ct.BAUD_CODES.values())}")
        return self

    def close(self) -> None:
        if not self.is_open:
            return
        try:
            if self.release_torque_on_close:
                self.release_all()
        except (ProtocolError, OSError) as exc:
            warnings.warn(f"could not release torque on {self.port} while closing: {exc}; cut servo power", stacklevel=2)
        finally:
            self._port.closePort()

    def __enter__(self) -> ServoBus:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _port_errors(self) -> Iterator[None]:
        """An adapter unplugged mid-transfer surfaces as a ProtocolError naming the port, not a bare OSError."""
        try:
            yield
        except (serial.SerialException, OSError) as exc:
            raise ProtocolError(f"serial port {self.port} failed: {exc}; is the adapter still connected?") from exc

    def _drain(self) -> None:
        """After a failed transfer: let any late reply land, then discard it.

        Status packets carry no request identity, so a reply that misses its timeout would otherwise be
        read as the answer to the next request of the same shape (a model number returned as a position).
        """
        time.sleep(self._port.timeout_ms / 1000.0)
        with self._port_errors():
            self._port.clearPort()

    # -- single-servo transfers -----------------------------------------------------------------
    def _transfer(self, servo_id: int, what: str, call, *, check_status: bool, retries: int | None = None):
        """Run one SDK request/reply with retries; returns the SDK's payload."""
        if not self.is_open:
            raise ProtocolError(f"bus {self.port} is not open; call open() or use it as a context manager")
        attempts = 1 + (self.retries if retries is None else retries)
        result = sdk.COMM_RX_TIMEOUT
        for attempt in range(attempts):
            if attempt:
                self.retry_count += 1
                self._drain()
            self._port.is_using = False  # a failed transfer may leave the SDK's busy flag set
            with self._port_errors():
                try:
                    payload, result, error = call()
                except IndexError:
                    # a late reply to an earlier attempt, taken by the SDK as this one's, was too short
                    payload, result, error = None, sdk.COMM_RX_CORRUPT, 0
            if result == sdk.COMM_SUCCESS:
                self._note_status(servo_id, error, check_status)
                self._known_ids.add(servo_id)
                return payload
            if result not in (sdk.COMM_RX_TIMEOUT, sdk.COMM_RX_CORRUPT, sdk.COMM_PORT_BUSY):
                raise ProtocolError(f"{what} servo {servo_id} on {self.port}: {self._packets.getTxRxResult(result)}")
        self._drain()  # so the next request does not take this one's late reply for its own
        if result == sdk.COMM_RX_CORRUPT:
            raise ChecksumError(f"{what} servo {servo_id}: corrupt replies after {attempts} attempts (noise, wiring, baud rate?)", servo_id)
        raise BusTimeoutError(
            f"{what} servo {servo_id}: no reply after {attempts} attempts; is it plugged in, powered, and set to ID {servo_id} "
            f"at {self.baudrate} baud? (or it answers slower than timeout_ms={self._port.timeout_ms:g})",
            (servo_id,),
        )

    def _note_status(self, servo_id: int, error: int, check: bool) -> None:
        bits = StatusError(error & 0x7F)
        self.last_status[servo_id] = bits
        if check and bits & STOP_BITS:
            raise ServoStatusError(servo_id, bits)

    def ping(self, servo_id: int, *, retries: int | None = None) -> int:
        """The servo's model number; raises BusTimeoutError when nothing answers."""

        return self._transfer(servo_id, "ping", lambda: self._packets.ping(servo_id), check_status=False, retries=retries)

    def scan(self, ids: Iterable[int] = range(0, ct.MAX_SERVO_ID + 1), *, retries: int = 1) -> list[ServoInfo]:
        """Ping each ID; the answering ones with their model numbers. An absent ID costs 2 x (1 + retries) timeouts."""
        found = []
        for sid in ids:
            try:
                found.append(ServoInfo(sid, self.ping(sid, retries=retries)))
            except (BusTimeoutError, ChecksumError):
                continue
        return found

    def read(self, servo_id: int, register: ct.Register, *, check_status: bool = True) -> int:
        def call():
            data, result, error = self._packets.readTxRx(servo_id, register.address, register.size)
            if result == sdk.COMM_SUCCESS and len(data) != register.size:  # a stale reply to another request
                result = sdk.COMM_RX_CORRUPT
            return data, result, error

        data = self._transfer(servo_id, f"read {register.name} from", call, check_status=check_status)
        return ct.decode_value(register, bytes(data))

    def write(self, servo_id: int, register: ct.Register, value: int, *, check_status: bool = True) -> None:
        if not register.writable:
            raise ValueError(f"{register.name} is read-only")
        if register == ct.GOAL_POSITION:
            value = self._clamp_goal(servo_id, value)
        data = list(ct.encode_value(register, value))

        def call():
            result, error = self._packets.writeTxRx(servo_id, register.address, len(data), data)
            return None, result, error

        self._transfer(servo_id, f"write {register.name} to", call, check_status=check_status)

    # -- sync transfers -------------------------------------------------------------------------
    def sync_write(self, address: int, size: int, payloads: Mapping[int, bytes]) -> None:
        """One SYNC WRITE packet: `size` bytes at `address` for each servo. Nothing answers it."""
        if not self.is_open:
            raise ProtocolError(f"bus {self.port} is not open")
        group = sdk.GroupSyncWrite(self._packets, address, size)
        for sid, data in payloads.items():
            if len(data) != size or not group.addParam(int(sid), list(data)):
                raise ValueError(f"sync write to servo {sid}: expected {size} bytes, got {len(data)}")
        self._port.is_using = False
        with self._port_errors():
            result = group.txPacket()
        if result != sdk.COMM_SUCCESS:
            raise ProtocolError(f"sync write on {self.port}: {self._packets.getTxRxResult(result)}")

    def sync_write_goals(self, goals: Mapping[int, int], *, speed: int = 0, acceleration: int = 0) -> None:
        """Goal positions (ticks) for many servos in one packet, with speed (ticks/s) and acceleration (x100 ticks/s^2)."""
        tail = ct.encode_value(ct.GOAL_TIME, 0) + ct.encode_value(ct.GOAL_SPEED, speed)
        acc = ct.encode_value(ct.ACCELERATION, acceleration)
        payloads = {sid: acc + ct.encode_value(ct.GOAL_POSITION, self._clamp_goal(sid, t)) + tail for sid, t in goals.items()}
        self.sync_write(ct.GOAL_BLOCK_ADDRESS, ct.GOAL_BLOCK_SIZE, payloads)

    def _clamp_goal(self, servo_id: int, ticks: int) -> int:
        lo, hi = self.goal_limits.get(int(servo_id), (0, ct.TICKS_PER_REV - 1))
        return min(max(int(ticks), lo), hi)

    def sync_read(self, register: ct.Register, ids: Iterable[int], *, check_status: bool = True) -> dict[int, int]:
        """One register from many servos (SYNC READ), retrying the IDs whose replies were lost or corrupt.

        The SDK sends the request and gathers the reply bytes; they are parsed here because the SDK's
        GroupSyncRead cannot tell a lost reply from a corrupted one, and the error should say which.
        """
        if not self.is_open:
            raise ProtocolError(f"bus {self.port} is not open")
        wanted = list(dict.fromkeys(int(i) for i in ids))
        values: dict[int, int] = {}
        faults: dict[int, StatusError] = {}
        corrupt: set[int] = set()
        missing = wanted
        for attempt in range(1 + self.retries):
            if attempt:
                self.retry_count += 1
                self._drain()
            self._port.is_using = False
            with self._port_errors():
                result = self._packets.syncReadTx(register.address, register.size, missing, len(missing))
                if result != sdk.COMM_SUCCESS:
                    raise ProtocolError(f"sync read on {self.port}: {self._packets.getTxRxResult(result)}")
                _, raw = self._packets.syncReadRx(register.size, len(missing))
            parser = PacketParser()
            for packet in parser.feed(bytes(raw)):
                sid = packet.servo_id
                if sid not in missing or sid in values or len(packet.params) != register.size:
                    continue
                values[sid] = ct.decode_value(register, packet.params)
                bits = StatusError(packet.code & 0x7F)
                self.last_status[sid] = bits
                self._known_ids.add(sid)
                if bits & STOP_BITS:
                    faults[sid] = bits
            missing = [sid for sid in missing if sid not in values]
            corrupt = set(parser.corrupt_ids) & set(missing)
            if not missing:
                break
        if missing:
            self._drain()
        if check_status and faults:
            first = min(faults)
            raise ServoStatusError(first, faults[first], faults)
        if corrupt and set(missing) == corrupt:
            raise ChecksumError(
                f"sync read of {register.name}: corrupt replies from servo(s) {', '.join(map(str, sorted(corrupt)))} after "
                f"{1 + self.retries} attempts (noise, wiring, baud rate?)", min(corrupt))
        if missing:
            raise BusTimeoutError(
                f"sync read of {register.name}: no reply from servo(s) {', '.join(map(str, missing))} after "
                f"{1 + self.retries} attempts; are they plugged in, powered and on these IDs?",
                tuple(missing),
            )
        return {sid: values[sid] for sid in wanted}

    def sync_read_positions(self, ids: Iterable[int], *, check_status: bool = True) -> dict[int, int]:
        return self.sync_read(ct.PRESENT_POSITION, ids, check_status=check_status)

    # -- torque ---------------------------------------------------------------------------------
    def set_torque(self, ids: Iterable[int], enabled: bool) -> None:
        """Torque on or off. Enabling first sets goal = present position so nothing jumps."""
        ids = list(ids)
        if enabled:
            present = self.sync_read_positions(ids, check_status=False)
            self.sync_write_goals(present)
        for sid in ids:
            # a faulted servo still answers with its error bits set; that must not stop torque changes
            self.write(sid, ct.TORQUE_ENABLE, int(enabled), check_status=False)

    def release_all(self) -> None:
        """Best-effort torque off for every servo: one broadcast, then each known ID (broadcasts are unacknowledged)."""
        if not self.is_open:
            return
        self._port.is_using = False
        with self._port_errors():
            self._packets.write1ByteTxOnly(ct.BROADCAST_ID, ct.TORQUE_ENABLE.address, 0)
        for sid in sorted(self._known_ids):
            try:
                self.write(sid, ct.TORQUE_ENABLE, 0, check_status=False)
            except ProtocolError:
                pass

    @contextmanager
    def torque_disabled(self, ids: Iterable[int] | None = None) -> Iterator[None]:
        """Torque off inside the block (to move a servo by hand), back on (without a jump) after it."""
        ids = sorted(self._known_ids) if ids is None else list(ids)
        self.set_torque(ids, False)
        try:
            yield
        finally:
            self.set_torque(ids, True)
