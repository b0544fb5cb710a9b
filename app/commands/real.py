"""`facetwin real ...`: the physical face (or its emulated bus) from the command line.

    facetwin real scan --port /dev/ttyUSB0             which servo IDs answer, with model numbers
    facetwin real emulate [--overload 16 ...]           a virtual bus on a pty; prints /dev/pts/N
    facetwin real calibrate --port P [--from-spec]      jog and mark each servo, save the calibration
    facetwin real pose smile --port P [--dry-run]       glide to a named pose, hold, glide back, release
    facetwin real play DATASET --port P [--dry-run]     replay a LeRobot-style dataset's `action` column
    facetwin real collect --port P --episodes N --out DIR [--camera webcam:N|twin]
                                                        expert episodes on the servos, seen by a camera

`--port virtual` runs an in-process emulator instead of hardware.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

from facetwin.app.cli import CLIError
from facetwin.app.face_option import add_face_option, dataset_face_spec, face_spec

VIRTUAL = "virtual"


def register(subparsers) -> None:
    parser = subparsers.add_parser("real", help="drive the servo bus: scan, emulate, calibrate, pose, play, collect, mimic",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="real_command", metavar="ACTION")
    sub.required = True

    def common(p: argparse.ArgumentParser, *, port_required: bool = True, recorded_by: str | None = None) -> None:
        p.add_argument("--port", required=port_required, help="serial port (/dev/ttyUSB0, /dev/pts/N) or 'virtual'")
        p.add_argument("--baudrate", type=int, default=None, help="bus baud rate (default: the face spec's)")
        p.add_argument("--calibration", type=Path, default=None,
                       help="calibration YAML (default: $FACETWIN_CALIBRATION_DIR or ~/.config/facetwin/calibration_<robot>.yaml)")
        add_face_option(p, recorded_by=recorded_by)

    p = sub.add_parser("scan", help="ping servo IDs and list those that answer")
    common(p)
    p.add_argument("--ids", default="1-30", help="IDs to ping: '1-30', '1,2,16' or 'all' (0-253)")
    p.set_defaults(func=_scan)

    p = sub.add_parser("emulate", help="run a virtual STS bus on a pty until Ctrl-C")
    p.add_argument("--calibration", type=Path, default=None, help="place the servos per this calibration (default: from the spec)")
    p.add_argument("--drop", type=float, default=0.0, help="probability that a reply is lost")
    p.add_argument("--corrupt", type=float, default=0.0, help="probability that a reply has a bad checksum")
    p.add_argument("--unplug", default="", help="IDs that never answer, e.g. '5,16'")
    p.add_argument("--overload", default="", help="IDs that stall and report overload once torque is on")
    p.add_argument("--twin", action="store_true", help="mirror the emulated positions on the MuJoCo twin")
    add_face_option(p)
    p.set_defaults(func=_emulate)

    p = sub.add_parser("calibrate", help="jog each servo and mark neutral and limits (or --from-spec)")
    common(p, port_required=False)
    p.add_argument("--from-spec", action="store_true", help="write a first calibration from the face spec, no jogging")
    p.add_argument("--servo", action="append", default=None, help="calibrate only this servo (repeatable)")
    p.add_argument("--step", type=int, default=10, help="ticks per + / - jog")
    p.set_defaults(func=_calibrate)

    p = sub.add_parser("pose", help="glide to a named pose, hold it, glide back to neutral")
    common(p, port_required=False)
    p.add_argument("name", help="pose name (see facetwin.motion.poses), e.g. smile")
    p.add_argument("--hold", type=float, default=2.0, help="seconds to hold the pose")
    p.add_argument("--dry-run", action="store_true", help="print the goal ticks; open no port")
    p.set_defaults(func=_pose)

    p = sub.add_parser("play", help="replay a dataset's action column at its fps")
    common(p, port_required=False, recorded_by="the dataset")
    p.add_argument("dataset", type=Path, help="LeRobot v3.0 dataset folder, as `facetwin collect` writes one")
    p.add_argument("--episode", type=int, default=None, help="only this episode_index")
    p.add_argument("--dry-run", action="store_true", help="step through the actions without a port")
    p.set_defaults(func=_play)

    p = sub.add_parser("collect", help="record expert episodes on the servos, the face read by a camera")
    common(p)
    p.add_argument("--episodes", type=int, required=True, help="episodes in the dataset when done (with --resume: total)")
    p.add_argument("--out", type=Path, required=True, help="dataset directory to write")
    p.add_argument("--camera", default=None,
                   help="'webcam:N', or 'twin': a perturbed twin mirroring the servos (default with --port virtual)")
    p.add_argument("--perturb-seed", type=int, default=0, help="twin camera: which perturbed robot (-1: the nominal twin)")
    p.add_argument("--render-size", type=int, default=384, help="twin camera: render size in px")
    p.add_argument("--fps", type=int, default=10, help="frames per second (render + landmarker must fit in a frame)")
    p.add_argument("--frames-per-episode", type=int, default=60)
    p.add_argument("--seed", type=int, default=0, help="expert strategy seed")
    p.add_argument("--resume", action="store_true", help="continue an interrupted collection in --out")
    p.set_defaults(func=_collect)

    p = sub.add_parser("mimic", help="a person's face drives the servos (facetwin mimic --target PORT)")
    p.add_argument("--port", required=True, metavar="PORT|virtual", help="serial port of the bus, or virtual")
    from facetwin.app.commands import mimic as mimic_command

    mimic_command.add_arguments(p, target=False)
    p.set_defaults(func=_mimic)


# -- helpers ---------------------------------------------------------------------------------------
def _ids(text: str) -> list[int]:
    if not text:
        return []
    if text == "all":
        return list(range(0, 254))
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            out.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    except ValueError:
        raise CLIError(f"cannot read IDs {text!r}; use e.g. '1-25' or '5,16'") from None
    return out


def _load_calibration(args, spec):
    from facetwin.real.calibration import Calibration, CalibrationError, default_calibration_path

    if args.calibration is None and getattr(args, "port", None) == VIRTUAL:
        return Calibration.from_spec(spec)
    path = args.calibration or default_calibration_path(spec)
    try:
        return Calibration.load(path, spec)
    except CalibrationError as exc:
        raise CLIError(str(exc)) from exc


@contextlib.contextmanager
def _port(args, calibration):
    """Yields the port to open: the given one, or an in-process emulator's for 'virtual'."""
    if args.port != VIRTUAL:
        yield args.port
        return
    from facetwin.real.emulator import ServoEmulator

    with ServoEmulator(calibration=calibration) as emu:
        yield emu.port


