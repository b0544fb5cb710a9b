"""`--face NAME`: which robot face a command works on, in one place for every command.

A command that makes something for a face (render, collect, real, spec check) works on `--face`, the
default face when it is not given. A command that reads something recorded for a face (a dataset, a
training run) works on the face that thing records; `--face`, when given, must be that face, and a
mismatch is one clear error instead of a model or dataset silently used on the wrong robot. A command that
reads both (fine-tuning a run on a dataset) needs them to record the same face.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facetwin.app.cli import CLIError
from facetwin.spec import DEFAULT_FACE, FaceSpec, SpecError, face_names, load_face


def add_face_option(parser: argparse.ArgumentParser, *, recorded_by: str | None = None, default: str | None = None) -> None:
    """Add `--face NAME`; `recorded_by` names what the command reads the face from when it is not given
    (`default` words the default differently)."""
    default = default or (f"the face {recorded_by} was made for" if recorded_by else DEFAULT_FACE)
    parser.add_argument(
        "--face", metavar="NAME", default=None,
        help=f"robot face: {', '.join(face_names())}, or the path of a face_spec.yaml (default: {default})",
    )


def face_spec(args: argparse.Namespace) -> FaceSpec:
    """The spec of the face `--face` names (the default face when it is not given)."""
    return _load(getattr(args, "face", None))


def dataset_face_spec(args: argparse.Namespace, data_dir: str | Path) -> FaceSpec:
    """The spec of the face a dataset was recorded on, checked against `--face` when that is given."""
    from facetwin.dataset import DatasetError
    from facetwin.dataset.layout import read_info

    try:
        info = read_info(Path(data_dir))
    except DatasetError:  # no dataset there: the command's own reading says so, in its own words
        return face_spec(args)
    return _agree(args, info.recorded_face, f"dataset {data_dir}", "recorded on", "collect")


def run_face_spec(args: argparse.Namespace, run_dir: str | Path) -> FaceSpec:
    """The spec of the face a training run was made for, checked against `--face` when that is given.
    Anything that is not a run directory (e.g. the `neutral` policy) takes `--face` as it is."""
    from facetwin.agents.training.checkpoint import CONFIG_FILE, RunConfig, RunError

    if not (Path(run_dir) / CONFIG_FILE).is_file():
        return face_spec(args)
    try:
        config = RunConfig.read(run_dir)
    except RunError as exc:
        raise CLIError(str(exc)) from exc
    return _agree(args, config.recorded_face, f"policy {run_dir}", "trained for", "train")


def run_and_dataset_face_spec(args: argparse.Namespace, run_dir: str | Path, data_dir: str | Path) -> FaceSpec:
    """The face of a run that is to learn from a dataset (fine-tuning): the run's face, checked against `--face`
    when that is given, and the dataset must have been recorded on it."""
    from facetwin.dataset import DatasetError
    from facetwin.dataset.layout import read_info

    spec = run_face_spec(args, run_dir)
    try:
        recorded = read_info(Path(data_dir)).recorded_face
    except DatasetError:  # no dataset there: the command's own reading says so, in its own words
        return spec
    if recorded is not None and recorded != spec.face:
        raise CLIError(f"dataset {data_dir} was recorded on face {recorded!r}, but policy {run_dir} was trained for "
                       f"face {spec.face!r}: record the data on {spec.face!r} (`facetwin real collect --face "
                       f"{spec.face}`), or start from a policy for {recorded!r} (`facetwin train --face {recorded}`)")
    return spec


def _agree(args: argparse.Namespace, recorded: str | None, what: str, verb: str, remake: str) -> FaceSpec:
    asked = getattr(args, "face", None)
    if asked is None:
        if recorded is None:
            raise CLIError(f"{what} does not name a packaged face ({', '.join(face_names())}); "
                           "pass --face with the path of the face_spec.yaml it was made with")
        return _load(recorded)
    spec = _load(asked)
    if recorded is not None and recorded != spec.face:
        raise CLIError(f"{what} was {verb} face {recorded!r}, not {spec.face!r}: drop --face {asked} (or pass "
                       f"--face {recorded}), or make one for {spec.face!r} with `facetwin {remake} --face {spec.face}`")
    return spec


def _load(face: str | None) -> FaceSpec:
    try:
        return load_face(face)
    except SpecError as exc:
        raise CLIError(str(exc)) from exc
