"""`facetwin eval`: how well a policy makes the twin mimic people, against the twin's own best (the oracle)."""

from __future__ import annotations

import json
from pathlib import Path

from facetwin.app.cli import CLIError
from facetwin.app.face_option import add_face_option, face_spec, run_face_spec


def register(subparsers) -> None:
    from facetwin.agents.evaluation.oracle import DEFAULT_BUDGET, DEFAULT_PIXEL_BUDGET
    from facetwin.agents.evaluation.oracle_lockstep import LOCKSTEP_FACES
    from facetwin.sim.landmark_engines import DEFAULT_ENGINE, ENGINES

    p = subparsers.add_parser(
        "eval",
        help="closed-loop evaluation of a policy on human faces (images or a video), with an oracle",
        description="For every face: perceive the person, run the policy, settle the twin, read it back and "
        "compare (blendshape MAE over the 51 non-neutral coefficients, head pose, per region). The oracle "
        "searches the face's servo commands directly on the twin (CMA-ES) for the best the face can reach.",
    )
    p.add_argument("--policy", default=None, metavar="RUN_DIR",
                   help="a `facetwin train` run directory, or 'neutral'; default: the policy shipped with facetwin")
    p.add_argument("--faces", required=True, metavar="DIR_OR_VIDEO", help="a folder of images, an image or a video")
    p.add_argument("--out", required=True, type=Path, metavar="REPORT.json", help="where to write the report")
    p.add_argument(
        "--sheet", type=Path, metavar="SHEET.png", help="also write a contact sheet: human | twin (policy) | twin (oracle)"
    )
    p.add_argument("--report", type=Path, metavar="REPORT.html",
                   help="also write a page to look at: per face person | twin | oracle and per-region error bars")
    p.add_argument("--pixels", action="store_true",
                   help="read the twin as a camera sees it (a 512 px render, the full landmarker): the headline in "
                   "pixels, the fast path's figures beside it, and the oracle searching on through pixels")
    p.add_argument(
        "--oracle-budget",
        type=int,
        default=DEFAULT_BUDGET,
        metavar="N",
        help=f"twin evaluations per face for the oracle (default {DEFAULT_BUDGET}; 0 skips it)",
    )
    p.add_argument("--oracle-pixel-budget", type=int, default=DEFAULT_PIXEL_BUDGET, metavar="N",
                   help=f"with --pixels: evaluations through pixels per face, the oracle searching on from the fast "
                   f"oracle's answer, one render batch per CMA-ES generation (default {DEFAULT_PIXEL_BUDGET}; 0 re-reads "
                   "the fast winner only)")
    p.add_argument("--oracle-worlds", type=int, default=None, metavar="N",
                   help="settle the oracle's candidates on a BatchTwin of N worlds, the searches of as many faces as "
                   "hold a CMA-ES generation each in lockstep; 0: one FaceTwin, candidate after candidate, face after "
                   f"face (default: 0 on the fast path, with --pixels {LOCKSTEP_FACES} faces' generations in lockstep)")
    p.add_argument("--readout-workers", type=int, default=0, metavar="K",
                   help="with --pixels: processes that read the pixel oracle's batches (default 0: this one)")
    p.add_argument("--readout-engine", choices=ENGINES, default=DEFAULT_ENGINE,
                   help="with --pixels: the landmark engine the pixel oracle searches through (default "
                   f"{DEFAULT_ENGINE}); every reported score is read by MediaPipe")
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
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run the per-face oracle searches as Ray tasks: local (start a cluster here), auto (the one "
                   "running here) or HOST:PORT; the same report as without (needs the ray extra)")
    p.add_argument("--landmarker", metavar="PATH", help="face_landmarker.task (default: $FACETWIN_FACE_LANDMARKER or the cache)")
    add_face_option(p, recorded_by="the policy")
    p.set_defaults(func=run)


