"""`facetwin bench sim`: physics, settled fast-path samples and headless renders, measured in one process."""

from __future__ import annotations

import time

import numpy as np

from facetwin.sim.twin import FaceTwin
from facetwin.spec import FaceSpec


def _rate(fn, n: int) -> float:
    fn()  # warm-up (renderer context, caches)
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def run(quick: bool = False, seed: int = 0, spec: FaceSpec | None = None) -> dict:
    rng = np.random.default_rng(seed)
    twin = FaceTwin(spec)
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
    from facetwin.perception import FacePerceiver

    with FacePerceiver(mode="image") as perceiver:
        pixel = _rate(lambda: perceiver.perceive(twin.render(512)), 5 if quick else 30)
        results["pixel_path_per_s"] = pixel
        results["fast_vs_pixel_ratio"] = readout / pixel
        results["poses"] = pose_agreement(twin, perceiver)
    twin.close()
    return results


# (pose, coefficient or head angle, least rise over the neutral render) from the twin's acceptance list.
POSE_CHECKS = (
    ("smile", "mouthSmileLeft", 0.4),
    ("smile", "mouthSmileRight", 0.4),
    ("jaw_open", "jawOpen", 0.4),
    ("blink", "eyeBlinkLeft", 0.5),
    ("blink", "eyeBlinkRight", 0.5),
    ("brow_raise", "browInnerUp", 0.3),
    ("brow_furrow", "browDownLeft", 0.3),
    ("brow_furrow", "browDownRight", 0.3),
    ("pucker", "mouthPucker", 0.3),
    ("look_left", "eyeLookOutLeft", 0.3),
    ("look_right", "eyeLookOutRight", 0.3),
    ("head_turn_left", "head_yaw", 15.0),
)


def pose_agreement(twin: FaceTwin, perceiver) -> dict:
    """Every named pose the face has the mechanism for through both readouts: faces seen, fast/pixel
    agreement, and the pixel-path rises."""
    from facetwin.app.spec_check import face_poses
    from facetwin.expression import EXPRESSION_NAMES

    fast, pixel, faces = {}, {}, {}
    poses = face_poses(twin.spec)
    for name, command in poses.items():
        twin.reset(readout=False)
        state = twin.apply(command)
        seen = perceiver.perceive(twin.render(512))
        faces[name] = int(seen.extra.get("faces_detected", int(seen.face_found)))
        fast[name], pixel[name] = state.expression.vector, seen.vector
    twin.reset()
    mad = {n: float(np.abs(fast[n][:52] - pixel[n][:52]).mean()) for n in poses}
    rises = {}
    for pose, key, least in POSE_CHECKS:
        if pose not in poses:
            continue
        i = EXPRESSION_NAMES.index(key)
        rise = float(pixel[pose][i] - pixel["neutral"][i])
        rises[f"{pose}.{key}"] = {"pixel_rise": rise, "fast_rise": float(fast[pose][i] - fast["neutral"][i]), "least": least}
    return {
        "fast_vs_pixel_mad_mean": float(np.mean(list(mad.values()))),
        "fast_vs_pixel_mad": mad,
        "faces_detected": faces,
        "pixel_rises": rises,
        "pixel_checks_passed": sum(r["pixel_rise"] >= r["least"] for r in rises.values()),
        "pixel_checks": len(rises),
    }
