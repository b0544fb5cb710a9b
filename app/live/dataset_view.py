"""A recorded dataset's episode on the viewer's timeline: the commands, the twin's 52 coefficients, and
(optionally) the twin re-rendered under each command, since a collection keeps no pictures by default.

A dataset has no person, so the person's streams stay empty.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facetwin.dataset.layout import ACTION, EXPRESSION, DatasetError, read_episodes, read_info
from facetwin.dataset.reader import read_columns
from facetwin.expression import N_BLENDSHAPES
from facetwin.spec import FaceSpec

from facetwin.app.live.viewer import TimelineLog, ViewFrame


def log_episode(root: str | Path, timeline: TimelineLog, episode: int = 0, max_frames: int | None = None,
                render_size: int = 0, spec: FaceSpec | None = None) -> int:
    """Log one episode (its first ``max_frames`` frames); returns the frames logged. render_size 0: no pictures;
    spec: the face the dataset was recorded on (the default face when None)."""
    root = Path(root)
    info = read_info(root)
    records = [r for r in read_episodes(root, info) if r.episode_index == episode]
    if not records:
        raise DatasetError(f"{root} has no episode {episode}; it holds episodes 0-{info.total_episodes - 1}")
    cols = read_columns(root, info, records, [ACTION, EXPRESSION, "episode_index", "timestamp", "frame_index"])
    rows = np.flatnonzero(cols["episode_index"] == episode)[:max_frames]
    twin = None
    if render_size:
        os.environ.setdefault("MUJOCO_GL", "egl")
        from facetwin.sim.twin import FaceTwin

        twin = FaceTwin(spec, blendshapes=False)  # the recorded coefficients are logged; the twin only draws
    try:
        for row in rows:
            command = cols[ACTION][row]
            picture = None
            if twin is not None:
                twin.apply(command, readout=False)
                picture = twin.render(render_size)
            timeline.log(ViewFrame(int(cols["frame_index"][row]), float(cols["timestamp"][row]), command=command,
                                   twin_rgb=picture, twin_blendshapes=cols[EXPRESSION][row, :N_BLENDSHAPES]))
    finally:
        if twin is not None:
            twin.close()
    return len(rows)
