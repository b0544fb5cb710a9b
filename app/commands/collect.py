"""`facetwin collect`: drive the face with a motion strategy and record (servo commands, expression) datasets."""

from __future__ import annotations

from facetwin.app.face_option import add_face_option, dataset_face_spec, face_spec
from facetwin.motion.strategy import STRATEGIES
from facetwin.spec import DEFAULT_FACE

import argparse
from pathlib import Path

BACKENDS = ("sim", "batch", "real")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "collect",
        help="record a dataset of servo commands and the expressions they produce",
        description="Play a motion strategy's episodes on the twin and store every frame (command, servo "
        "positions, 52 blendshapes + head angles, 478 landmarks) as a LeRobot v3.0 dataset. The same "
        "seed gives the same dataset, whatever --workers; --resume continues a killed run exactly.",
    )
    p.add_argument("--backend", choices=BACKENDS, default="sim",
                   help="sim: one MuJoCo twin per process (default); batch: a BatchTwin stepping --batch-worlds "
                   "episodes at once on every core (the same rows as sim, docs/batch.md)")
    p.add_argument("--batch-worlds", type=int, default=None, metavar="N",
                   help="episodes per BatchTwin batch with --backend batch (default 64)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="spread the episodes over a Ray cluster's tasks: local (start one here), auto (the one "
                   "running here) or HOST:PORT; needs the ray extra")
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
    p.add_argument("--readout", choices=("fast", "pixels"), default=None,
                   help="how each frame's expression is read: pixels, a 512 px render read by the Face Landmarker, as "
                   "a camera sees the face and the only label a real face has (default; about 65 frames/s a process, "
                   "--workers 2 fills two cores; frames without a face found are dropped and counted); fast, the "
                   "twin's own landmarks through the blendshape network, about five times as fast (the batch backend "
                   "reads only this). With --resume: the dataset's own readout")
    p.add_argument("--resume", action="store_true", help="continue a dataset in DIR after its last committed episode")
    p.add_argument("--chunk-frames", type=int, default=None, metavar="N", help="frames per data file (default 1000)")
    p.add_argument("--landmarker", metavar="PATH", help="face_landmarker.task (default: $FACETWIN_FACE_LANDMARKER or the cache)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_face_option(p, default=f"{DEFAULT_FACE}; with --resume, the face the dataset was recorded on")
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
        "readout": args.readout,
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
    if args.batch_worlds is not None and args.backend != "batch":
        raise CLIError("--batch-worlds sizes the batch backend's BatchTwin: add --backend batch")
    if args.batch_worlds is not None and args.batch_worlds < 1:
        raise CLIError("--batch-worlds must be at least 1")
    from facetwin.sim.collector import CollectionInterrupted, Engine, collect

    try:
        engine = Engine(args.backend, args.batch_worlds or Engine.n_worlds, args.ray)
        config = resolve_config(args)
        resuming = args.resume and (args.out / "meta" / "info.json").is_file()
        spec = dataset_face_spec(args, args.out) if resuming else face_spec(args)
        result = collect(
            args.out,
            args.episodes,
            config,
            workers=args.workers,
            resume=args.resume,
            bundle=args.landmarker,
            chunk_frames=args.chunk_frames,
            progress=not args.no_progress,
            spec=spec,
            engine=engine,
        )
    except (ValueError, ImportError, DatasetError, LandmarkerModelError, CollectionInterrupted) as exc:
        raise CLIError(str(exc)) from exc
    except KeyboardInterrupt:
        print("interrupted: the whole episodes collected so far are saved; continue with the same command and --resume")
        raise
    if result.episodes_added == 0:
        print(f"{args.out} already holds {result.episodes_total} episodes (>= --episodes {args.episodes}); nothing to do")
        return 0
    print(
        f"collected {result.episodes_added} episodes ({result.frames_added} samples, {config.strategy}, {config.readout} readout, seed "
        f"{config.seed}) in {result.wall_s:.1f} s: {result.frames_added / result.wall_s:.0f} samples/s overall, "
        f"{result.samples_per_s:.0f} samples/s once started"
    )
    if result.frames_without_face:
        print(f"{result.frames_without_face} frames were dropped: the landmarker found no face in their renders")
    print(f"{args.out} holds {result.episodes_total} episodes; validate with `facetwin dataset check {args.out}`")
    return 0
