"""`facetwin export`: turn a training run into a deployable file."""

from __future__ import annotations

from pathlib import Path

from facetwin.app.cli import CLIError


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a trained policy (ONNX)",
                              description="Export a training run's policy: expression (N, 55) -> commands (N, 25).")
    p.add_argument("run_dir", type=Path, help="run directory written by `facetwin train`")
    p.add_argument("--onnx", action="store_true", required=True, help="write ONNX (the only format so far)")
    p.add_argument("--out", type=Path, default=None, help="output file (default: RUN_DIR/policy.onnx)")
    p.set_defaults(func=run)


def run(args) -> int:
    from facetwin.agents.training.checkpoint import RunError
    from facetwin.agents.policies.onnx_export import export_onnx

    try:
        path = export_onnx(args.run_dir, args.out)
    except RunError as exc:
        raise CLIError(str(exc)) from exc
    print(f"wrote {path} (checked with onnx.checker)")
    return 0
