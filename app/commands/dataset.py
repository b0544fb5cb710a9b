"""`facetwin dataset check|info DIR`: validate and summarise a LeRobot v3.0 facetwin dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facetwin.app.face_option import add_face_option, dataset_face_spec


def register(subparsers) -> None:
    parser = subparsers.add_parser("dataset", help="inspect and validate recorded datasets")
    sub = parser.add_subparsers(dest="dataset_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("check", help="validate a dataset and print a summary; exit 1 if it has problems")
    p.add_argument("root", type=Path, metavar="DIR")
    p.add_argument("--spec", type=Path, default=None,
                   help="face spec YAML to check names against (default: the face the dataset was recorded on)")
    p.add_argument("--per-servo", action="store_true", help="print each servo's command range")
    add_face_option(p, recorded_by="the dataset")
    p.set_defaults(func=run_check)
    p = sub.add_parser("info", help="print the dataset's metadata without reading its frames")
    p.add_argument("root", type=Path, metavar="DIR")
    p.set_defaults(func=run_info)


def _range(lo, hi) -> str:
    return f"[{float(np.min(lo)):+.3f}, {float(np.max(hi)):+.3f}]"


def run_check(args: argparse.Namespace) -> int:
    from facetwin.app.cli import CLIError
    from facetwin.dataset import check
    from facetwin.spec import SpecError, load_spec

    if not args.root.is_dir():
        raise CLIError(f"{args.root} is not a directory")
    try:
        spec = load_spec(args.spec) if args.spec else None
    except SpecError as exc:
        raise CLIError(str(exc)) from exc
    if spec is None and args.face is not None:
        spec = dataset_face_spec(args, args.root)
    report = check(args.root, spec)
    info = report.info
    print(f"dataset   {args.root}")
    if info is not None:
        print(f"format    LeRobotDataset {info.codebase_version}, {info.fps} fps, robot_type {info.robot_type}")
        print(f"spec      {info.spec_name} v{info.spec_version} ({info.spec_fingerprint}), face {info.recorded_face or '?'}")
        print(f"features  {', '.join(f'{k}{list(f.shape)}' for k, f in info.features.items())}")
    if report.n_episodes:
        lengths = report.episode_lengths
        print(f"episodes  {report.n_episodes} (length {lengths.min()}..{lengths.max()}, mean {lengths.mean():.1f})")
    print(f"frames    {report.n_frames}")
    for key, r in report.ranges.items():
        if r.mean.size > 1:
            print(f"  {key:<26} range {_range(r.min, r.max)}  mean of stds {float(np.mean(r.std)):.4f}")
    if args.per_servo and "action" in report.ranges and info is not None:
        r = report.ranges["action"]
        for name, lo, hi, sd in zip(info.servo_names, r.min, r.max, r.std):
            print(f"    {name:<24} [{lo:+.3f}, {hi:+.3f}]  std {sd:.3f}")
    if report.ranges:
        moving = report.non_constant_expressions
        names = info.features["observation.expression"].names or ()
        still = [n for n in names if n not in moving]
        if len(still) < len(moving):  # name the shorter list
            print(f"non-constant expressions: {len(moving)}/{len(names)}" + (f"; constant: {', '.join(still)}" if still else ""))
        else:
            print(f"non-constant expressions: {len(moving)}/{len(names)}" + (f": {', '.join(moving)}" if moving else ""))
        if report.idle_servos:
            print(f"servos never moved: {', '.join(report.idle_servos)}")
    for w in report.warnings:
        print(f"warning: {w}")
    for p in report.problems:
        print(f"problem: {p}")
    print("OK" if report.ok else f"FAILED: {len(report.problems)} problem(s)")
    return 0 if report.ok else 1


def run_info(args: argparse.Namespace) -> int:
    from facetwin.app.cli import CLIError
    from facetwin.dataset import DatasetError, read_episodes, read_info

    try:
        info = read_info(args.root)
        episodes = read_episodes(args.root, info)
    except DatasetError as exc:
        raise CLIError(str(exc)) from exc
    print(f"dataset   {args.root}")
    print(f"format    LeRobotDataset {info.codebase_version}, {info.fps} fps, robot_type {info.robot_type}")
    print(f"spec      {info.spec_name} v{info.spec_version} ({info.spec_fingerprint})")
    print(f"readout   {info.readout} (how each frame's expression was read)")
    print(f"episodes  {info.total_episodes}, frames {info.total_frames}, tasks {info.total_tasks}")
    print(f"files     {len({e.data_file for e in episodes})} data file(s), {info.chunk_frames} frames per file")
    for key, f in info.features.items():
        names = "" if f.names is None else f"  ({', '.join(f.names[:3])}{', ...' if len(f.names) > 3 else ''})"
        print(f"  {key:<26} {f.dtype:<8} {list(f.shape)}{names}")
    return 0
