"""Person and twin on one rerun timeline (extra `viewer`: rerun-sdk).

Each logged frame puts, at one point of the `frame` and `time` timelines: the person's picture, the
twin's render, the 52 blendshape coefficients of both (one multi-series plot each, series named by
MediaPipe) and the 25 commands (series named by the face spec). A recording goes to an .rrd file,
which `rerun FILE.rrd` (or `facetwin view FILE.rrd`) opens, or straight to a spawned viewer window.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.expression import BLENDSHAPE_NAMES

INSTALL_HINT = "install the viewer extra: pip install -e '.[viewer]' (rerun-sdk)"
APPLICATION_ID = "facetwin"
SPAWN = "spawn"  # as a destination: open a viewer window instead of writing a file

# where each stream lives in the recording; tests and blueprints read these names
PERSON_IMAGE = "person/image"
TWIN_IMAGE = "twin/image"
PERSON_BLENDSHAPES = "person/blendshapes"
TWIN_BLENDSHAPES = "twin/blendshapes"
COMMANDS = "commands"
JPEG_QUALITY = 85  # pictures are stored compressed: raw frames would make an .rrd of ~1 MB per frame


class ViewerError(RuntimeError):
    """The viewer cannot start or write; the message says what to install or pass."""


@dataclass
class ViewFrame:
    """What one moment of mimicry shows; a missing part (no face, no render) is None and not logged."""

    index: int
    timestamp: float  # seconds
    command: np.ndarray | None = None  # (n_servos,) in [-1, 1]
    person_rgb: np.ndarray | None = None  # (H, W, 3) uint8
    twin_rgb: np.ndarray | None = None
    person_blendshapes: np.ndarray | None = None  # (52,) in BLENDSHAPE_NAMES order
    twin_blendshapes: np.ndarray | None = None


def import_rerun():
    try:
        import rerun as rr
    except ImportError as exc:
        raise ViewerError(f"the viewer needs rerun-sdk: {INSTALL_HINT}") from exc
    return rr


def blueprint(rr):
    """Pictures side by side above the three plots, so person and twin read at a glance."""
    rrb = rr.blueprint
    return rrb.Blueprint(rrb.Vertical(
        rrb.Horizontal(rrb.Spatial2DView(origin=PERSON_IMAGE, name="person"),
                       rrb.Spatial2DView(origin=TWIN_IMAGE, name="twin")),
        rrb.Horizontal(rrb.TimeSeriesView(origin=PERSON_BLENDSHAPES, name="person: 52 coefficients"),
                       rrb.TimeSeriesView(origin=TWIN_BLENDSHAPES, name="twin: 52 coefficients"),
                       rrb.TimeSeriesView(origin=COMMANDS, name="25 commands")),
        row_shares=[3, 2]))


class TimelineLog:
    """One recording, written frame by frame; ``destination`` is an .rrd path or ``SPAWN``."""

    def __init__(self, destination: str | Path, servo_names: tuple[str, ...] | list[str], name: str = "mimic"):
        rr = import_rerun()
        self._rr = rr
        self.servo_names = tuple(servo_names)
        self.destination = destination
        self.stream = rr.RecordingStream(APPLICATION_ID)
        self.stream.send_recording_name(name)
        if str(destination) == SPAWN:
            try:
                self.stream.spawn(default_blueprint=blueprint(rr))
            except Exception as exc:  # no display, or the viewer binary missing from the wheel
                raise ViewerError(f"cannot open the rerun viewer ({exc}); write a file instead: --view FILE.rrd") from exc
        else:
            path = Path(destination)
            if path.suffix != ".rrd":
                raise ViewerError(f"{path}: a recording is an .rrd file; give a path ending in .rrd")
            if not path.parent.is_dir():
                raise ViewerError(f"{path}: folder {path.parent} does not exist")
            self.stream.save(path, default_blueprint=blueprint(rr))
        names = rr.SeriesLines(names=list(BLENDSHAPE_NAMES))
        self.stream.log(PERSON_BLENDSHAPES, names, static=True)
        self.stream.log(TWIN_BLENDSHAPES, names, static=True)
        self.stream.log(COMMANDS, rr.SeriesLines(names=list(self.servo_names)), static=True)
        self.frames = 0

    def log(self, frame: ViewFrame) -> None:
        rr, s = self._rr, self.stream
        s.set_time("frame", sequence=int(frame.index))
        s.set_time("time", duration=float(frame.timestamp))
        for path, rgb in ((PERSON_IMAGE, frame.person_rgb), (TWIN_IMAGE, frame.twin_rgb)):
            if rgb is not None:
                s.log(path, rr.Image(np.ascontiguousarray(rgb)).compress(jpeg_quality=JPEG_QUALITY))
        for path, values in ((PERSON_BLENDSHAPES, frame.person_blendshapes), (TWIN_BLENDSHAPES, frame.twin_blendshapes)):
            if values is not None:
                s.log(path, rr.Scalars(np.asarray(values, np.float64).reshape(len(BLENDSHAPE_NAMES))))
        if frame.command is not None:
            s.log(COMMANDS, rr.Scalars(np.asarray(frame.command, np.float64).reshape(len(self.servo_names))))
        self.frames += 1

    def close(self) -> None:
        self.stream.flush()
        self.stream.disconnect()

    def __enter__(self) -> "TimelineLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
