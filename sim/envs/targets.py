"""Where FaceMimic's targets come from: the twin's own expressions, human faces, or a dataset.

A source string picks one (`target_source=` of the env):

- ``"primitives"``: an expert keyframe (1-3 motion primitives under the expert rules) applied to the
  twin and read back, so every target is reachable;
- ``"faces:DIR"``: every image in DIR, and every ``video_stride``-th frame of every video with a face,
  perceived once with MediaPipe and cached on disk;
- ``"dataset:DIR"``: the rows of a collected dataset's ``observation.expression``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from facetwin.motion import ExpertConfig, ExpertStrategy
from facetwin.sim.envs.perceived import media_files, perceive_file
from facetwin.sim.envs.snapshot import physics_state
from facetwin.sim.twin import FaceTwin

SOURCE_KINDS = ("primitives", "faces:DIR", "dataset:DIR")


@dataclass
class Target:
    """One episode's target expression and what `render()` shows for it."""

    expression: np.ndarray  # (55,) float32, head in degrees
    label: str
    image: np.ndarray | None = None  # face crop to show (human faces)
    physics_state: np.ndarray | None = None  # the twin posed as the target (primitives)
    command: np.ndarray | None = None  # the servo command that produced it, when known


class TargetSource(Protocol):
    kind: str

    def sample(self, rng: np.random.Generator, twin: FaceTwin) -> Target:
        """A target drawn with `rng`; may use `twin` but leaves it for the caller to reset."""
        ...


class PrimitiveTargets:
    kind = "primitives"

    def __init__(self, twin: FaceTwin, config: ExpertConfig | None = None):
        self.expert = ExpertStrategy(twin.spec, 0, config)

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """The keyframe's command and label, drawn with `rng` (the vector env settles many at once)."""
        activations = self.expert.draw_activations(rng)
        command = self.expert.shape(activations, rng)
        return command, " + ".join(f"{a.primitive} {a.intensity:.2f}" for a in activations) or "neutral"

    def sample(self, rng: np.random.Generator, twin: FaceTwin) -> Target:
        command, label = self.draw(rng)
        twin.reset()
        state = twin.apply(command)
        return Target(state.expression.vector, label, physics_state=physics_state(twin), command=command)


class FixedTargets:
    """A finite set of expressions drawn uniformly (human faces, dataset rows)."""

    def __init__(self, kind: str, expressions: np.ndarray, labels: list[str], images: np.ndarray | None = None):
        if len(expressions) == 0:
            raise ValueError(f"the {kind} target source holds no expressions")
        self.kind, self.expressions, self.labels, self.images = kind, np.asarray(expressions, np.float32), labels, images

    def __len__(self) -> int:
        return len(self.expressions)

    def sample(self, rng: np.random.Generator, twin: FaceTwin) -> Target:
        i = int(rng.integers(len(self)))
        image = None if self.images is None else self.images[i]
        return Target(self.expressions[i].copy(), self.labels[i], image=image)


def face_targets(folder: str | Path, bundle=None, cache_dir=None, video_stride: int = 10) -> FixedTargets:
    if video_stride < 1:
        raise ValueError(f"video_stride must be >= 1, got {video_stride}")
    exprs, labels, images = [], [], []
    for path in media_files(folder):
        clip = perceive_file(path, bundle, cache_dir)
        # A still image is one target; a video gives every stride-th frame that really shows a face.
        frames = [0] if clip.fps == 0 else [i for i in range(0, len(clip), video_stride) if clip.face_found[i]]
        for i in frames:
            exprs.append(clip.expressions[i])
            labels.append(path.name if clip.fps == 0 else f"{path.name}#{i}")
            images.append(clip.thumbnails[i])
    return FixedTargets("faces", np.stack(exprs), labels, np.stack(images))


def dataset_targets(root: str | Path) -> FixedTargets:
    from facetwin.dataset import load_arrays

    arrays = load_arrays(root, landmarks=False)
    labels = [f"{Path(root).name} ep{e} frame{f}" for e, f in zip(arrays.episode_index, arrays.frame_index)]
    return FixedTargets("dataset", arrays.expression, labels)


def make_target_source(text: str, twin: FaceTwin, *, bundle=None, cache_dir=None, video_stride: int = 10,
                       expert_config: ExpertConfig | None = None) -> TargetSource:
    kind, _, arg = str(text).partition(":")
    if kind == "primitives" and not arg:
        return PrimitiveTargets(twin, expert_config)
    if kind == "faces" and arg:
        return face_targets(arg, bundle, cache_dir, video_stride)
    if kind == "dataset" and arg:
        return dataset_targets(arg)
    raise ValueError(f"unknown target source {text!r}; use one of {', '.join(SOURCE_KINDS)}")
