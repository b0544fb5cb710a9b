"""Env throughput for `facetwin bench`'s `env` group: one env, and 2-env sync/async vectors.

Steps/s count env steps (a 2-env vector step is two), random actions, episode resets included
(FaceMimic's default 10-step episodes). Ratios are against the single env timed in the same process.
"""

from __future__ import annotations

import time

import gymnasium as gym

import facetwin.sim.envs  # noqa: F401  (registers the envs)

ENV_ID = "facetwin/FaceMimic-v0"


def _single(env_id: str, steps: int) -> float:
    with gym.make(env_id) as env:
        env.reset(seed=0)
        env.action_space.seed(0)
        start = time.perf_counter()
        for _ in range(steps):
            *_, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        return steps / (time.perf_counter() - start)


def _vector(env_id: str, mode: str, steps: int, num_envs: int = 2) -> float:
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    try:
        envs.reset(seed=0)
        envs.action_space.seed(0)
        envs.step(envs.action_space.sample())  # workers' first step outside the clock
        start = time.perf_counter()
        for _ in range(steps):
            envs.step(envs.action_space.sample())  # sub-envs reset themselves at episode ends
        return num_envs * steps / (time.perf_counter() - start)
    finally:
        envs.close()


def run(quick: bool = False) -> dict:
    """Env steps/s: FaceMimic single, 2-env sync and async vectors (and their ratios to single), FaceTrack single.

    quick: 60 env steps per figure (a few seconds in all) instead of 600.
    """
    steps = 60 if quick else 600
    single = _single(ENV_ID, steps)
    sync2 = _vector(ENV_ID, "sync", steps // 2)
    async2 = _vector(ENV_ID, "async", steps // 2)
    track = _single("facetwin/FaceTrack-v0", steps)
    return {
        "env_id": ENV_ID,
        "steps": steps,
        "single_steps_per_s": single,
        "sync2_steps_per_s": sync2,
        "async2_steps_per_s": async2,
        "sync2_speedup_vs_single": sync2 / single,
        "async2_speedup_vs_single": async2 / single,
        "track_single_steps_per_s": track,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