@contextlib.contextmanager
def _robot(args, calibration):
    from facetwin.real.protocol import ProtocolError
    from facetwin.real.robot import FaceRobot
    from facetwin.real.safety import SafetyConfig, SafetyStop

    dry = bool(getattr(args, "dry_run", False))
    if not dry and not args.port:
        raise CLIError("--port is required (a serial port, or 'virtual'); or pass --dry-run")
    with _port(args, calibration) if not dry else contextlib.nullcontext(None) as port:
        robot = FaceRobot(port, calibration, safety=SafetyConfig(dry_run=dry), baudrate=args.baudrate)
        try:
            with robot:
                yield robot
        except (ProtocolError, SafetyStop) as exc:
            raise CLIError(str(exc)) from exc


# -- actions ---------------------------------------------------------------------------------------
def _scan(args) -> int:
    from facetwin.real.bus import ServoBus
    from facetwin.real.calibration import Calibration
    from facetwin.real.protocol import ProtocolError

    spec = face_spec(args)
    by_id = {s.bus_id: s.name for s in spec.servos}
    try:
        with _port(args, Calibration.from_spec(spec)) as port, \
                ServoBus(port, args.baudrate or spec.baudrate, release_torque_on_close=False) as bus:
            found = bus.scan(_ids(args.ids))
    except ProtocolError as exc:
        raise CLIError(str(exc)) from exc
    for info in found:
        print(f"ID {info.servo_id:3d}  model {info.model_number:5d}  {by_id.get(info.servo_id, '(not in the face spec)')}")
    absent = [f"{name} (ID {sid})" for sid, name in by_id.items() if sid in _ids(args.ids) and sid not in {f.servo_id for f in found}]
    print(f"{len(found)} servo(s) answered" + (f"; missing from the face spec: {', '.join(absent)}" if absent else ""))
    return 0


