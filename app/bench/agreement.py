"""`facetwin bench agreement`: how far the fast path reads from the camera, and what the oracle through pixels costs.

agreement: coefficient MAE (the 52 blendshapes) between the fast readout and the pixel readout (512 px render,
MediaPipe's landmarker) of the same settled commands: on random commands (the expert collector's keyframes,
seed 7, as ../shared/notes/camera-readout.md drew them), at the fast oracle's winners and at the pixel
oracle's winners on the shared photos. A readout that agrees on average can still disagree where a search
goes; the second and third figures say how much.

pixel_oracle: the same pixel-path oracle (fast oracle, then pixel evaluations from its answer) on the same
faces and seeds, twice in one process, face by face: each generation read as one `PixelReadout` batch, and
read one frame at a time the way `facetwin eval --pixels` read the twin before (`FaceTwin.render` then
MediaPipe). Wall seconds per face, their ratio, and each one's mean MAE in pixels (the neutral face beside).
"""

from __future__ import annotations

import time

import numpy as np

from facetwin.agents.evaluation.metrics import expression_error
from facetwin.agents.evaluation.oracle import DEFAULT_PIXEL_BUDGET, OracleConfig, optimise, optimise_through_pixels, reach
from facetwin.app.bench.camera import _Today
from facetwin.expression import N_BLENDSHAPES
from facetwin.human_faces import shared_photo_targets
from facetwin.motion import make_strategy
from facetwin.sim.pixel_labels import PIXEL_SIZE
from facetwin.sim.twin import FaceTwin

KEYFRAME_SEED = 7
FAST_BUDGET = 1000  # the fast oracle that warm-starts the pixel one (`facetwin eval`'s default)


def keyframes(twin: FaceTwin, n: int) -> np.ndarray:
    """n expert keyframe commands: what the collector holds the face at."""
    strategy = make_strategy("expert", twin.spec, KEYFRAME_SEED)
    out, episode = [], 0
    while len(out) < n:
        out += [kf.command for kf in strategy.plan(episode, 10.0)]
        episode += 1
    return np.array(out[:n])


def agreement(twin: FaceTwin, readout, commands: np.ndarray) -> dict:
    """Mean coefficient MAE fast vs pixels over the commands whose render shows a face, and how many do not."""
    fast, poses = [], []
    for c in commands:
        fast.append(reach(twin, c).expression)
        poses.append(twin.data.qpos.copy())
    seen = readout.read(np.array(poses))
    gaps = [np.abs(f.blendshapes - p.blendshapes).mean() for f, p in zip(fast, seen) if p.face_found]
    return {"mae": float(np.mean(gaps)) if gaps else None, "n": len(commands), "no_face": len(commands) - len(gaps)}


def run(quick: bool = False) -> dict:
    n_keyframes, n_faces, budget = (16, 1, 28) if quick else (300, 14, DEFAULT_PIXEL_BUDGET)
    fast_budget = 100 if quick else FAST_BUDGET
    twin, reference = FaceTwin(), FaceTwin()
    try:
        readout = twin.pixel_readout(size=PIXEL_SIZE)
        today = _Today(reference)
        for path in (readout, today):  # first reads open GL contexts and landmarker graphs: keep them out
            path.read(_neutral_pose(twin)[None])
        random = agreement(twin, readout, keyframes(twin, n_keyframes))
        faces = shared_photo_targets(n_faces)
        rows, fast_winners, pixel_winners = [], [], []
        for index, (name, target) in enumerate(faces):
            config = OracleConfig(budget=budget, seed=index)
            t0 = time.perf_counter()
            fast, batched = optimise_through_pixels(twin, target, readout, config=config, fast_budget=fast_budget)
            t1 = time.perf_counter()
            # the same search, its generations read one frame at a time: only the readout differs
            one_by_one = optimise(twin, target, {"fast_oracle": fast.command}, config, readout=today)
            t2 = time.perf_counter()
            (neutral,) = readout.read(_neutral_pose(twin))
            rows.append({
                "face": name,
                "batched_s": t1 - t0,
                "one_at_a_time_s": (t2 - t1) + fast.seconds,
                "batched_mae": batched.error.blendshape_mae,
                "one_at_a_time_mae": one_by_one.error.blendshape_mae,
                "fast_oracle_mae_fast": fast.error.blendshape_mae,
                "neutral_mae": expression_error(target, neutral).blendshape_mae,
            })
            fast_winners.append(fast.command)
            pixel_winners.append(batched.command)
        per_face = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "face"}
        return {
            "agreement_mae_random_commands": random["mae"],
            "agreement_mae_fast_oracle_winners": agreement(twin, readout, np.array(fast_winners))["mae"],
            "agreement_mae_pixel_oracle_winners": agreement(twin, readout, np.array(pixel_winners))["mae"],
            "random_commands": random["n"],
            "random_commands_without_face": random["no_face"],
            "faces": len(rows),
            "pixel_budget": budget,
            "fast_budget": fast_budget,
            "pixel_oracle_s_per_face_batched": per_face["batched_s"],
            "pixel_oracle_s_per_face_one_at_a_time": per_face["one_at_a_time_s"],
            "pixel_oracle_speedup": per_face["one_at_a_time_s"] / per_face["batched_s"],
            "pixel_oracle_mae_batched": per_face["batched_mae"],
            "pixel_oracle_mae_one_at_a_time": per_face["one_at_a_time_mae"],
            "neutral_mae_pixels": per_face["neutral_mae"],
            "per_face": rows,
            "coefficients": N_BLENDSHAPES,
            "targets": {"pixel_oracle_speedup": 4.0, "agreement_floor_landmarker_jitter": 0.0076},
        }
    finally:
        twin.close()
        reference.close()


def _neutral_pose(twin: FaceTwin) -> np.ndarray:
    reach(twin, np.zeros(twin.spec.n))
    return twin.data.qpos.copy()
