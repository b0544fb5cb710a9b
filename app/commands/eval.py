"""`facetwin eval`: how well a policy makes the twin mimic people, against the twin's own best (the oracle)."""

from __future__ import annotations

import json
from pathlib import Path

from facetwin.app.cli import CLIError


def register(subparsers) -> None:
    from facetwin.agents.evaluation.oracle import DEFAULT_BUDGET

    p = subparsers.add_parser(
        "eval",
        help="closed-loop evaluation of a policy on human faces (images or a video), with an oracle",
        description="For every face: perceive the person, run the policy, settle the twin, read it back and "
        "compare (blendshape MAE over the 51 non-neutral coefficients, head pose, per region). The oracle "
        "searches the 25 commands directly on the twin (CMA-ES) for the best the face can reach.",
    )
    p.add_argument("--policy", required=True, metavar="RUN_DIR", help="a `facetwin train` run directory, or 'neutral'")
    p.add_argument("--faces", required=True, metavar="DIR_OR_VIDEO", help="a folder of images, an image or a video")
    p.add_argument("--out", required=True, type=Path, metavar="REPORT.json", help="where to write the report")
    p.add_argument(
        "--sheet", type=Path, metavar="SHEET.png", help="also write a contact sheet: human | twin (policy) | twin (oracle)"
    )
    p.add_argument("--pixels", action="store_true", help="re-perceive the twin from a 512 px render with the full landmarker")
    p.add_argument(
        "--oracle-budget",
        type=int,
        default=DEFAULT_BUDGET,
        metavar="N",
        help=f"twin evaluations per face for the oracle (default {DEFAULT_BUDGET}; 0 skips it)",
    )
    p.add_argument(
        "--oracle-from",
        type=Path,
        metavar="REPORT.json",
        help="warm-start the oracle from an earlier report's oracle commands too (one oracle across policies)",
    )
    p.add_argument("--refine", type=int, default=0, metavar="STEPS",
                   help="refine each policy answer by STEPS gradient steps through the run's forward model "
                        "(~1 ms each; default 0: the network's answer as it is)")
    p.add_argument("--refine-through", choices=("student", "teacher"), default="student",
                   help="which of the run's forward models --refine steps through: the distilled student the policy "
                        "trained through (default), or the landmark-structured teacher it was distilled from, "
                        "closer to the face (~7 ms a step)")
    p.add_argument("--max-faces", type=int, metavar="N", help="stop after N faces")
    p.add_argument("--stride", type=int, default=1, metavar="K", help="use every K-th frame of a video (default 1)")
    p.add_argument("--seed", type=int, default=0, help="oracle seed (default 0)")
    p.add_argument("--landmarker", metavar="PATH", help="face_landmarker.task (default: $FACETWIN_FACE_LANDMARKER or the cache)")
    p.set_defaults(func=run)


def run(args) -> int:
    from facetwin.agents.policies.loader import PolicyLoadError, load_policy
    from facetwin.agents.evaluation.closed_loop import EvalConfig, EvalError, evaluate, oracle_starts_from
    from facetwin.agents.evaluation.sheet import write_sheet
    from facetwin.landmarker_bundle import LandmarkerModelError
    from facetwin.perception import PerceptionError

    if args.out.suffix.lower() != ".json":
        raise CLIError(f"--out {args.out}: the report is JSON; give a path ending in .json")
    if args.sheet is not None and args.sheet.suffix.lower() != ".png":
        raise CLIError(f"--sheet {args.sheet}: the contact sheet is a PNG; give a path ending in .png")
    if args.refine < 0:
        raise CLIError(f"--refine {args.refine}: give a number of steps >= 0")
    try:
        starts = oracle_starts_from(args.oracle_from) if args.oracle_from is not None else None
        config = EvalConfig(
            pixels=args.pixels,
            oracle_budget=args.oracle_budget,
            max_faces=args.max_faces,
            stride=args.stride,
            seed=args.seed,
            keep_tiles=args.sheet is not None,
            oracle_starts=starts,
        )
        if args.refine_through != "student" and not args.refine:
            raise EvalError("--refine-through needs --refine STEPS > 0")
        policy = load_policy(args.policy, refine_steps=args.refine, refine_through=args.refine_through,
                             bundle=args.landmarker)
        report = evaluate(policy, args.faces, config=config, bundle=args.landmarker, progress=True)
    except (PolicyLoadError, EvalError, PerceptionError, LandmarkerModelError) as exc:
        raise CLIError(str(exc)) from exc
    data = report.to_dict()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    if args.sheet is not None:
        write_sheet(args.sheet, [r.tiles for r in report.results])
    print(summary(data))
    print(f"wrote {args.out}" + (f" and {args.sheet}" if args.sheet is not None else ""))
    return 0


def summary(data: dict) -> str:
    lines = [
        f"policy {data['policy']} on {data['n_faces']} faces ({data['readout']} readout"
        + (f", {data['n_skipped']} frames without a face" if data["n_skipped"] else "")
        + f"): blendshape MAE {data['blendshape_mae']:.4f}, head error {data['head_error_deg']:.1f} deg"
    ]
    if data["oracle_blendshape_mae"] is not None:
        lines.append(
            f"oracle ({data['oracle_budget']} evaluations/face): blendshape MAE {data['oracle_blendshape_mae']:.4f}, "
            f"ratio to oracle {data['ratio_to_oracle']:.2f}"
        )
    lines.append("per region MAE: " + ", ".join(f"{k} {v:.3f}" for k, v in data["per_region"].items()))
    lines.append("latency ms/face: " + ", ".join(f"{k} {v:.1f}" for k, v in data["latency_ms"].items()))
    return "\n".join(lines)