def _emulate(args) -> int:
    from facetwin.real.calibration import Calibration
    from facetwin.real.emulator import Faults, ServoEmulator

    spec = face_spec(args)
    calibration = _load_calibration(args, spec) if args.calibration else Calibration.from_spec(spec)
    faults = Faults(drop_probability=args.drop, corrupt_probability=args.corrupt,
                    unplugged=set(_ids(args.unplug)), overload=set(_ids(args.overload)), seed=None)
    on_positions = _twin_hook(spec) if args.twin else None
    emu = ServoEmulator(calibration=calibration, faults=faults, on_positions=on_positions)
    print(emu.port, flush=True)
    print(f"emulating {len(calibration.ids)} STS servos (IDs {min(calibration.ids)}-{max(calibration.ids)}) on {emu.port}; "
          f"Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        emu.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0


def _twin_hook(spec):
    try:
        from facetwin.sim.twin import FaceTwin
    except ImportError as exc:
        raise CLIError(f"--twin needs the MuJoCo twin (facetwin.sim.twin): {exc}") from exc
    twin = FaceTwin(spec, blendshapes=False)  # the hook only mirrors servo positions; no expression readout
    return lambda commands: twin.apply(commands, readout=False)


def _calibrate(args) -> int:
    from facetwin.real.bus import ServoBus
    from facetwin.real.calibrate import CalibrationAborted, calibrate_interactively, summarise
    from facetwin.real.calibration import Calibration, CalibrationError, default_calibration_path
    from facetwin.real.protocol import ProtocolError

    spec = face_spec(args)
    path = args.calibration or default_calibration_path(spec)
    if args.from_spec:
        cal = Calibration.from_spec(spec)
    else:
        if not args.port:
            raise CLIError("interactive calibration needs --port (or use --from-spec for a first file)")
        try:
            base = Calibration.load(path, spec) if Path(path).exists() else Calibration.from_spec(spec)
        except CalibrationError as exc:
            raise CLIError(str(exc)) from exc
        unknown = [n for n in args.servo or [] if n not in spec.names]
        if unknown:
            raise CLIError(f"unknown servo(s) {', '.join(unknown)}; known: {', '.join(spec.names)}")
        try:
            with _port(args, base) as port, ServoBus(port, args.baudrate or spec.baudrate) as bus:
                cal = calibrate_interactively(bus, base, names=args.servo, step=args.step)
        except CalibrationAborted as exc:
            print(exc)
            return 1
        except ProtocolError as exc:
            raise CLIError(str(exc)) from exc
    cal.save(path)
    print(f"calibration saved to {path}")
    for line in summarise(cal):
        print(f"note: {line}")
    return 0


def _pose(args) -> int:
    spec = face_spec(args)
    try:
        from facetwin.motion.poses import named_pose
    except ImportError as exc:
        raise CLIError(f"named poses come from facetwin.motion.poses, which is not available: {exc}") from exc
    try:
        command = np.asarray(named_pose(args.name, spec), dtype=np.float64)
    except (KeyError, ValueError) as exc:
        raise CLIError(f"no pose {args.name!r}: {exc}") from exc
    calibration = _load_calibration(args, spec)
    with _robot(args, calibration) as robot:
        measured = robot.move_to(command)
        ticks = robot.last_ticks.copy()
        for i in np.flatnonzero(np.abs(command) > 1e-6):
            print(f"{spec.names[i]:22s} command {command[i]:+.2f}  measured {measured[i]:+.2f}  goal {int(ticks[i])} ticks")
        if args.dry_run:
            return 0
        robot.hold(command, max(0.0, args.hold))
        robot.neutral()
    return 0


def read_actions(dataset: Path, episode: int | None = None) -> tuple[np.ndarray, float, tuple[str, ...]]:
    """A facetwin dataset's `action` rows (committed episodes, in order), its fps and the action names."""
    from facetwin.dataset import DatasetError
    from facetwin.dataset.reader import load_actions

    if not dataset.is_dir():
        raise CLIError(f"dataset {dataset} does not exist; pass a folder written by `facetwin collect` or "
                       "`facetwin real collect`")
    try:
        actions, info = load_actions(dataset, episode)
    except DatasetError as exc:  # its message names the file and what is wrong with it
        raise CLIError(f"{exc}; check the dataset with `facetwin dataset check {dataset}`") from exc
    except (OSError, ValueError) as exc:  # an unreadable parquet file: pyarrow names no path
        raise CLIError(f"cannot read the dataset in {dataset}: {exc}; check it with `facetwin dataset check "
                       f"{dataset}`") from exc
    return actions.astype(np.float64), float(info.fps), info.servo_names


def _play(args) -> int:
    spec = dataset_face_spec(args, args.dataset)
    actions, fps, names = read_actions(args.dataset, args.episode)
    if len(actions) == 0:
        raise CLIError(f"no actions to play in {args.dataset}" + (f" for episode {args.episode}" if args.episode is not None else ""))
    if actions.shape[1] != spec.n or (names and tuple(names) != spec.names):
        raise CLIError(f"dataset actions must be the face spec's {spec.n} servo commands in its order; "
                       f"got {actions.shape[1]} columns" + (f" named {list(names[:3])}..." if names else ""))
    calibration = _load_calibration(args, spec)
    period = 1.0 / fps
    errors = []
    with _robot(args, calibration) as robot:
        robot.move_to(actions[0])  # glide to the first frame rather than jumping into the replay
        start = time.monotonic()
        for k, action in enumerate(actions):
            measured = robot.send(np.clip(action, -1.0, 1.0))
            errors.append(np.abs(measured - np.clip(action, -1, 1)).max())
            if not args.dry_run:
                time.sleep(max(0.0, start + (k + 1) * period - time.monotonic()))
        if not args.dry_run:
            robot.neutral()
    print(f"played {len(actions)} frames at {fps:g} fps; max tracking error {max(errors):.3f} (normalised)")
    return 0


def _collect(args) -> int:
    from facetwin.dataset import DatasetError
    from facetwin.app.live.real_collect import TWIN_CAMERA, RealCollectConfig, collect_real, open_camera

    camera_name = args.camera or (TWIN_CAMERA if args.port == VIRTUAL else None)
    if camera_name is None:
        raise CLIError("--camera is required with a physical port: 'webcam:N' watching the face (or 'twin')")
    if args.episodes < 1:
        raise CLIError(f"--episodes must be at least 1, got {args.episodes}")
    try:
        config = RealCollectConfig(seed=args.seed, frames_per_episode=args.frames_per_episode, fps=args.fps,
                                   camera=camera_name, perturb_seed=None if args.perturb_seed < 0 else args.perturb_seed,
                                   render_size=args.render_size)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    spec = face_spec(args)
    calibration = _load_calibration(args, spec)
    try:
        camera = open_camera(config, spec=spec)  # before the robot: once connected, a pause sends the face home
    except Exception as exc:  # a camera that cannot open is a setup problem, named as such
        raise CLIError(f"cannot open camera {camera_name!r}: {exc}") from exc
    try:
        with _robot(args, calibration) as robot:
            result = collect_real(robot, camera, args.out, args.episodes, config, resume=args.resume)
            robot.neutral()
    except (DatasetError, RuntimeError) as exc:
        raise CLIError(str(exc)) from exc
    finally:
        camera.close()
    per = result.frames_added + result.frames_dropped
    print(f"{args.out}: {result.episodes_total} episodes ({result.episodes_added} added, {result.frames_added} frames, "
          f"{result.frames_dropped} dropped without a face, {result.frames_late} late) in {result.wall_s:.1f} s; "
          f"camera {result.timings_ms['camera']:.1f} ms + perception {result.timings_ms['perception']:.1f} ms per frame"
          + (f" over {per} frames" if per else ""))
    return 0


def _mimic(args) -> int:
    from facetwin.app.commands import mimic as mimic_command

    args.target = args.port
    return mimic_command.run(args)
