"""`facetwin bench sim`: physics, settled fast-path samples and headless renders, measured in one process."""

from __future__ import annotations

import time

import numpy as np

from facetwin.sim.twin import FaceTwin


def _rate(fn, n: int) -> float:
    fn()  # warm-up (renderer context, caches)
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def run(quick: bool = False, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    twin = FaceTwin()
    n = 50 if quick else 400
    commands = rng.uniform(-1, 1, size=(n, twin.spec.n)) * 0.5

    physics = _rate(lambda: twin.step(1), 200 if quick else 5000)

    # Settled samples: each a fresh command from a random face, settled, read out through the fast path.
    it = iter(np.concatenate([commands, commands]))
    settled = _rate(lambda: twin.apply(next(it)), n - 1)
    steps = []
    for c in commands[: min(n, 50)]:
        steps.append(twin.apply(c).settle_steps)

    # Tracking samples: the collector's case, a smooth trajectory stepped at 30 fps.
    frame_steps = max(1, round(1 / 30 / twin.timestep))

    def track():
        twin.set_command(twin.command * 0.9 + rng.uniform(-1, 1, twin.spec.n) * 0.1)
        twin.step(frame_steps)
        twin.expression()

    tracking = _rate(track, n)
    readout = _rate(twin.expression, n)
    renders = _rate(lambda: twin.render(512), 10 if quick else 60)
    results = {
        "physics_steps_per_s": physics,
        "settled_samples_per_s": settled,
        "settle_steps_median": float(np.median(steps)),
        "tracking_samples_per_s_30fps": tracking,
        "fast_readout_per_s": readout,
        "renders_per_s_512": renders,
        "fast_vs_render_ratio": readout / renders,
        "targets": {"settled_samples_per_s": 300, "renders_per_s_512": 30},
    }
    pixel = _pixel_rate(twin, 5 if quick else 30)
    if pixel is not None:
        results["pixel_path_per_s"] = pixel
        results["fast_vs_pixel_ratio"] = readout / pixel
    twin.close()
    return results


def _pixel_rate(twin: FaceTwin, n: int) -> float | None:
    from facetwin.perception import FacePerceiver

    with FacePerceiver(mode="image") as perceiver:
        return _rate(lambda: perceiver.perceive(twin.render(512)), n)
