"""`facetwin coverage`: how well collected datasets cover the expressions in a folder of human faces."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    from facetwin.coverage import METRICS

    p = subparsers.add_parser(
        "coverage",
        help="compare datasets' expressions with human faces (share of human frames with a near sample)",
        description="Perceive every photo and video frame in --faces (cached), then for each human frame find "
        "the nearest collected sample over the 51 expressive blendshape coefficients. Datasets are "
        "compared at equal sample counts. Prints a table; with --out also writes coverage.txt/.json/.png.",
    )
    p.add_argument("--data", type=Path, action="append", required=True, metavar="DIR", help="a dataset (repeat to compare)")
    p.add_argument("--faces", type=Path, required=True, metavar="DIR", help="folder of human photos and videos, e.g. ../shared/faces")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="write coverage.txt, coverage.json and coverage.png here")
    p.add_argument("--metric", choices=METRICS, default="mean_abs", help="distance between coefficient vectors (default mean_abs)")
    p.add_argument("--thresholds", type=float, nargs="+", default=None, metavar="D", help="distances to report coverage at")
    p.add_argument("--samples", type=int, default=None, metavar="N", help="samples per dataset (default: the smallest dataset's size)")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR", help="where perceived human faces are cached (default: user cache)")
    p.add_argument("--no-cache", action="store_true", help="perceive the human faces again and cache nothing")
    p.add_argument("--landmarker", metavar="PATH", help="face_landmarker.task (default: $FACETWIN_FACE_LANDMARKER or the cache)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facetwin.app.cli import CLIError
    from facetwin.coverage import coverage, plot
    from facetwin.dataset import DatasetError, load_arrays
    from facetwin.human_faces import load_human_faces
    from facetwin.landmarker_bundle import LandmarkerModelError
    from facetwin.perception import PerceptionError

    if args.samples is not None and args.samples < 1:
        raise CLIError("--samples must be at least 1")
    names = [str(d) for d in args.data]
    if len(set(names)) != len(names):
        raise CLIError("each --data DIR must be different")
    try:
        blendshapes = {name: load_arrays(d, landmarks=False).expression[:, :52] for name, d in zip(names, args.data)}
        empty = [n for n, b in blendshapes.items() if len(b) == 0]
        if empty:
            raise CLIError(f"no frames in {', '.join(empty)}")
        humans = load_human_faces(args.faces, bundle=args.landmarker, cache_dir=args.cache, use_cache=not args.no_cache)
        report = coverage(humans, blendshapes, metric=args.metric, thresholds=args.thresholds, samples=args.samples)
    except (DatasetError, PerceptionError, LandmarkerModelError, FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    text = report.table()
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "coverage.txt").write_text(text + "\n")
        (args.out / "coverage.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
        png = plot(report, args.out / "coverage.png")
        print(f"wrote {args.out / 'coverage.txt'}, coverage.json and {png.name}")
    return 0
