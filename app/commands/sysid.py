"""`facetwin sysid`: fit the twin's mechanics to a real dataset and report sim-vs-real error before/after.

    facetwin sysid --data real_data --budget 300 --out params.json

The twin replays each recorded episode from its measured servo positions; the error (51 blendshape
MAE + 0.01 x head MAE in degrees) is reported on held-out episodes, nominal twin vs fitted.
A recording read from pixels is best matched by reading the twin from pixels too (`--readout pixels`,
~50 ms a read: use `--read-every`), e.g. refining a cheap fast-path fit:

    facetwin sysid --data D --budget 150 --out fast.json
    facetwin sysid --data D --readout pixels --read-every 4 --start fast.json --sigma 0.2 --budget 60 --out params.json
 Apply the result with `apply_perturbation(FaceTwin(), Perturbation.load("params.json"))`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from facetwin.app.cli import CLIError
from facetwin.app.face_option import add_face_option, dataset_face_spec


def register(subparsers) -> None:
    p = subparsers.add_parser("sysid", help="fit the twin's skin/cable/servo parameters to a real dataset",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="real dataset (e.g. from `facetwin real collect`)")
    p.add_argument("--budget", type=int, default=200, help="twin evaluations for CMA-ES")
    p.add_argument("--out", type=Path, default=None, help="write the fitted parameters here (JSON)")
    p.add_argument("--episodes", type=int, default=None, help="use only the first N episodes (speed)")
    p.add_argument("--guides", action="store_true", help="also fit guide offsets, one (x, y, z) per region")
    p.add_argument("--val-fraction", type=float, default=0.25, help="share of episodes held out for the report")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--readout", choices=("fast", "pixels"), default="fast",
                   help="read the twin by its fast path, or render + landmarker like the recording's camera")
    p.add_argument("--read-every", type=int, default=1, help="read only every k-th frame (all are driven)")
    p.add_argument("--render-size", type=int, default=None,
                   help="pixels readout render size (default: the recording's, else 384)")
    p.add_argument("--start", type=Path, default=None, help="start the search from these parameters (JSON)")
    p.add_argument("--sigma", type=float, default=0.5, help="initial CMA-ES step (search units)")
    add_face_option(p, recorded_by="the dataset")
    p.set_defaults(func=run)


def load_pairs(data: Path, episodes: int | None):
    from facetwin.dataset import load_arrays
    from facetwin.app.live.real_collect import CAPTURE_FRAME
    from facetwin.sim.sysid import SysidPairs

    arrays = load_arrays(data, landmarks=False)
    frame = arrays.extra.get(CAPTURE_FRAME)
    frame = arrays.frame_index if frame is None else np.asarray(frame).reshape(-1)
    pairs = SysidPairs(arrays.state, arrays.expression, arrays.episode_index, frame, float(arrays.info.fps))
    if episodes is not None:
        pairs = pairs.subset(pairs.episodes()[:episodes])
    return pairs


def _recorded_render_size(data: Path) -> int:
    from facetwin.app.live.real_collect import read_real_config

    recorded = read_real_config(data)
    return recorded.render_size if recorded is not None else 384


def run(args) -> int:
    os.environ.setdefault("MUJOCO_GL", "egl")
    from facetwin.dataset import DatasetError
    from facetwin.sim.perturb import Perturbation
    from facetwin.sim.sysid import SysidConfig, identify
    from facetwin.sim.twin import FaceTwin

    if not args.data.is_dir():
        raise CLIError(f"no dataset directory at {args.data}")
    if args.budget < 1:
        raise CLIError("--budget must be at least 1")
    try:
        pairs = load_pairs(args.data, args.episodes)
        start = Perturbation.load(args.start) if args.start is not None else None
        config = SysidConfig(budget=args.budget, fit_guides=args.guides, val_fraction=args.val_fraction, seed=args.seed,
                             readout=args.readout, read_every=args.read_every, start=start, sigma0=args.sigma,
                             render_size=args.render_size or _recorded_render_size(args.data), progress=True)
        with FaceTwin(dataset_face_spec(args, args.data)) as twin:
            result = identify(twin, pairs, config)
    except (DatasetError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    print(f"fitted: {result.parameters.describe()}")
    start = f" (start {result.val_start:.5f})" if result.val_start is not None else ""
    print(f"sim-vs-real error ({result.readout} readout), held-out ({result.n_val} rows): nominal {result.val_before:.5f}"
          f"{start} -> fitted {result.val_after:.5f}; "
          f"fitted-on ({result.n_train} rows): {result.train_before:.5f} -> {result.train_after:.5f} "
          f"({result.evaluations} evaluations, {result.seconds:.0f} s)")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        print(f"parameters written to {args.out} (apply: apply_perturbation(FaceTwin(), Perturbation.load(path)))")
    return 0
