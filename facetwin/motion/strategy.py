"""What a motion strategy offers the collector, and the factory that picks one by name."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Protocol

import numpy as np

from facetwin.motion.babble import BabbleConfig, BabbleStrategy
from facetwin.motion.expert import ExpertConfig, ExpertStrategy
from facetwin.spec import FaceSpec

STRATEGIES = ("expert", "babble", "mixed")
MIXED_BABBLE_SHARE = 1 / 3


class Strategy(Protocol):
    name: str
    spec: FaceSpec
    seed: int

    def episode(self, episode_index: int, n_frames: int, fps: float) -> np.ndarray:
        """(n_frames, n_servos) commands in [-1, 1], deterministic in (seed, episode_index)."""
        ...


class MixedStrategy:
    """Mostly expert episodes, with every third-ish one babbled.

    The expert's plausible faces are what people make; the babbled episodes spread the commands over
    the whole range, so a forward model learned from the data stays right where a policy searching for
    an unusual human expression ends up. Which episodes babble is fixed by (seed, episode index).
    """

    name = "mixed"

    def __init__(self, spec: FaceSpec | None = None, seed: int = 0, babble_share: float = MIXED_BABBLE_SHARE):
        self.expert = ExpertStrategy(spec, seed)
        self.babble = BabbleStrategy(spec, seed)
        self.spec, self.seed, self.babble_share = self.expert.spec, seed, babble_share

    def episode(self, episode_index: int, n_frames: int, fps: float) -> np.ndarray:
        coin = np.random.default_rng([self.seed, episode_index, 0x6D6978]).random()
        chosen = self.babble if coin < self.babble_share else self.expert
        return chosen.episode(episode_index, n_frames, fps)


def strategy_settings(strategy: Strategy) -> dict:
    """What decides a strategy's episodes besides its name and seed, as JSON: a dataset records it, so that a
    resume plays the same motions even after a default changed."""
    if isinstance(strategy, MixedStrategy):
        return {"expert": strategy_settings(strategy.expert), "babble": strategy_settings(strategy.babble),
                "babble_share": strategy.babble_share}
    return json.loads(json.dumps(asdict(strategy.config)))


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
    if name == "mixed":
        if config is not None:
            raise TypeError("the mixed strategy takes no config; it mixes the default expert and babble strategies")
        return MixedStrategy(spec, seed)
    raise ValueError(f"unknown motion strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
