"""The Feetech STS (STS3032 / STS3215 family) control table, instruction set and status bits, as data.

Nothing here talks to a port: the emulator, the bus driver and the tests all read these records, so an
address is written down once. Multi-byte fields are little-endian on the STS/SMS family (the older SCS
family is big-endian). Signed fields use sign-magnitude with the sign in `sign_bit`, not two's complement.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

BROADCAST_ID = 0xFE
MAX_SERVO_ID = 0xFD  # 253: IDs 0..253 address one servo each; 254 is broadcast
TABLE_SIZE = 128  # bytes of memory per servo the emulator keeps (the STS table ends below 0x50)
TICKS_PER_REV = 4096
CENTRE_TICKS = 2048

# Feetech's model numbers are (variant << 8) | series; series 9 is STS (777 = 0x0309 is the STS3215 as in
# LeRobot's table; 2825 = 0x0B09 the STS3250). No public source read here gives the STS3032's number, so
# the emulator answers 777 and the driver only reports model numbers, never rejects on them.
DEFAULT_MODEL_NUMBER = 777


class Instruction(IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    RESET = 0x06
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83


class StatusError(IntFlag):
    """The ERR byte of a status packet (bits as the vendor SDK's ERRBIT_* constants)."""

    NONE = 0
    VOLTAGE = 0x01  # supply outside the EEPROM min/max voltage
    ANGLE = 0x02  # angle sensor fault / goal outside the angle limits
    OVERHEAT = 0x04
    OVERELE = 0x08  # over-current ("overele" in the vendor's naming)
    OVERLOAD = 0x20

    def describe(self) -> str:
        names = [flag.name.lower() for flag in StatusError if flag and flag in self]
        return ", ".join(names) if names else "none"


# Any of these in a status packet means the servo is hurting itself or its linkage: motion stops.
STOP_BITS = StatusError.VOLTAGE | StatusError.ANGLE | StatusError.OVERHEAT | StatusError.OVERELE | StatusError.OVERLOAD


class Mode(IntEnum):
    POSITION = 0
    WHEEL = 1
    PWM = 2
    STEP = 3


@dataclass(frozen=True)
class Register:
    name: str
    address: int
    size: int  # bytes: 1 or 2
    eeprom: bool  # persistent (write needs the lock at 55 cleared); RAM otherwise
    writable: bool = True
    sign_bit: int | None = None  # sign-magnitude sign bit, when the field is signed

    @property
    def span(self) -> range:
        return range(self.address, self.address + self.size)


# -- EEPROM ------------------------------------------------------------------------------------------
MODEL_NUMBER = Register("model_number", 3, 2, eeprom=True, writable=False)
ID = Register("id", 5, 1, eeprom=True)
BAUD_RATE = Register("baud_rate", 6, 1, eeprom=True)
RETURN_DELAY = Register("return_delay", 7, 1, eeprom=True)  # 2 us units
MIN_ANGLE_LIMIT = Register("min_angle_limit", 9, 2, eeprom=True)
MAX_ANGLE_LIMIT = Register("max_angle_limit", 11, 2, eeprom=True)
MAX_TEMPERATURE = Register("max_temperature", 13, 1, eeprom=True)
MAX_VOLTAGE = Register("max_voltage", 14, 1, eeprom=True)  # 0.1 V
MIN_VOLTAGE = Register("min_voltage", 15, 1, eeprom=True)
MAX_TORQUE = Register("max_torque", 16, 2, eeprom=True)  # 0.1 % of stall
P_COEFFICIENT = Register("p_coefficient", 21, 1, eeprom=True)
D_COEFFICIENT = Register("d_coefficient", 22, 1, eeprom=True)
I_COEFFICIENT = Register("i_coefficient", 23, 1, eeprom=True)
POSITION_OFFSET = Register("position_offset", 31, 2, eeprom=True, sign_bit=11)
MODE = Register("mode", 33, 1, eeprom=True)
# -- RAM ---------------------------------------------------------------------------------------------
TORQUE_ENABLE = Register("torque_enable", 40, 1, eeprom=False)
ACCELERATION = Register("acceleration", 41, 1, eeprom=False)  # x100 ticks/s^2, 0 = the servo's maximum
GOAL_POSITION = Register("goal_position", 42, 2, eeprom=False, sign_bit=15)
GOAL_TIME = Register("goal_time", 44, 2, eeprom=False)
GOAL_SPEED = Register("goal_speed", 46, 2, eeprom=False, sign_bit=15)  # ticks/s, 0 = the servo's maximum
LOCK = Register("lock", 55, 1, eeprom=False)
PRESENT_POSITION = Register("present_position", 56, 2, eeprom=False, writable=False, sign_bit=15)
PRESENT_SPEED = Register("present_speed", 58, 2, eeprom=False, writable=False, sign_bit=15)
PRESENT_LOAD = Register("present_load", 60, 2, eeprom=False, writable=False, sign_bit=10)
PRESENT_VOLTAGE = Register("present_voltage", 62, 1, eeprom=False, writable=False)  # 0.1 V
PRESENT_TEMPERATURE = Register("present_temperature", 63, 1, eeprom=False, writable=False)  # deg C
MOVING = Register("moving", 66, 1, eeprom=False, writable=False)
PRESENT_CURRENT = Register("present_current", 69, 2, eeprom=False, writable=False)

REGISTERS: tuple[Register, ...] = (
    MODEL_NUMBER, ID, BAUD_RATE, RETURN_DELAY, MIN_ANGLE_LIMIT, MAX_ANGLE_LIMIT, MAX_TEMPERATURE,
    MAX_VOLTAGE, MIN_VOLTAGE, MAX_TORQUE, P_COEFFICIENT, D_COEFFICIENT, I_COEFFICIENT, POSITION_OFFSET,
    MODE, TORQUE_ENABLE, ACCELERATION, GOAL_POSITION, GOAL_TIME, GOAL_SPEED, LOCK, PRESENT_POSITION,
    PRESENT_SPEED, PRESENT_LOAD, PRESENT_VOLTAGE, PRESENT_TEMPERATURE, MOVING, PRESENT_CURRENT,
)  # fmt: skip

# The goal block a position sync write carries per servo: acceleration, goal position, goal time, goal speed.
GOAL_BLOCK_ADDRESS = ACCELERATION.address
GOAL_BLOCK_SIZE = GOAL_SPEED.address + GOAL_SPEED.size - ACCELERATION.address  # 7

# Baud-rate codes (register 6) -> bits per second.
BAUD_CODES = {0: 1_000_000, 1: 500_000, 2: 250_000, 3: 128_000, 4: 115_200, 5: 76_800, 6: 57_600, 7: 38_400}


def register_named(name: str) -> Register:
    for reg in REGISTERS:
        if reg.name == name:
            return reg
    raise KeyError(f"no STS register named {name!r}; known: {', '.join(r.name for r in REGISTERS)}")


def encode_value(register: Register, value: int) -> bytes:
    """A host integer -> the register's little-endian bytes (sign-magnitude for signed fields)."""
    value = int(value)
    if register.sign_bit is not None and value < 0:
        value = (-value) | (1 << register.sign_bit)
    if not 0 <= value < (1 << (8 * register.size)):
        raise ValueError(f"{value} does not fit {register.name} ({register.size} byte(s))")
    return value.to_bytes(register.size, "little")


def decode_value(register: Register, data: bytes | bytearray) -> int:
    """The register's bytes -> a host integer."""
    if len(data) != register.size:
        raise ValueError(f"{register.name} is {register.size} byte(s), got {len(data)}")
    value = int.from_bytes(bytes(data), "little")
    if register.sign_bit is not None and value & (1 << register.sign_bit):
        value = -(value & ((1 << register.sign_bit) - 1))
    return value
