"""`facetwin view`: look at a recording or a dataset in the rerun viewer (extra `viewer`).

- an .rrd file (from `facetwin mimic --view FILE.rrd`): opened in the viewer as it is;
- a dataset folder (from `facetwin collect`): one episode's commands and the twin's coefficients, with the
  twin re-rendered under each command, logged to a viewer window or, with --out, to an .rrd file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facetwin.app.cli import CLIError
from facetwin.app.face_option import add_face_option, dataset_face_spec


def register(subparsers) -> None:
    p = subparsers.add_parser("view", help="open a mimic recording (.rrd) or a dataset in the rerun viewer",
                              description="Person, twin, both sets of 52 coefficients and the 25 commands on one "
                                          "timeline (rerun-sdk, extra `viewer`).")
    p.add_argument("path", type=Path, metavar="RECORDING.rrd|DATASET",
                   help="a recording from `facetwin mimic --view FILE.rrd`, or a dataset folder from `facetwin collect`")
    p.add_argument("--out", type=Path, metavar="FILE.rrd", help="dataset: write the timeline to this file instead of a window")
    p.add_argument("--episode", type=int, default=0, help="dataset: which episode (default %(default)s)")
    p.add_argument("--max-frames", type=int, default=300, metavar="N", help="dataset: at most N frames (default %(default)s)")
    p.add_argument("--render", type=int, default=256, metavar="SIZE",
                   help="dataset: render the twin under each command at SIZE px (default %(default)s; 0: no pictures)")
    add_face_option(p, recorded_by="the dataset")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facetwin.app.live.viewer import SPAWN, TimelineLog, ViewerError, import_rerun
    from facetwin.dataset import DatasetError
    from facetwin.dataset.layout import INFO_PATH

    path: Path = args.path
    if not path.exists():
        raise CLIError(f"{path} does not exist; pass a recording (.rrd) or a dataset folder")
    if args.max_frames < 1 or args.render < 0 or args.episode < 0:
        raise CLIError("--max-frames must be at least 1, --render and --episode at least 0")
    try:
        if path.is_file() and path.suffix == ".rrd":
            if args.out is not None:
                raise CLIError(f"{path} is already a recording; --out is for datasets")
            if args.face is not None:
                raise CLIError(f"{path} is a recording, shown as it was made; --face is for datasets")
            import_rerun()  # the install hint, before a subprocess fails less clearly
            return _open_recording(path)
        if not (path / INFO_PATH).is_file():
            raise CLIError(f"{path} is neither a recording (.rrd) nor a dataset (no {INFO_PATH}); pass the file "
                           "from `facetwin mimic --view FILE.rrd` or a folder from `facetwin collect`")
        from facetwin.app.live.dataset_view import log_episode

        spec = dataset_face_spec(args, path)  # the face the dataset was recorded on
        with TimelineLog(args.out if args.out is not None else SPAWN, spec.names,
                         name=f"dataset {path.name} episode {args.episode}") as timeline:
            n = log_episode(path, timeline, args.episode, args.max_frames, args.render, spec)
    except (ViewerError, DatasetError) as exc:
        raise CLIError(str(exc)) from exc
    print(f"{path}: episode {args.episode}, {n} frames" + (f" -> {args.out}" if args.out is not None else ""))
    return 0


def _open_recording(path: Path) -> int:
    import subprocess
    import sys

    # the viewer binary ships inside rerun-sdk's wheel; `python -m rerun` finds it whatever the PATH
    try:
        return subprocess.call([sys.executable, "-m", "rerun", str(path)])
    except OSError as exc:
        raise CLIError(f"cannot start the rerun viewer on {path} ({exc})") from exc
