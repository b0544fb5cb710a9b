"""Policies from camera labels on the shared photos, every answer read through pixels (docs/camera.md).

Needs two datasets of the same commands, one per readout, and a knn run on each:
    facetwin collect --episodes 10 --out runs/px10 --readout pixels
    facetwin collect --episodes 10 --out runs/fast10
    facetwin train --data runs/px10 --model knn --out runs/knn_px10     # likewise runs/knn_fast10
then: python scripts/camera_label_study.py --out study.json
"""

import argparse
import json
import time

from facetwin.agents.evaluation.closed_loop import EvalConfig, evaluate
from facetwin.agents.evaluation.pixel_confirm import pixel_confirmed_policy
from facetwin.agents.policies.loader import load_policy
from facetwin.sim.twin import FaceTwin


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--faces", default="../shared/faces/images")
    p.add_argument("--pixels-data", default="runs/px10")
    p.add_argument("--runs", nargs=2, default=["runs/knn_fast10", "runs/knn_px10"], metavar=("FAST_RUN", "PIXEL_RUN"))
    p.add_argument("--out", required=True)
    args = p.parse_args()
    twin = FaceTwin()
    readout = twin.pixel_readout("mediapipe")
    policies = {
        "neutral": load_policy("neutral"),
        "knn on fast labels": load_policy(args.runs[0]),
        "knn on pixel labels": load_policy(args.runs[1]),
        "pixel-confirmed knn, k 13": pixel_confirmed_policy(args.pixels_data, twin, readout, k=13),
        "pixel-confirmed knn, k 32": pixel_confirmed_policy(args.pixels_data, twin, readout, k=32),
        "pixel-confirmed knn, k 13, + 39 pixel search": pixel_confirmed_policy(args.pixels_data, twin, readout, 13, 39),
        "pixel-confirmed knn, k 13, + 91 pixel search": pixel_confirmed_policy(args.pixels_data, twin, readout, 13, 91),
    }
    rows = {}
    for name, policy in policies.items():
        t0 = time.perf_counter()
        report = evaluate(policy, args.faces, config=EvalConfig(pixels=True, oracle_budget=0), twin=twin).to_dict()
        rows[name] = {"pixels": report["blendshape_mae"], "fast": report["table"][0]["fast"], "faces": report["n_faces"],
                      "policy_ms": report["latency_ms"]["policy"], "wall_s": time.perf_counter() - t0}
        print(name, rows[name], flush=True)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
