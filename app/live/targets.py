"""Where the live loop's commands go: the MuJoCo twin, or the servo bus through the real bridge.

``open_target("sim" | "virtual" | PORT)``:
- ``sim``: the twin holds each command and advances its physics by the frame's own time, so the skin
  lags and overshoots as it would in real time (``apply`` would settle fully every frame instead);
- ``virtual``: an in-process emulated STS bus, driven through ``FaceRobot`` and its safety layer;
- a serial device path: the physical face, with its calibration file.
A robot target can mirror its measured positions onto a twin, for the side-by-side video and readout.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facetwin.expression import Expression

SIM = "sim"
VIRTUAL = "virtual"
MAX_FRAME_DT_S = 0.25  # a stall (or the first frame) must not run seconds of physics in one go


class TargetError(RuntimeError):
    """The target cannot be opened or stopped mid-run (bad port, missing calibration, servo fault)."""


class TwinTarget:
    kind = SIM

    def __init__(self, twin):
        self.twin = twin
        self.sent = 0

    def send(self, command: np.ndarray, dt: float) -> None:
        self.twin.set_command(np.clip(command, -1.0, 1.0))
        self.twin.step(physics_steps(dt, self.twin.timestep))
        self.sent += 1

    def readout(self) -> Expression | None:
        return self.twin.expression()

    def render(self, size: tuple[int, int]) -> np.ndarray | None:
        return self.twin.render(size)

    def close(self) -> None:
        self.twin.close()


class RobotTarget:
    kind = "robot"

    def __init__(self, robot, *, emulator=None, mirror=None):
        self.robot, self.emulator, self.mirror = robot, emulator, mirror
        self.sent = 0
        self.measured: np.ndarray | None = None

    def send(self, command: np.ndarray, dt: float) -> None:
        from facetwin.real.protocol import ProtocolError
        from facetwin.real.safety import SafetyStop

        try:
            self.measured = self.robot.send(command)
        except (ProtocolError, SafetyStop) as exc:
            raise TargetError(str(exc)) from exc
        self.sent += 1
        if self.mirror is not None:
            self.mirror.set_command(np.clip(self.measured, -1.0, 1.0))
            self.mirror.step(physics_steps(dt, self.mirror.timestep))

    def readout(self) -> Expression | None:
        return self.mirror.expression() if self.mirror is not None else None

    def render(self, size: tuple[int, int]) -> np.ndarray | None:
        return self.mirror.render(size) if self.mirror is not None else None

    def close(self) -> None:
        try:
            self.robot.close()  # releases torque
        finally:
            if self.emulator is not None:
                self.emulator.stop()
            if self.mirror is not None:
                self.mirror.close()


def physics_steps(dt: float, timestep: float) -> int:
    return max(1, int(round(min(max(dt, 0.0), MAX_FRAME_DT_S) / timestep)))


def open_target(text: str, *, calibration: str | os.PathLike | None = None, mirror: bool = False,
                bundle: str | os.PathLike | None = None, spec=None) -> TwinTarget | RobotTarget:
    """Open the target named on the command line; ``mirror`` adds a twin to a robot target. ``spec``: the
    face (a `facetwin.spec.FaceSpec`; the default face when None)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    if text == SIM:
        from facetwin.sim.twin import FaceTwin

        return TwinTarget(FaceTwin(spec, bundle=bundle))
    from facetwin.real.calibration import Calibration, CalibrationError, default_calibration_path
    from facetwin.real.protocol import ProtocolError
    from facetwin.real.robot import FaceRobot
    from facetwin.real.safety import SafetyStop
    from facetwin.spec import default_spec

    if text != VIRTUAL and not Path(text).exists():
        raise TargetError(f"target {text!r}: no such serial device; pass '{SIM}', '{VIRTUAL}' or a port such as "
                          "/dev/ttyUSB0 (`facetwin real scan --port PORT` lists the servos)")
    spec = spec or default_spec()
    emulator = None
    try:
        if text == VIRTUAL and calibration is None:
            cal = Calibration.from_spec(spec)
        else:
            cal = Calibration.load(calibration or default_calibration_path(spec), spec)
    except CalibrationError as exc:
        raise TargetError(str(exc)) from exc
    # Built before the robot connects: once it does, a pause in commands over watchdog_s sends it home.
    twin = None
    if mirror:
        from facetwin.sim.twin import FaceTwin

        twin = FaceTwin(spec, bundle=bundle)
    if text == VIRTUAL:
        from facetwin.real.emulator import ServoEmulator

        emulator = ServoEmulator(calibration=cal).start()
        port = emulator.port
    else:
        port = text
    robot = FaceRobot(port, cal)
    try:
        robot.connect()
    except (ProtocolError, SafetyStop, OSError) as exc:
        robot.close()
        if emulator is not None:
            emulator.stop()
        if twin is not None:
            twin.close()
        raise TargetError(f"cannot drive the servos on {port}: {exc}") from exc
    return RobotTarget(robot, emulator=emulator, mirror=twin)
