"""Closed-loop evaluation speed: per-stage latency, faces per second and the oracle's cost per face.

Uses the neutral policy on the shared photos, so it measures the loop (perception, twin, read-out,
oracle) and not any one network; a trained policy's own inference is `facetwin bench policy`'s job.
"""

from __future__ import annotations

import os
from pathlib import Path

from facetwin.agents.eval_policy import load_eval_policy
from facetwin.agents.evaluation import EvalConfig, evaluate

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces" / "images"


def run(quick: bool = False, faces: str | Path | None = None) -> dict:
    faces = Path(faces or os.environ.get("FACETWIN_BENCH_FACES", FACES))
    n_faces, budget = (2, 20) if quick else (4, 300)
    policy = load_eval_policy("neutral")
    fast = evaluate(policy, faces, config=EvalConfig(oracle_budget=budget, max_faces=n_faces))
    loop_stages = [s for s in fast.latency_ms() if s != "oracle"]
    loop_ms = sum(fast.latency_ms()[s] for s in loop_stages)
    twin_ms = sum(fast.latency_ms()[s] for s in loop_stages if s != "perceive_human")
    oracle_s = [r.oracle.seconds for r in fast.results]
    out = {
        "faces": len(fast.results),
        "latency_ms": fast.latency_ms(),
        "latency_ms_p50": fast.latency_ms(50),  # the first face pays the landmarker's warm-up
        "closed_loop_ms_per_face": loop_ms,
        "closed_loop_faces_per_s": 1e3 / loop_ms,
        "twin_side_ms_per_face": twin_ms,  # policy + settle + read-out: what the oracle pays per candidate, roughly
        "oracle_budget": budget,
        "oracle_s_per_face": sum(oracle_s) / len(oracle_s),
        "oracle_ms_per_evaluation": 1e3 * sum(oracle_s) / sum(r.oracle.evaluations for r in fast.results),
        "machine": fast.machine,
    }
    if not quick:
        pixels = evaluate(policy, faces, config=EvalConfig(pixels=True, oracle_budget=0, max_faces=n_faces))
        out["pixels_latency_ms"] = pixels.latency_ms()
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
