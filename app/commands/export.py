"""`facetwin export`: turn a training run (or the shipped default policy) into a deployable file."""

from __future__ import annotations

from pathlib import Path

from facetwin.app.cli import CLIError
from facetwin.app.face_option import add_face_option, run_face_spec


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a trained policy (ONNX)",
                              description="Export a training run's policy: expression (N, 55) -> commands (N, servos of its face).")
    p.add_argument("run_dir", type=Path, nargs="?", default=None,
                   help="run directory written by `facetwin train` (default: the policy shipped with facetwin)")
    p.add_argument("--onnx", action="store_true", required=True, help="write ONNX (the only format so far)")
    p.add_argument("--out", type=Path, default=None,
                   help="output file (default: RUN_DIR/policy.onnx; required for the shipped policy)")
    add_face_option(p, recorded_by="the policy")
    p.set_defaults(func=run)


def run(args) -> int:
    from facetwin.agents.policies.loader import default_policy_dir
    from facetwin.agents.policies.onnx_export import export_onnx
    from facetwin.agents.training.checkpoint import RunError

    run_dir = args.run_dir
    if run_dir is None:
        if args.out is None:
            raise CLIError("exporting the shipped policy: give --out FILE.onnx (the package folder is not for output)")
        run_dir = default_policy_dir()
    spec = run_face_spec(args, run_dir)  # a run exports for the face it was trained for; --face only checks it
    try:
        path = export_onnx(run_dir, args.out)
    except RunError as exc:
        raise CLIError(str(exc)) from exc
    print(f"wrote {path} for face {spec.face!r} ({spec.n} servos; checked with onnx.checker)")
    return 0
