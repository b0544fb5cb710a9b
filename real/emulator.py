"""A virtual STS servo bus on a pseudo-terminal, so the real vendor SDK and driver run without hardware.

`os.openpty()` gives a master/slave pair: clients open the slave path (/dev/pts/N) as a serial port and
the emulator answers on the master the way a chain of STS servos answers on the wire: PING, READ, WRITE,
REG_WRITE/ACTION, SYNC READ (each servo in turn) and SYNC WRITE (no answer). Each servo keeps its own
control table; goal positions are reached with the servo's speed and acceleration limits, advanced in
real time. Faults can be injected while it runs (dropped replies, bad checksums, unplugged IDs, an
overloaded (stalled) servo, forced status bits, replies rewritten by a test); `Faults` is the one
mechanism, which the bus tests, the soak (facetwin.real.soak) and the packet fuzzing all drive.

Behaviour choices (documented because the STS3032 data sheet does not pin them down):
- a goal outside the EEPROM angle limits is clamped to them (no error bit), and counted in
  `goals_outside_limits`: the host must never rely on this clamp, so the tests assert the count stays 0;
- an instruction whose answer would exceed the 250-byte packet limit gets no answer (as for an unknown
  instruction); malformed instructions never stop the emulator;
- torque off leaves the goal register alone, so enabling torque drives to the old goal (the driver
  writes goal = present before enabling, as it must on hardware);
- an overloaded servo stalls and reports OVERLOAD while torque is on, and does NOT release itself:
  stopping is the host's job, which the safety layer's tests rely on;
- replies are delayed by `reply_latency_s` plus the request's and their bytes' time on the wire at
  `baudrate` (8N1); an unanswered packet holds the bus for its own bytes' time.
"""

from __future__ import annotations

import os
import random
import select
import threading
import time
import tty
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from facetwin.real import control_table as ct
from facetwin.real.calibration import Calibration
from facetwin.real.control_table import Instruction, StatusError
from facetwin.real.protocol import MAX_LENGTH, Packet, PacketParser, encode_status


@dataclass
class Faults:
    """What goes wrong on the virtual bus; mutate it while the emulator runs."""

    drop_probability: float = 0.0  # each reply is lost with this probability
    corrupt_probability: float = 0.0  # each reply's checksum is wrong with this probability
    unplugged: set[int] = field(default_factory=set)  # IDs that never answer
    overload: set[int] = field(default_factory=set)  # IDs that stall and report OVERLOAD while torque is on
    status_bits: dict[int, StatusError] = field(default_factory=dict)  # forced bits, e.g. {5: OVERHEAT}
    corrupt_ids: set[int] = field(default_factory=set)  # IDs whose every reply has a bad checksum (one bad lead)
    garble: Callable[[bytes], bytes] | None = None  # rewrites each reply before it goes out (fuzzing the driver)
    seed: int | None = 0


@dataclass(frozen=True)
class ServoPhysics:
    # About 50 rpm, the no-load speed of the 7.4 V STS servos; the STS3032 is of the same order.
    max_speed: float = 3400.0  # ticks/s when goal speed is 0
    max_acceleration: float = 25_400.0  # ticks/s^2 when acceleration is 0 (254 x 100)
    voltage_dv: int = 60  # 6.0 V supply
    temperature_c: int = 32


