"""`facetwin spec list|check`: the robot faces facetwin knows, and whether a face's spec is sound."""

from __future__ import annotations

import argparse

from facetwin.app.cli import CLIError
from facetwin.app.face_option import add_face_option, face_spec


def register(subparsers) -> None:
    parser = subparsers.add_parser("spec", help="list the robot faces, or check that a face spec is sound",
                                   description="docs/new-face.md walks through adding a face; `spec check` is its test.")
    sub = parser.add_subparsers(dest="spec_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("list", help="the packaged faces: name, spec, servos per region")
    p.set_defaults(func=run_list)
    p = sub.add_parser(
        "check",
        help="load, validate, build the twin, move every servo, render the named poses and read them back",
        description="Exit 0 when every check holds, 1 otherwise; each line says what was checked and what failed.",
    )
    add_face_option(p)
    p.add_argument("--no-pixels", action="store_true", help="skip the renders read by MediaPipe's full landmarker")
    p.add_argument("--landmarker", metavar="PATH", help="face_landmarker.task (default: $FACETWIN_FACE_LANDMARKER or the cache)")
    p.set_defaults(func=run_check)


def run_list(args: argparse.Namespace) -> int:
    from facetwin.spec import SpecError, face_names, face_spec_path, load_face

    for name in face_names():
        try:
            spec = load_face(name)
        except SpecError as exc:  # one broken face must not hide the others
            print(f"{name:8s} BROKEN: {exc}")
            continue
        regions = ", ".join(f"{r} {len(spec.region_indices(r))}" for r in dict.fromkeys(s.region for s in spec.servos))
        print(f"{name:8s} {spec.name} v{spec.version}: {spec.n} servos ({regions})  {face_spec_path(name)}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from facetwin.app.spec_check import check_face
    from facetwin.landmarker_bundle import LandmarkerModelError

    spec = face_spec(args)  # a malformed file fails here, with the reason
    try:
        report = check_face(spec, args.landmarker, pixels=not args.no_pixels)
    except LandmarkerModelError as exc:
        raise CLIError(str(exc)) from exc
    print(f"face {report.face} ({report.spec_name}, {report.n_servos} servos)")
    print("\n".join(report.lines()))
    print("sound" if report.ok else "NOT sound: fix the lines marked FAIL (docs/new-face.md)")
    return 0 if report.ok else 1
