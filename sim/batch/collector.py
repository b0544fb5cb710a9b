"""Collecting episodes on a BatchTwin: one world per episode, every world stepping the same frame at once.

Rows follow EpisodeCollector's rule exactly (reset, settle at rest, then frame k holds command k for
the frame's physics steps and is read out), and the physics is the same float64 MuJoCo. On the CPU
the coefficients come from LiteRT world by world, as the sim backend reads them, so the rows equal
the sim backend's (tests/test_collect_batch.py; a busy CPU also stalls torch's threads far more than
LiteRT, docs/batch.md). On CUDA the torch network runs batched, within BatchTwin's tolerance.
"""

from __future__ import annotations

import os

import numpy as np

from facetwin.dataset import EpisodeFrames
from facetwin.expression import EXPRESSION_DIM, N_LANDMARKS
from facetwin.motion import make_strategy
from facetwin.sim.batch.twin import BatchTwin
from facetwin.spec import FaceSpec

DEFAULT_WORLDS = 64  # episodes per batch: the rollout pool's and the CPU network's sweet spot (docs/batch.md)


class BatchEpisodeCollector:
    """A BatchTwin of `n_worlds` and one strategy: episode indices -> their frames, `n_worlds` at a time."""

    def __init__(self, config, n_worlds: int = DEFAULT_WORLDS, spec: FaceSpec | None = None,
                 bundle: str | os.PathLike | None = None, device: str = "cpu", network: str | None = None):
        from facetwin.sim.collector import frame_steps

        if config.render_size:
            raise ValueError("the batch backend reads the fast path only; collect renders with --backend sim")
        self.config = config
        network = network or ("litert" if str(device) == "cpu" else "torch")
        self.twin = BatchTwin(n_worlds, device, spec=spec, bundle=bundle, network=network)
        self.strategy = make_strategy(config.strategy, self.twin.spec, config.seed)
        self._steps = frame_steps(config.frames_per_episode, config.fps, float(self.twin.model.opt.timestep))

    def collect_many(self, indices) -> list[EpisodeFrames]:
        indices = list(indices)
        out: list[EpisodeFrames] = []
        for start in range(0, len(indices), self.twin.n):
            out.extend(self._batch(indices[start:start + self.twin.n]))
        return out

    def collect(self, episode_index: int) -> EpisodeFrames:
        return self.collect_many([episode_index])[0]

    def _batch(self, indices: list[int]) -> list[EpisodeFrames]:
        cfg, twin, m = self.config, self.twin, len(indices)
        worlds = None if m == twin.n else np.arange(m)  # a last, short batch leaves the other worlds idle
        commands = np.stack([self.strategy.episode(i, cfg.frames_per_episode, cfg.fps) for i in indices])
        t, n = commands.shape[1:]
        action = np.empty((m, t, n), np.float32)
        state = np.empty((m, t, n), np.float32)
        expression = np.empty((m, t, EXPRESSION_DIM), np.float32)
        landmarks = np.empty((m, t, N_LANDMARKS, 3), np.float32)
        twin.reset(readout=False)
        twin.apply(np.zeros((m, n)), worlds, readout=False)  # from a face at rest, as EpisodeCollector starts
        for k, steps in enumerate(self._steps):
            s = twin.step(commands[:, k], int(steps), worlds)
            action[:, k] = s.command[:m].cpu().numpy()
            state[:, k] = s.servo_positions[:m].cpu().numpy()
            expression[:, k, :52] = s.blendshapes[:m].cpu().numpy()
            expression[:, k, 52:] = s.head[:m].cpu().numpy()
            landmarks[:, k] = s.landmarks[:m].cpu().numpy()
        return [EpisodeFrames(action=action[j], state=state[j], expression=expression[j], landmarks=landmarks[j])
                for j in range(m)]

    def close(self) -> None:
        self.twin.close()