class _Servos:
    """The state of every emulated servo: raw control-table bytes plus vectorised dynamics."""

    def __init__(self, ids: list[int], positions: np.ndarray, limits: np.ndarray, model_number: int, physics: ServoPhysics):
        self.ids = list(ids)
        self.slot = {sid: i for i, sid in enumerate(self.ids)}
        n = len(self.ids)
        self.physics = physics
        self.mem = [bytearray(ct.TABLE_SIZE) for _ in range(n)]
        self.pos = positions.astype(np.float64).copy()
        self.vel = np.zeros(n)
        self.stalled = np.zeros(n, dtype=bool)
        self.pending: list[tuple[int, bytes] | None] = [None] * n  # REG_WRITE, applied by ACTION
        self.goals_outside_limits = 0  # goals received beyond the EEPROM limits (then clamped)
        self.last_goal_outside: tuple[int, int, int, int] | None = None  # (id, goal, min, max)
        for i, sid in enumerate(self.ids):
            self._put(i, ct.MODEL_NUMBER, model_number)
            self._put(i, ct.ID, sid)
            self._put(i, ct.MIN_ANGLE_LIMIT, int(limits[i, 0]))
            self._put(i, ct.MAX_ANGLE_LIMIT, int(limits[i, 1]))
            self._put(i, ct.MAX_TEMPERATURE, 70)
            self._put(i, ct.MAX_VOLTAGE, 80)
            self._put(i, ct.MIN_VOLTAGE, 40)
            self._put(i, ct.MAX_TORQUE, 1000)
            self._put(i, ct.P_COEFFICIENT, 32)
            self._put(i, ct.GOAL_POSITION, int(round(self.pos[i])))
            self._put(i, ct.LOCK, 1)
            self._put(i, ct.PRESENT_VOLTAGE, physics.voltage_dv)
            self._put(i, ct.PRESENT_TEMPERATURE, physics.temperature_c)
            self._publish(i)

    # -- raw table ------------------------------------------------------------------------------
    def _put(self, i: int, reg: ct.Register, value: int) -> None:
        self.mem[i][reg.address : reg.address + reg.size] = ct.encode_value(reg, value)

    def get(self, i: int, reg: ct.Register) -> int:
        return ct.decode_value(reg, self.mem[i][reg.address : reg.address + reg.size])

    def read(self, i: int, address: int, length: int) -> bytes:
        self._publish(i)
        return bytes(self.mem[i][address : address + length]).ljust(length, b"\0")

    def write(self, i: int, address: int, data: bytes) -> None:
        locked = self.get(i, ct.LOCK) == 1
        for offset, byte in enumerate(data):
            a = address + offset
            reg = next((r for r in ct.REGISTERS if a in r.span), None)
            if a >= ct.TABLE_SIZE or (reg is not None and not reg.writable):
                continue
            if reg is not None and reg.eeprom and locked:
                continue  # like the firmware: EEPROM needs the lock cleared first
            self.mem[i][a] = byte
        lo, hi = self.get(i, ct.MIN_ANGLE_LIMIT), self.get(i, ct.MAX_ANGLE_LIMIT)
        goal = self.get(i, ct.GOAL_POSITION)
        if hi > lo and not lo <= goal <= hi:
            if address < ct.GOAL_POSITION.address + ct.GOAL_POSITION.size and address + len(data) > ct.GOAL_POSITION.address:
                self.goals_outside_limits += 1
                self.last_goal_outside = (self.ids[i], goal, lo, hi)
            self._put(i, ct.GOAL_POSITION, int(np.clip(goal, lo, hi)))

    def _publish(self, i: int) -> None:
        """Copy the dynamic state into the present-value registers."""
        torque = self.get(i, ct.TORQUE_ENABLE) == 1
        speed = int(round(self.vel[i]))
        if self.stalled[i] and torque:
            load = 1000
        elif torque:
            load = int(min(1000, 80 + 400 * abs(self.vel[i]) / self.physics.max_speed))
        else:
            load = 0
        self._put(i, ct.PRESENT_POSITION, int(round(self.pos[i])))
        self._put(i, ct.PRESENT_SPEED, speed)
        self._put(i, ct.PRESENT_LOAD, load)
        self._put(i, ct.MOVING, int(abs(self.vel[i]) > 1.0))
        self._put(i, ct.PRESENT_CURRENT, load // 2)

    # -- dynamics -------------------------------------------------------------------------------
    def advance(self, dt: float, overloaded: set[int]) -> None:
        """Trapezoidal moves towards each goal: speed- and acceleration-limited, stopping on the goal."""
        if dt <= 0:
            return
        n = len(self.ids)
        goal = np.array([self.get(i, ct.GOAL_POSITION) for i in range(n)], dtype=np.float64)
        speed = np.array([abs(self.get(i, ct.GOAL_SPEED)) for i in range(n)], dtype=np.float64)
        acc = np.array([self.get(i, ct.ACCELERATION) for i in range(n)], dtype=np.float64) * 100.0
        torque = np.array([self.get(i, ct.TORQUE_ENABLE) == 1 for i in range(n)])
        self.stalled = np.array([sid in overloaded for sid in self.ids]) & torque
        vmax = np.where(speed > 0, np.minimum(speed, self.physics.max_speed), self.physics.max_speed)
        amax = np.where(acc > 0, np.minimum(acc, self.physics.max_acceleration), self.physics.max_acceleration)
        active = torque & ~self.stalled
        steps = max(1, int(np.ceil(dt / 0.002)))
        h = dt / steps
        for _ in range(steps):
            err = goal - self.pos
            v_want = np.clip(np.sign(err) * np.sqrt(2.0 * amax * np.abs(err)), -vmax, vmax)
            self.vel = self.vel + np.clip(v_want - self.vel, -amax * h, amax * h)
            new = self.pos + self.vel * h
            crossed = np.sign(goal - new) != np.sign(err)
            settle = crossed | ((np.abs(err) < 0.5) & (np.abs(self.vel) < amax * h))
            new = np.where(settle, goal, new)
            self.vel = np.where(settle, 0.0, self.vel)
            self.pos = np.where(active, new, self.pos)
            self.vel = np.where(active, self.vel, 0.0)

    def present(self) -> np.ndarray:
        return np.rint(self.pos).astype(np.int64)


class ServoEmulator:
    """N emulated STS servos behind a pty. `port` is the path a client opens (at any baud rate)."""

    def __init__(
        self,
        ids: Iterable[int] | None = None,
        *,
        calibration: Calibration | None = None,
        model_number: int = ct.DEFAULT_MODEL_NUMBER,
        baudrate: int = 1_000_000,
        faults: Faults | None = None,
        physics: ServoPhysics = ServoPhysics(),
        reply_latency_s: float = 50e-6,
        on_positions: Callable[[np.ndarray], None] | None = None,
        positions_period_s: float = 0.05,
    ):
        self.calibration = calibration if calibration is not None else Calibration.from_spec()
        cal_ids = list(self.calibration.ids)
        ids = cal_ids if ids is None else list(ids)
        positions = np.full(len(ids), float(ct.CENTRE_TICKS))
        limits = np.tile([0, ct.TICKS_PER_REV - 1], (len(ids), 1))
        for j, sid in enumerate(ids):
            if sid in cal_ids:  # start at neutral, with the calibrated limits burnt into EEPROM
                s = self.calibration.servos[cal_ids.index(sid)]
                positions[j], limits[j] = s.neutral_ticks, (s.min_ticks, s.max_ticks)
        self.servos = _Servos(ids, positions, limits, model_number, physics)
        self.baudrate = baudrate
        self.faults = faults if faults is not None else Faults()
        self.reply_latency_s = reply_latency_s
        self.on_positions = on_positions
        self.positions_period_s = positions_period_s
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._notifier: threading.Thread | None = None
        self._notify = threading.Condition()
        self._last_t = time.monotonic()
        self.master_fd, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)  # no echo, no line editing: bytes pass through untouched
        self.port = os.ttyname(self.slave_fd)
        self.packets_seen = 0
        self.replies_dropped = 0
        self.replies_corrupted = 0
        self._parser = PacketParser()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ServoEmulator:
        """Serve in a background thread (tests, `--port virtual`)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve_forever, name="sts-emulator", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop()` (or Ctrl-C, which propagates)."""
        self._start_notifier()
        last_notify = 0.0
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self.master_fd], [], [], 0.01)
                self._advance()
                if ready:
                    try:
                        data = os.read(self.master_fd, 4096)
                    except OSError:
                        break
                    self.feed(data)
                if self.on_positions is not None and time.monotonic() - last_notify >= self.positions_period_s:
                    last_notify = time.monotonic()
                    with self._notify:
                        self._notify.notify()
        finally:
            self._stop.set()
            with self._notify:
                self._notify.notify()

    def stop(self) -> None:
        self._stop.set()
        for t in (self._thread, self._notifier):
            if t is not None and t is not threading.current_thread():
                t.join(timeout=2.0)
        for fd in (self.master_fd, self.slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> ServoEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def feed(self, data: bytes) -> None:
        """Bytes as they come off the wire: every whole instruction in them is handled and answered on the pty.
        `serve_forever` calls this; a test may call it directly (with something reading `slave_fd`)."""
        for packet in self._parser.feed(data):
            self._handle(packet)

    # -- inspection (tests, the twin hook) ------------------------------------------------------
    @property
    def goals_outside_limits(self) -> int:
        """Goal positions received beyond a servo's EEPROM angle limits (calibrated limits): must stay 0."""
        return self.servos.goals_outside_limits

    def positions(self) -> dict[int, int]:
        with self._lock:
            self._advance()
            return dict(zip(self.servos.ids, self.servos.present().tolist()))

    def register(self, servo_id: int, reg: ct.Register) -> int:
        with self._lock:
            self._advance()
            i = self.servos.slot[servo_id]
            self.servos._publish(i)
            return self.servos.get(i, reg)

    def torque_enabled(self, servo_id: int) -> bool:
        return self.register(servo_id, ct.TORQUE_ENABLE) == 1

    def torques(self) -> dict[int, bool]:
        """Every servo's torque-enable flag at once (no dynamics step: cheap enough to ask every tick)."""
        with self._lock:
            return {sid: self.servos.get(i, ct.TORQUE_ENABLE) == 1 for sid, i in self.servos.slot.items()}

    def commands(self) -> np.ndarray:
        """Present positions as normalised commands in the spec's order (what the twin hook receives)."""
        pos = self.positions()
        # a calibrated servo this bus does not emulate reads as sitting at neutral
        ticks = [pos.get(sid, neutral) for sid, neutral in zip(self.calibration.ids, self.calibration.neutral_ticks)]
        return self.calibration.to_commands(np.array(ticks))

    # -- internals ------------------------------------------------------------------------------
    def _start_notifier(self) -> None:
        if self.on_positions is None or self._notifier is not None:
            return

        # The hook (e.g. stepping the MuJoCo twin) may be slow; it runs on its own thread so bus replies
        # never wait for it, and it always gets the latest positions, skipping stale ones.
        def loop() -> None:
            while not self._stop.is_set():
                with self._notify:
                    self._notify.wait(timeout=0.5)
                if self._stop.is_set():
                    return
                self.on_positions(self.commands())

        self._notifier = threading.Thread(target=loop, name="sts-emulator-twin", daemon=True)
        self._notifier.start()

    def _advance(self) -> None:
        with self._lock:
            now = time.monotonic()
            self.servos.advance(now - self._last_t, self.faults.overload)
            self._last_t = now

    def _status(self, i: int) -> StatusError:
        sid = self.servos.ids[i]
        bits = StatusError(self.faults.status_bits.get(sid, StatusError.NONE))
        if self.servos.stalled[i]:
            bits |= StatusError.OVERLOAD
        return bits

    def _present(self, servo_id: int) -> int | None:
        if servo_id in self.faults.unplugged:
            return None
        return self.servos.slot.get(servo_id)

    def _targets(self, servo_id: int) -> list[int]:
        if servo_id == ct.BROADCAST_ID:
            return [i for sid, i in self.servos.slot.items() if sid not in self.faults.unplugged]
        i = self._present(servo_id)
        return [] if i is None else [i]

    def _handle(self, p: Packet) -> None:
        self.packets_seen += 1
        replies: list[bytes] = []
        with self._lock:
            ins, prm = p.code, p.params
            if ins == Instruction.SYNC_WRITE and len(prm) >= 2:
                address, size = prm[0], prm[1]
                for k in range(2, len(prm) - size, size + 1):
                    i = self._present(prm[k])
                    if i is not None:
                        self.servos.write(i, address, prm[k + 1 : k + 1 + size])
            elif ins == Instruction.SYNC_READ and len(prm) >= 2:
                address, size = prm[0], prm[1]
                for sid in prm[2:] if size + 6 <= MAX_LENGTH else ():
                    i = self._present(sid)
                    if i is not None:
                        replies.append(encode_status(sid, self._status(i), self.servos.read(i, address, size)))
            elif ins == Instruction.ACTION:
                for i in self._targets(p.servo_id):
                    if self.servos.pending[i] is not None:
                        address, data = self.servos.pending[i]
                        self.servos.write(i, address, data)
                        self.servos.pending[i] = None
            else:
                for i in self._targets(p.servo_id):
                    data = b""
                    if ins == Instruction.READ and len(prm) == 2:
                        if prm[1] + 6 > MAX_LENGTH:
                            continue  # no servo can answer that in one packet: it stays silent
                        data = self.servos.read(i, prm[0], prm[1])
                    elif ins == Instruction.WRITE and len(prm) >= 2:
                        self.servos.write(i, prm[0], prm[1:])
                    elif ins == Instruction.REG_WRITE and len(prm) >= 2:
                        self.servos.pending[i] = (prm[0], bytes(prm[1:]))
                    elif ins not in (Instruction.PING, Instruction.RESET):
                        continue  # unknown instruction: a servo stays silent
                    if not p.is_broadcast:
                        replies.append(encode_status(self.servos.ids[i], self._status(i), data))
        self._reply(replies, request_bytes=len(p.params) + 6)

    def _reply(self, replies: list[bytes], request_bytes: int) -> None:
        out = bytearray()
        faults = self.faults
        for r in replies:
            if self._rng.random() < faults.drop_probability:
                self.replies_dropped += 1
                continue
            if r[2] in faults.corrupt_ids or self._rng.random() < faults.corrupt_probability:
                self.replies_corrupted += 1
                r = r[:-1] + bytes([r[-1] ^ 0x5A])
            if faults.garble is not None:
                r = bytes(faults.garble(r))
            out += r
        # The request's and the replies' bytes take 10 bit-times each on a real 8N1 wire; an unanswered
        # packet (sync write) still occupies the bus before the next one can arrive.
        delay = (self.reply_latency_s if replies else 0.0) + (request_bytes + len(out)) * 10.0 / self.baudrate
        if delay > 0:
            time.sleep(delay)
        if out:
            try:
                os.write(self.master_fd, bytes(out))
            except OSError:
                pass
