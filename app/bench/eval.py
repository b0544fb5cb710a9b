"""Closed-loop evaluation speed: per-stage latency, faces per second and the oracle's cost per face.

The policy is a fixed pose (a smile) rather than a trained network, so the numbers measure the loop
(perception, settling, read-out, oracle) on a face that actually moves; a trained policy's own
inference is `facetwin bench policy`'s job.
"""

from __future__ import annotations

import os
from pathlib import Path

from facetwin.human_faces import shared_faces
from facetwin.agents.policies.loader import FacePolicy
from facetwin.agents.evaluation.closed_loop import EvalConfig, evaluate
from facetwin.motion.poses import named_pose
from facetwin.spec import FaceSpec, default_spec

FACES = shared_faces("images")
POSE = "smile"


def run(quick: bool = False, faces: str | Path | None = None, policies: list[str] | None = None,
        spec: FaceSpec | None = None) -> dict:
    from facetwin.sim.twin import FaceTwin

    faces = Path(faces or os.environ.get("FACETWIN_BENCH_FACES", FACES))
    n_faces, budget = (2, 20) if quick else (4, 300)
    spec = spec or default_spec()
    pose = named_pose(POSE, spec)
    policy = FacePolicy(f"pose:{POSE}", lambda _expr: pose, spec.n, kind="pose")
    with FaceTwin(spec) as twin:
        return _run(policy, faces, quick, n_faces, budget, policies, twin)


def _run(policy: FacePolicy, faces: Path, quick: bool, n_faces: int, budget: int, policies: list[str] | None,
         twin) -> dict:
    fast = evaluate(policy, faces, config=EvalConfig(oracle_budget=budget, max_faces=n_faces), twin=twin)
    mean = fast.latency_ms()
    loop_stages = [s for s in mean if s != "oracle"]
    loop_ms = sum(mean[s] for s in loop_stages)
    oracle_s = [r.oracle.seconds for r in fast.results]
    out = {
        "faces": len(fast.results),
        "latency_ms": mean,
        "latency_ms_p95": fast.latency_ms(95),
        "closed_loop_ms_per_face": loop_ms,
        "closed_loop_faces_per_s": 1e3 / loop_ms,
        "twin_side_ms_per_face": loop_ms - mean["perceive_human"],  # policy + settle + read-out
        "oracle_budget": budget,
        "oracle_s_per_face": sum(oracle_s) / len(oracle_s),
        "oracle_ms_per_evaluation": 1e3 * sum(oracle_s) / sum(r.oracle.evaluations for r in fast.results),
        "machine": fast.machine,
    }
    if not quick:
        pixels = evaluate(policy, faces, config=EvalConfig(pixels=True, oracle_budget=0, max_faces=n_faces), twin=twin)
        out["pixels_latency_ms"] = pixels.latency_ms()
    out["policies"] = policy_errors(faces, ["neutral", *(policies or [])], max_faces=n_faces if quick else None, twin=twin)
    return out


def policy_errors(faces: Path, policies: list[str], max_faces: int | None = None, twin=None) -> dict:
    """Closed-loop blendshape MAE, overall and per face region, of each policy (no oracle: comparable, fast), on
    `twin`'s face (the default face's by default; a run trained for another face is refused)."""
    from facetwin.agents.policies.loader import load_policy

    out = {}
    for name in policies:
        policy = load_policy(name, twin.spec if twin is not None else None)
        report = evaluate(policy, faces, config=EvalConfig(oracle_budget=0, max_faces=max_faces), twin=twin)
        summary = report.to_dict()
        out[Path(name).name] = {"blendshape_mae": summary["blendshape_mae"], "per_region": summary["per_region"]}
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
