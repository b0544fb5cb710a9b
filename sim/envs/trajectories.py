"""Where FaceTrack's moving targets come from: expert motion replayed through the twin, or videos.

A source string picks one (`trajectory_source=` of the env):

- ``"expert"``: an expert episode (keyframes of motion primitives joined by minimum-jerk moves)
  played on the twin at the physics rate and read back frame by frame: reachable, with the twin's
  own lag already in it;
- ``"video:PATH"``: a video file, or every video in a folder, perceived per frame (tracked and
  One-Euro smoothed) once and cached on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from facetwin.motion import ExpertConfig, ExpertStrategy
from facetwin.perception.sources import VIDEO_SUFFIXES
from facetwin.sim.envs.perceived import PerceivedClip, media_files, perceive_file
from facetwin.sim.envs.snapshot import physics_state
from facetwin.sim.twin import FaceTwin

SOURCE_KINDS = ("expert", "video:PATH")


@dataclass
class Trajectory:
    """One episode's moving target, one row per frame."""

    expressions: np.ndarray  # (T, 55) float32, head in degrees
    fps: float
    label: str
    images: np.ndarray | None = None  # (T, h, w, 3) face crops (videos)
    physics_states: list[np.ndarray] | None = None  # the twin as each target frame (expert), when kept
    commands: np.ndarray | None = None  # (T - 1, n_servos): command t carries frame t to t + 1 (expert)

    def __len__(self) -> int:
        return len(self.expressions)


class TrajectorySource(Protocol):
    kind: str

    def sample(self, rng: np.random.Generator, twin: FaceTwin, keep_states: bool) -> Trajectory:
        ...


class ExpertTrajectories:
    kind = "expert"

    def __init__(self, twin: FaceTwin, n_frames: int, fps: float, config: ExpertConfig | None = None):
        if n_frames < 2 or fps <= 0:
            raise ValueError(f"an expert trajectory needs n_frames >= 2 and fps > 0, got {n_frames}, {fps}")
        self.expert = ExpertStrategy(twin.spec, 0, config)
        self.n_frames, self.fps = n_frames, float(fps)

    def sample(self, rng: np.random.Generator, twin: FaceTwin, keep_states: bool) -> Trajectory:
        # Frame 0 is the neutral face the env starts from; frame t + 1 is the face one frame period
        # after command t, so replaying `commands` from a reset twin reproduces the frames exactly.
        episode = int(rng.integers(2**31))
        commands = self.expert.episode(episode, self.n_frames - 1, self.fps)
        skip = frame_skip(self.fps, twin.timestep)
        twin.reset()
        exprs, states = [twin.expression().vector], [physics_state(twin)] if keep_states else []
        for command in commands:
            twin.set_command(command)
            twin.step(skip)
            exprs.append(twin.expression().vector)
            if keep_states:
                states.append(physics_state(twin))
        return Trajectory(np.stack(exprs), self.fps, f"expert episode {episode}", physics_states=states or None,
                          commands=commands)


class VideoTrajectories:
    kind = "video"

    def __init__(self, path: str | Path, bundle=None, cache_dir=None, max_frames: int | None = None):
        self.clips: list[PerceivedClip] = [perceive_file(p, bundle, cache_dir) for p in media_files(path, VIDEO_SUFFIXES)]
        self.max_frames = max_frames
        short = [c.path for c in self.clips if len(c) < 2]
        if short:
            raise ValueError(f"videos need at least 2 frames to track: {', '.join(short)}")

    def sample(self, rng: np.random.Generator, twin: FaceTwin, keep_states: bool) -> Trajectory:
        clip = self.clips[int(rng.integers(len(self.clips)))]
        n = len(clip) if self.max_frames is None else min(len(clip), self.max_frames)
        return Trajectory(clip.expressions[:n], clip.fps, Path(clip.path).name, images=clip.thumbnails[:n])


def frame_skip(fps: float, timestep: float) -> int:
    """Physics steps per video frame: the nearest whole number, at least one."""
    return max(1, int(round(1.0 / (fps * timestep))))


def make_trajectory_source(text: str, twin: FaceTwin, *, n_frames: int, fps: float, bundle=None, cache_dir=None,
                           max_frames: int | None = None, expert_config: ExpertConfig | None = None) -> TrajectorySource:
    kind, _, arg = str(text).partition(":")
    if kind == "expert" and not arg:
        return ExpertTrajectories(twin, n_frames, fps, expert_config)
    if kind == "video" and arg:
        return VideoTrajectories(arg, bundle, cache_dir, max_frames)
    raise ValueError(f"unknown trajectory source {text!r}; use one of {', '.join(SOURCE_KINDS)}")
