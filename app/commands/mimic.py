"""`facetwin mimic`: a person's video or webcam drives the twin or the servos, frame by frame."""

from __future__ import annotations

import argparse
from pathlib import Path

from facetwin.app.face_option import add_face_option, face_spec, run_face_spec
from facetwin.app.live.viewer import SPAWN  # rerun itself is imported only when a recording starts


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "mimic",
        help="mimic a person's face live: video or webcam -> policy -> twin or servos",
        description="Per frame: MediaPipe (video mode, One-Euro smoothing) reads the person, the policy maps the "
        "expression to the face's servo commands, and the twin (or the servo bus, through its safety layer) receives them. "
        "Without a face the last command is held, then eases to neutral.",
    )
    add_arguments(p, target=True)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser, *, target: bool) -> None:
    """The mimic options; `facetwin real mimic` shares them with --port in place of --target."""
    p.add_argument("--source", required=True, metavar="VIDEO|webcam:N", help="video file, image(s), or webcam:N")
    p.add_argument("--policy", default=None, metavar="RUN_DIR|neutral",
                   help="a `facetwin train` run directory (a ridge policy: `facetwin train --model linear`), or "
                        "neutral (every servo at 0); default: the policy shipped with facetwin")
    p.add_argument("--refine", type=int, default=0, metavar="STEPS",
                   help="refine each answer by STEPS gradient steps through the run's forward model (~1 ms each; "
                        "closer mimicry for latency; default 0)")
    if target:
        p.add_argument("--target", default="sim", metavar="sim|virtual|PORT",
                       help="sim (the twin, default), virtual (an in-process emulated servo bus) or a serial port")
    p.add_argument("--out", type=Path, metavar="FILE.mp4", help="write a side-by-side video: person | twin, with bars")
    p.add_argument("--stats", type=Path, metavar="FILE.json", help="write timings, latency, fps and the smile trace")
    p.add_argument("--view", nargs="?", const=SPAWN, default=None, metavar="FILE.rrd",
                   help="log person, twin, both sets of 52 coefficients and the commands on one rerun timeline: "
                        "alone, in a viewer window; with FILE.rrd, to that file (`facetwin view FILE.rrd` opens it; "
                        "extra `viewer`)")
    p.add_argument("--realtime", action="store_true",
                   help="bound latency by dropping frames (newest frame only; videos paced at their fps); use it with webcams")
    p.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=True,
                   help="One-Euro smoothing of the person's expression (default on)")
    p.add_argument("--min-cutoff", type=float, default=1.5, metavar="HZ", help="One-Euro cutoff at rest (lower: steadier)")
    p.add_argument("--beta", type=float, default=2.0, help="One-Euro speed coefficient (higher: less lag in fast motion)")
    p.add_argument("--hold", type=float, default=0.5, metavar="S", help="seconds to hold the last command when the face is lost")
    p.add_argument("--ease", type=float, default=1.0, metavar="S", help="seconds to then ease back to neutral")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N processed frames")
    p.add_argument("--calibration", type=Path, default=None, help="calibration YAML for a serial-port target")
    p.add_argument("--landmarker", metavar="PATH", help="face_landmarker.task (default: $FACETWIN_FACE_LANDMARKER or the cache)")
    add_face_option(p, recorded_by="the policy")


def run(args) -> int:
    from facetwin.app.cli import CLIError
    from facetwin.landmarker_bundle import LandmarkerModelError
    from facetwin.app.live import FaceLossConfig, MimicConfig, run_mimic
    from facetwin.agents.policies.loader import PolicyLoadError
    from facetwin.app.live.side_by_side import SideBySideError
    from facetwin.app.live.targets import TargetError
    from facetwin.app.live.viewer import ViewerError
    from facetwin.perception import OneEuroConfig, PerceptionError
    from facetwin.spec import CommandError

    if args.max_frames is not None and args.max_frames < 1:
        raise CLIError("--max-frames must be at least 1")
    if args.refine < 0:
        raise CLIError(f"--refine {args.refine}: give a number of steps >= 0")
    try:
        smoothing = OneEuroConfig(min_cutoff=args.min_cutoff, beta=args.beta) if args.smooth else None
        face_loss = FaceLossConfig(hold_s=args.hold, ease_s=args.ease)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    config = MimicConfig(source=args.source, policy=args.policy, refine_steps=args.refine, target=args.target,
                         out=args.out, stats=args.stats, view=args.view,
                         realtime=args.realtime, smoothing=smoothing, max_frames=args.max_frames, face_loss=face_loss,
                         landmarker=args.landmarker, calibration=args.calibration,
                         face=(run_face_spec(args, args.policy) if args.policy else face_spec(args)).face)
    try:
        result = run_mimic(config)
    except (PerceptionError, LandmarkerModelError, PolicyLoadError, TargetError, SideBySideError, ViewerError,
            FileNotFoundError) as exc:
        raise CLIError(str(exc)) from exc
    except CommandError as exc:
        raise CLIError(f"policy {args.policy or 'default'} gave an unusable command: {exc}") from exc
    s = result.stats
    print(f"{args.source} -> {args.target}: {s.frames} frames ({s.dropped_frames} dropped, "
          f"{s.frames_without_face} without a face), {s.fps:.1f} fps, latency p50 {_fmt(s.latency_ms_p50)} ms, "
          f"p95 {_fmt(s.latency_ms_p95)} ms" + (" (interrupted)" if result.interrupted else ""))
    if s.smile_correlation is not None:
        print(f"smile: person vs twin correlation {s.smile_correlation:+.2f}")
    if result.out is not None:
        print(f"wrote {result.out}")
    if result.stats_path is not None:
        print(f"wrote {result.stats_path}")
    if args.view is not None and args.view != SPAWN:
        print(f"wrote {args.view} (open it with `facetwin view {args.view}`)")
    return 0


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"