def run(args) -> int:
    from facetwin.agents.policies.loader import PolicyLoadError, load_policy
    from facetwin.agents.evaluation.closed_loop import EvalError, evaluate, oracle_starts_from
    from facetwin.agents.evaluation.sheet import write_sheet
    from facetwin.landmarker_bundle import LandmarkerModelError
    from facetwin.perception import PerceptionError
    from facetwin.sim.twin import FaceTwin

    if args.out.suffix.lower() != ".json":
        raise CLIError(f"--out {args.out}: the report is JSON; give a path ending in .json")
    if args.sheet is not None and args.sheet.suffix.lower() != ".png":
        raise CLIError(f"--sheet {args.sheet}: the contact sheet is a PNG; give a path ending in .png")
    if args.report is not None and args.report.suffix.lower() not in (".html", ".htm"):
        raise CLIError(f"--report {args.report}: the report is a web page; give a path ending in .html")
    if args.refine < 0:
        raise CLIError(f"--refine {args.refine}: give a number of steps >= 0")
    try:
        starts = oracle_starts_from(args.oracle_from) if args.oracle_from is not None else None
        config = _config(
            pixels=args.pixels,
            oracle_budget=args.oracle_budget,
            oracle_pixel_budget=args.oracle_pixel_budget,
            readout_workers=args.readout_workers,
            readout_engine=args.readout_engine,
            oracle_worlds=args.oracle_worlds,
            max_faces=args.max_faces,
            stride=args.stride,
            seed=args.seed,
            keep_tiles=args.sheet is not None or args.report is not None,
            oracle_starts=starts,
        )
        if args.refine_through != "student" and not args.refine:
            raise EvalError("--refine-through needs --refine STEPS > 0")
        spec = run_face_spec(args, args.policy) if args.policy is not None else face_spec(args)
        policy = load_policy(args.policy, spec, refine_steps=args.refine, refine_through=args.refine_through,
                             bundle=args.landmarker)
        twin = FaceTwin(spec, args.landmarker)
        oracles = None
        if args.ray is not None and config.oracle_budget > 0:
            from facetwin.agents.evaluation.ray_oracle import RayOracles

            try:
                oracles = RayOracles(args.ray, spec, str(twin.bundle))
            except ValueError as exc:  # the cluster does not answer
                raise EvalError(str(exc)) from exc
        report = evaluate(policy, args.faces, config=config, bundle=args.landmarker, progress=True, twin=twin,
                          oracles=oracles)
    except (PolicyLoadError, EvalError, PerceptionError, LandmarkerModelError, ImportError) as exc:
        raise CLIError(str(exc)) from exc
    data = report.to_dict()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    if args.sheet is not None:
        write_sheet(args.sheet, [r.tiles for r in report.results])
    if args.report is not None:
        from facetwin.app.eval_report import write_report

        write_report(args.report, report)
    print(summary(data))
    print(f"wrote {', '.join(str(p) for p in (args.out, args.sheet, args.report) if p is not None)}")
    return 0


def summary(data: dict) -> str:
    lines = table(data) + [
        f"policy {data['policy']} on {data['n_faces']} faces ({data['readout']} readout"
        + (f", {data['n_skipped']} frames without a face" if data["n_skipped"] else "")
        + f"): blendshape MAE {data['blendshape_mae']:.4f}, head error {data['head_error_deg']:.1f} deg"
    ]
    if data["oracle_blendshape_mae"] is not None:
        lines.append(
            f"oracle ({oracle_budget(data)}): blendshape MAE {data['oracle_blendshape_mae']:.4f}, "
            f"ratio to oracle {data['ratio_to_oracle']:.2f}"
        )
    lines.append("per region MAE: " + ", ".join(f"{k} {v:.3f}" for k, v in data["per_region"].items()))
    lines.append("latency ms/face: " + ", ".join(f"{k} {v:.1f}" for k, v in data["latency_ms"].items()))
    return "\n".join(lines)


def oracle_budget(data: dict) -> str:
    """The oracle's budget in words, as every report states it."""
    if data.get("oracle_pixel_budget"):
        return (f"{data['oracle_budget']} fast-path evaluations/face, then {data['oracle_pixel_budget']} through "
                "pixels from the fast answer")
    return f"{data['oracle_budget']} {'fast-path ' if data['readout'] == 'pixels' else ''}evaluations/face"


def table(data: dict) -> list[str]:
    """The headline: blendshape MAE of the policy, the oracle and the neutral face, a column per readout."""
    columns = [c for c in ("pixels", "fast") if c in data["table"][0]]
    lines = [f"{'':<8}" + "".join(f"{c + ' MAE':>12}" for c in columns)]
    for row in data["table"]:
        cells = "".join(f"{'-' if row[c] is None else format(row[c], '.4f'):>12}" for c in columns)
        lines.append(f"{row['row']:<8}{cells}")
    return lines


def _config(**settings):
    from facetwin.agents.evaluation.closed_loop import EvalConfig, EvalError

    try:
        return EvalConfig(**settings)
    except ValueError as exc:  # a setting out of range: said as EvalConfig's own message
        raise EvalError(str(exc)) from exc
