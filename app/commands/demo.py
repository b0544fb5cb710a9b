"""`facetwin demo`: the main job end to end — collect in the twin, train the policy, evaluate it on people.

Each step is the same command a user would run by hand (printed as it starts), so the demo doubles as
a worked example of the pipeline; finished steps are skipped when the demo is run again.
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

from facetwin.human_faces import shared_faces
from facetwin.agents.policies.names import DEFAULT_KIND, MODEL_KINDS
from facetwin.app.cli import CLIError
from facetwin.app.face_option import add_face_option

SHARED_FACES = shared_faces("images")


def register(sub) -> None:
    from facetwin.agents.evaluation.oracle import DEFAULT_PIXEL_BUDGET

    p = sub.add_parser("demo", help="collect -> train -> evaluate -> pictures, in one go")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="where everything goes (default %(default)s)")
    p.add_argument("--faces", type=Path, help=f"human faces to mimic (default: {SHARED_FACES} when present)")
    # the shipped policy's recipe (scripts/train_default_policy.sh; a test holds them equal)
    p.add_argument("--episodes", type=int, default=600, help="expert episodes to collect (default %(default)s)")
    p.add_argument("--frames-per-episode", type=int, default=100, help="frames per episode (default %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="collection processes (default %(default)s)")
    p.add_argument("--model", default=DEFAULT_KIND, choices=MODEL_KINDS,
                   help="policy kind to train (default %(default)s)")
    p.add_argument("--oracle-budget", type=int, default=DEFAULT_PIXEL_BUDGET,
                   help="the oracle's evaluations through pixels per face (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="a minutes-long smoke run with little data")
    p.add_argument("--landmarker", type=Path)
    add_face_option(p)
    p.set_defaults(func=run)


def steps(args: argparse.Namespace) -> list[tuple[str, list[str], Path]]:
    """(title, argv, the file whose existence means the step is done)."""
    out = args.out
    episodes, frames, budget = args.episodes, args.frames_per_episode, args.oracle_budget
    # every other option is the command's own default: the demo is `facetwin collect && facetwin train`
    train_options, eval_options = [], []
    if args.quick:
        # a smoke run, whose policy must still beat the neutral face (docs/face.md, the brow fold)
        episodes, frames, budget = 12, 30, 30
        train_options = ["--epochs", "10", "--expression-epochs", "3", "--aggregate-targets", "50"]
        eval_options = ["--oracle-budget", "100"]
    lm = ["--landmarker", str(args.landmarker)] if args.landmarker else []
    # what is made for a face says so; train and eval read the face the dataset and the run record
    face = ["--face", str(args.face)] if getattr(args, "face", None) else []
    data, run = out / "data", out / args.model
    plan = [
        (
            "collect expert (commands, expression) pairs in the twin",
            ["collect", "--backend", "sim", "--episodes", str(episodes), "--frames-per-episode", str(frames),
             "--workers", str(args.workers), "--out", str(data), "--resume", *face],
            data / "meta" / "info.json",
        ),
        ("check the dataset", ["dataset", "check", str(data)], None),
        (
            f"train the {args.model} policy",
            ["train", "--data", str(data), "--model", args.model, "--out", str(run), *train_options],
            run / "config.json",
        ),
        ("render every named pose", ["render", "--sheet", "--size", "256", "--out", str(out / "poses.png"), *lm, *face],
         None),
    ]
    faces = args.faces or (SHARED_FACES if SHARED_FACES.is_dir() else None)
    if faces is not None:
        plan.append(
            (
                "mimic people: closed loop against the per-face oracle",
                ["eval", "--policy", str(run), "--faces", str(faces), "--out", str(out / "eval.json"),
                 "--sheet", str(out / "eval_sheet.png"), "--pixels", "--oracle-pixel-budget", str(budget),
                 *eval_options, *lm],
                None,
            )
        )
    return plan


def run(args: argparse.Namespace) -> int:
    from facetwin.app.cli import main

    if args.faces is not None and not args.faces.exists():
        raise CLIError(f"--faces {args.faces} does not exist")
    if args.faces is None and not SHARED_FACES.is_dir():
        print("no --faces given and no ../shared/faces beside the project: the evaluation step is skipped")
    args.out.mkdir(parents=True, exist_ok=True)
    for title, argv, done in steps(args):
        if done is not None and done.exists() and argv[0] != "collect":
            print(f"[demo] {title}: already done ({done})")
            continue
        print(f"[demo] {title}\n       facetwin {shlex.join(argv)}", flush=True)
        start = time.perf_counter()
        status = main(argv)
        if status != 0:
            raise CLIError(f"step '{title}' failed (exit {status}); rerun `facetwin {shlex.join(argv)}` to see why")
        print(f"[demo] {title}: done in {time.perf_counter() - start:.0f} s", flush=True)
    print(f"[demo] results in {args.out}: data/, {args.model}/ (checkpoint, loss.png), poses.png, eval.json, eval_sheet.png")
    return 0
