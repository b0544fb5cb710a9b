"""What a motion strategy offers the collector, and the factory that picks one by name."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from facetwin.motion.babble import BabbleConfig, BabbleStrategy
from facetwin.motion.expert import ExpertConfig, ExpertStrategy
from facetwin.spec import FaceSpec

STRATEGIES = ("expert", "babble")


class Strategy(Protocol):
    name: str
    spec: FaceSpec
    seed: int

    def episode(self, episode_index: int, n_frames: int, fps: float) -> np.ndarray:
        """(n_frames, n_servos) commands in [-1, 1], deterministic in (seed, episode_index)."""
        ...


def make_strategy(
    name: str, spec: FaceSpec | None = None, seed: int = 0, config: ExpertConfig | BabbleConfig | None = None
) -> Strategy:
    if name == "expert":
        if config is not None and not isinstance(config, ExpertConfig):
            raise TypeError(f"the expert strategy takes an ExpertConfig, got {type(config).__name__}")
        return ExpertStrategy(spec, seed, config)
    if name == "babble":
        if config is not None and not isinstance(config, BabbleConfig):
            raise TypeError(f"the babble strategy takes a BabbleConfig, got {type(config).__name__}")
        return BabbleStrategy(spec, seed, config)
    raise ValueError(f"unknown motion strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
