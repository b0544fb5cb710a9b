"""`facetwin collect`: drive the face with a motion strategy and record (servo commands, expression) datasets."""

from __future__ import annotations

from facetwin.motion.strategy import STRATEGIES

import argparse
from pathlib import Path

BACKENDS = ("sim", "real")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "collect",
        help="record a dataset of servo commands and the expressions they produce",
        description="Play a motion strategy's episodes on the twin and store every frame (command, servo "
        "positions, 52 blendshapes + head angles, 478 landmarks) as a LeRobot v3.0 dataset. The same "
        "seed gives the same dataset, whatever --workers; --resume continues a killed run exactly.",
    )
    p.add_argument("--backend", choices=BACKENDS, default="sim", help="sim: the MuJoCo twin (default)")
    p.add_argument("--episodes", type=int, required=True, metavar="N", help="episodes the dataset should hold")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="dataset folder (new, or existing with --resume)")
    p.add_argument("--workers", type=int, default=1, metavar="K", help="processes, each with its own twin (default 1)")
    # None = "not given": a resume then takes the value the dataset was collected with.
    p.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="motion strategy (default expert; mixed = expert with a third of the episodes babbled)")
    p.add_argument("--frames-per-episode", type=int, default=None, metavar="F", help="frames per episode (default 300)")
    p.add_argument("--fps", type=int, default=None, help="frames per second of commands and observations (default 30)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="strategy seed (default 0)")
    p.add_argument(
        "--render", type=int, nargs="?", const=256, default=None, metavar="SIZE",
        help="also render every frame (SIZE px square, default 256) into mp4 files under videos/",
    )
    p.add_argument("--resume", action="store_true", help="continue a dataset in DIR after its last committed episode")
    p.add_argument("--chunk-frames", type=int, default=None, metavar="N", help="frames per data file (default 1000)")
    p.add_argument("--landmarker", metavar="PATH", help="face_landmarker.task (default: $FACETWIN_FACE_LANDMARKER or the cache)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def resolve_config(args: argparse.Namespace):
    """The collection settings: the flags given, then (on --resume) the dataset's record, then defaults."""
    from facetwin.sim.collector import CollectConfig, read_collection_config

    recorded = read_collection_config(args.out) if args.resume else None
    base = recorded or CollectConfig()
    given = {
        "strategy": args.strategy,
        "seed": args.seed,
        "frames_per_episode": args.frames_per_episode,
        "fps": args.fps,
        "render_size": args.render,
    }
    values = {k: getattr(base, k) if v is None else v for k, v in given.items()}
    return CollectConfig(**values)


def run(args: argparse.Namespace) -> int:
    from facetwin.app.cli import CLIError
    from facetwin.dataset import DatasetError
    from facetwin.landmarker_bundle import LandmarkerModelError

    if args.backend == "real":
        raise CLIError(
            "the real robot collects with `facetwin real collect` (the sim-to-real bridge), not with "
            "`facetwin collect --backend real`; use --backend sim for the twin"
        )
    if args.episodes < 1:
        raise CLIError("--episodes must be at least 1")
    if args.workers < 1:
        raise CLIError("--workers must be at least 1")
    if args.chunk_frames is not None and args.chunk_frames < 1:
        raise CLIError("--chunk-frames must be at least 1")
    from facetwin.sim.collector import collect

    try:
        config = resolve_config(args)
        result = collect(
            args.out,
            args.episodes,
            config,
            workers=args.workers,
            resume=args.resume,
            bundle=args.landmarker,
            chunk_frames=args.chunk_frames,
            progress=not args.no_progress,
        )
    except (ValueError, DatasetError, LandmarkerModelError) as exc:
        raise CLIError(str(exc)) from exc
    except KeyboardInterrupt:
        print("interrupted: the whole episodes collected so far are saved; continue with the same command and --resume")
        raise
    if result.episodes_added == 0:
        print(f"{args.out} already holds {result.episodes_total} episodes (>= --episodes {args.episodes}); nothing to do")
        return 0
    print(
        f"collected {result.episodes_added} episodes ({result.frames_added} samples, {config.strategy}, seed "
        f"{config.seed}) in {result.wall_s:.1f} s: {result.frames_added / result.wall_s:.0f} samples/s overall, "
        f"{result.samples_per_s:.0f} samples/s once started"
    )
    print(f"{args.out} holds {result.episodes_total} episodes; validate with `facetwin dataset check {args.out}`")
    return 0
