"""Pixel labels: an episode's frames re-read as a camera sees the face (`--readout pixels`).

The collector steps the twin as always and keeps each frame's pose; the whole episode is then read in
one `PixelReadout` batch (a 512 px render each, read by MediaPipe's Face Landmarker in IMAGE mode), and
those expressions and landmarks replace the fast path's. A frame whose render the landmarker finds no face
in is dropped from the episode, never written with zeros: the episode is that much shorter, and
`collect` counts the dropped frames (CollectResult.frames_without_face) and prints them.
"""

from __future__ import annotations

import numpy as np

from facetwin.dataset import EpisodeFrames

PIXEL_SIZE = 512  # the render `facetwin render` and `facetwin eval --pixels` read


def relabel(frames: EpisodeFrames, poses: np.ndarray, readout) -> EpisodeFrames:
    """`frames` with expression and landmarks as `readout` (a PixelReadout) sees `poses` ((T, nq), one per
    frame); frames without a face found are left out."""
    if len(poses) != len(frames):
        raise ValueError(f"one pose per frame: {len(poses)} poses for {len(frames)} frames")
    seen = readout.read(poses)
    keep = np.array([e.face_found for e in seen], bool)
    expression = np.array([e.vector for e, k in zip(seen, keep) if k], np.float32).reshape(-1, frames.expression.shape[1])
    landmarks = np.array([e.landmarks for e, k in zip(seen, keep) if k], np.float32).reshape(-1, *frames.landmarks.shape[1:])
    renders = None if frames.renders is None else [r for r, k in zip(frames.renders, keep) if k]
    if renders is not None and isinstance(frames.renders, np.ndarray):
        renders = np.asarray(renders, np.uint8).reshape(-1, *frames.renders.shape[1:])
    return EpisodeFrames(action=frames.action[keep], state=frames.state[keep], expression=expression,
                         landmarks=landmarks, renders=renders, extra={k: v[keep] for k, v in frames.extra.items()},
                         task=frames.task)
