"""The fair study in pixel terms (docs/study.md): kan-attn, kan and mlp at equal parameter counts, trained the
same way on camera (pixel) labels, each scored in one pass, no refinement, as a camera sees the twin.

One command, after one pixel-labelled dataset (10,000 expert frames; 192 s on one core of a quiet 2-core machine):

    facetwin collect --readout pixels --workers 1 --episodes 100 --frames-per-episode 100 --seed 11 \\
        --out runs/study_data_px
    python scripts/pixel_study.py --data runs/study_data_px --out runs/study

What it runs (every step resumes: a run or a score already on disk is read, not redone, so other data or another
recipe needs another --out):
 1. the forward model f(command) -> pixel expression, fitted once on the dataset's training episodes (split seed
    0) with the closed loop's L1 objective (`forward/direct.fit_forward`): OUT/forward/. Every policy shares it.
 2. for each kind (kan-attn, kan, mlp) x size (SIZES: equal parameter counts, within 3%) x seed: the recipe
    (`--recipe`, default "expression"): the supervised fit on the pixel pairs, then the expression pass through
    the frozen f (`train_from_arrays(..., objective="expression", forward=f)`), so that a policy is scored on the
    expression its command reads as and not pulled to the average of several commands that read alike
    (`--recipe supervised` stops after the first fit). OUT/runs/<kind>-<size>-s<seed>/.
 3. each run, and the reference rows (neutral face, the shipped policy, nearest neighbour on the same pixel
    labels), scored through pixels with no oracle (`closed_loop.evaluate`, `EvalConfig(pixels=True,
    oracle_budget=0)`): on the shared photos (`human_faces.shared_faces("images")`), and on every `--stride`-th
    frame of each shared video (`shared_faces("videos")`), per region: OUT/scores/<name>.json.
 4. mean and sample standard deviation over seeds, wall times: OUT/study.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

KINDS = ("kan-attn", "kan", "mlp")
# Equal parameter counts: "small" is the MLP's default size (about 27k parameters), "large" the shipped
# kan-attn's (about 234k); the other kinds' widths are set to match (counts checked in `check_sizes`).
SIZES: dict[str, dict[str, dict]] = {
    "small": {"kan-attn": {"d_model": 16, "heads": 2, "kan_hidden": [48]},
              "kan": {"hidden": [34]},
              "mlp": {"hidden": [128, 128]}},
    "large": {"kan-attn": {"d_model": 32, "heads": 4, "kan_hidden": [128, 128]},
              "kan": {"hidden": [292]},
              "mlp": {"hidden": [448, 448]}},
}
RECIPES = ("expression", "supervised")


def parameter_count(kind: str, hparams: dict) -> int:
    from facetwin.agents.policies.kan_attention import servo_regions
    from facetwin.agents.policies.kinds import build_model
    from facetwin.spec import default_spec

    spec = default_spec()
    model = build_model(kind, spec.n, servo_regions(spec), hparams)
    return int(sum(p.numel() for p in model.module.parameters()))


def check_sizes(sizes: list[str], tolerance: float = 0.03) -> dict[str, dict[str, int]]:
    counts = {size: {kind: parameter_count(kind, SIZES[size][kind]) for kind in KINDS} for size in sizes}
    for size, per_kind in counts.items():
        low, high = min(per_kind.values()), max(per_kind.values())
        if high > low * (1 + tolerance):
            sys.exit(f"size {size!r}: parameter counts differ by more than {tolerance:.0%}: {per_kind}; fix SIZES")
    return counts


@dataclass
class StudyData:
    """The training rows of one or more pixel datasets, their episodes numbered apart."""

    expression: np.ndarray
    action: np.ndarray
    episode_index: np.ndarray
    readout: str = "pixels"


def load_study_data(paths: list[str]) -> StudyData:
    from facetwin.dataset import load_arrays

    parts = []
    for path in paths:
        arrays = load_arrays(path, landmarks=False)
        if arrays.info.readout != "pixels":
            sys.exit(f"{path} was read {arrays.info.readout!r}; the study trains on camera labels: "
                     "collect it with `facetwin collect --readout pixels`")
        parts.append(arrays)
    offsets = np.cumsum([0] + [int(a.episode_index.max()) + 1 for a in parts[:-1]])
    return StudyData(np.concatenate([a.expression for a in parts]).astype(np.float32),
                     np.concatenate([a.action for a in parts]).astype(np.float32),
                     np.concatenate([a.episode_index.reshape(-1) + o for a, o in zip(parts, offsets)]))


def fit_shared_forward(data, out: Path):
    """f(command) -> pixel expression on the training episodes of split seed 0; cached in out."""
    from facetwin.agents.forward.direct import ForwardSettings, fit_forward, load_forward, save_forward
    from facetwin.agents.training.train import split_validation

    record_path = out / "forward_score.json"
    if record_path.exists():
        record = json.loads(record_path.read_text())
        if record.get("frames") != len(data.expression):
            sys.exit(f"{out} holds a forward model fitted on {record.get('frames')} frames, not these {len(data.expression)}: "
                     "give another --out for other data")
        return load_forward(out), record
    train, val = split_validation(len(data.expression), 0.1, 0, data.episode_index)
    start = time.perf_counter()
    model, score = fit_forward(data.action[train], data.expression[train], data.action[val], data.expression[val],
                               ForwardSettings(seed=0, device="cpu"))
    save_forward(out, model, score)
    record = {**asdict(score), "frames": len(data.expression), "wall_s": round(time.perf_counter() - start, 1)}
    record_path.write_text(json.dumps(record, indent=2))
    return model.eval(), record


def train_one(data, kind: str, size: str, seed: int, recipe: str, forward, run_dir: Path, epochs: int,
              expression_epochs: int) -> dict:
    from facetwin.agents.training.config import ExpressionSettings, FitSettings, TrainConfig
    from facetwin.agents.training.train import train_from_arrays

    done = run_dir / "study_train.json"
    if done.exists():
        return json.loads(done.read_text())
    fit = FitSettings(epochs=epochs, seed=seed, device="cpu", progress=False)
    config = TrainConfig(model=kind, hparams=SIZES[size][kind], fit=fit, objective=recipe if recipe == "expression" else "supervised",
                         expression=ExpressionSettings(epochs=expression_epochs, seed=seed, device="cpu", progress=False))
    start = time.perf_counter()
    result = train_from_arrays(data.expression, data.action, config, episode_index=data.episode_index,
                               forward=forward if recipe == "expression" else None, out_dir=run_dir,
                               readout=data.readout)
    record = {"kind": kind, "size": size, "seed": seed, "recipe": recipe, "parameters": parameter_count(kind, SIZES[size][kind]),
              "train_s": round(time.perf_counter() - start, 1), "val_mse": result.val_mse,
              "epochs_run": len(result.history.train_loss)}
    if result.expression is not None:
        record["expression_epochs_run"] = len(result.expression.history.train_loss)
        record["val_expression_loss_before"] = result.expression.val_expression_loss_before
        record["val_expression_loss"] = result.expression.val_expression_loss
    done.write_text(json.dumps(record, indent=2))
    return record


def face_sets(stride: int) -> list[tuple[str, Path, int]]:
    from facetwin.human_faces import shared_faces
    from facetwin.perception.sources import VIDEO_SUFFIXES

    sets = [("photos", shared_faces("images"), 1)]
    videos = sorted(p for p in shared_faces("videos").iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    sets += [("videos", v, stride) for v in videos]
    return sets


def score(policy_source: str, name: str, scores_dir: Path, twin, stride: int) -> dict:
    """One pass through pixels on the photos and the video frames; per set: MAE, per region, faces."""
    from facetwin.agents.evaluation.closed_loop import EvalConfig, evaluate
    from facetwin.agents.policies.loader import load_policy

    path = scores_dir / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    policy = load_policy(None if policy_source == "default" else policy_source)
    start = time.perf_counter()
    per_set: dict[str, list[dict]] = {"photos": [], "videos": []}
    for set_name, source, set_stride in face_sets(stride):
        report = evaluate(policy, source, config=EvalConfig(pixels=True, oracle_budget=0, stride=set_stride),
                          twin=twin).to_dict()
        per_set[set_name].append({"source": source.name, "faces": report["n_faces"], "mae": report["blendshape_mae"],
                                  "per_region": report["per_region"], "fast": report["table"][0]["fast"]})
    record = {"name": name, "policy": policy_source, "score_s": round(time.perf_counter() - start, 1)}
    for set_name, parts in per_set.items():
        faces = sum(p["faces"] for p in parts)
        weights = [p["faces"] / faces for p in parts]  # every face counts once, whichever video it came from
        regions = parts[0]["per_region"].keys()
        record[set_name] = {
            "faces": faces,
            "mae": float(sum(w * p["mae"] for w, p in zip(weights, parts))),
            "fast": float(sum(w * p["fast"] for w, p in zip(weights, parts))),
            "per_region": {g: float(sum(w * p["per_region"][g] for w, p in zip(weights, parts))) for g in regions},
        }
    scores_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    return record


def summarise(trained: list[dict], scored: dict[str, dict], references: dict[str, dict]) -> dict:
    groups: dict[str, list[str]] = {}
    for t in trained:
        groups.setdefault(f"{t['kind']} {t['size']}", []).append(run_name(t["kind"], t["size"], t["seed"]))
    table = {}
    for group, names in groups.items():
        rows = [scored[n] for n in names if n in scored]
        if not rows:
            continue
        entry = {"seeds": len(rows), "parameters": next(t["parameters"] for t in trained if f"{t['kind']} {t['size']}" == group),
                 "train_s": float(np.mean([t["train_s"] for t in trained if run_name(t["kind"], t["size"], t["seed"]) in names]))}
        for set_name in ("photos", "videos"):
            maes = np.array([r[set_name]["mae"] for r in rows])
            entry[set_name] = {"mean": float(maes.mean()), "sd": float(maes.std(ddof=1)) if len(maes) > 1 else 0.0,
                               "per_seed": maes.tolist(),
                               "per_region": {g: float(np.mean([r[set_name]["per_region"][g] for r in rows]))
                                              for g in rows[0][set_name]["per_region"]}}
        table[group] = entry
    return {"groups": table, "references": {k: {s: v[s] for s in ("photos", "videos")} for k, v in references.items()}}


def markdown(summary: dict) -> str:
    """Two tables: the MAE on each set of faces with its spread, then each set's per-region means."""
    groups, refs = summary["groups"], summary["references"]
    lines = ["| policy | parameters | photos, MAE in pixels (mean ± sd over seeds) | video frames |", "|---|---|---|---|"]
    for name, e in groups.items():
        lines.append(f"| {name} ({e['seeds']} seeds) | {e['parameters']:,} | {e['photos']['mean']:.4f} ± {e['photos']['sd']:.4f} | "
                     f"{e['videos']['mean']:.4f} ± {e['videos']['sd']:.4f} |")
    for name, r in refs.items():
        lines.append(f"| {name} | | {r['photos']['mae']:.4f} | {r['videos']['mae']:.4f} |")
    regions = list(next(iter(groups.values()))["photos"]["per_region"]) if groups else []
    lines += ["", "| policy | " + " | ".join(f"{s}: {g}" for s in ("photos", "videos") for g in regions) + " |",
              "|---" * (1 + 2 * len(regions)) + "|"]
    for name, e in groups.items():
        lines.append(f"| {name} | " + " | ".join(f"{e[s]['per_region'][g]:.4f}" for s in ("photos", "videos") for g in regions) + " |")
    for name, r in refs.items():
        lines.append(f"| {name} | " + " | ".join(f"{r[s]['per_region'][g]:.4f}" for s in ("photos", "videos") for g in regions) + " |")
    return "\n".join(lines)


def run_name(kind: str, size: str, seed: int) -> str:
    return f"{kind}-{size}-s{seed}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["runs/study_data_px"],
                   help="pixel-labelled datasets (collect --readout pixels), trained on as one")
    p.add_argument("--out", default="runs/study")
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--recipe", default="expression", choices=RECIPES)
    p.add_argument("--epochs", type=int, default=60, help="supervised epochs (early stopping, patience 20)")
    p.add_argument("--expression-epochs", type=int, default=20, help="epochs of the expression pass (patience 10)")
    p.add_argument("--stride", type=int, default=10, help="score every stride-th frame of each shared video")
    p.add_argument("--no-references", action="store_true", help="skip the neutral, shipped and nearest-neighbour rows")
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)
    from facetwin.agents.training.config import FitSettings, TrainConfig
    from facetwin.agents.training.train import train_from_arrays
    from facetwin.sim.twin import FaceTwin

    out = Path(args.out)
    counts = check_sizes(args.sizes)
    print("parameters:", json.dumps(counts), flush=True)
    data = load_study_data(args.data)
    print(f"data: {len(data.expression)} frames, {len(np.unique(data.episode_index))} episodes", flush=True)
    forward, forward_record = (fit_shared_forward(data, out / "forward") if args.recipe == "expression" else (None, None))
    if forward_record:
        print("forward:", json.dumps(forward_record), flush=True)
    twin = FaceTwin()
    scores_dir = out / "scores"
    references: dict[str, dict] = {}
    if not args.no_references:
        knn_dir = out / "runs" / "knn-pixels"
        if not (knn_dir / "config.json").exists():
            train_from_arrays(data.expression, data.action, TrainConfig(model="knn", fit=FitSettings(progress=False)),
                              episode_index=data.episode_index, out_dir=knn_dir, readout=data.readout)
        for name, source in (("neutral face", "neutral"), ("shipped kan-attn (fast labels)", "default"),
                             ("nearest neighbour on these pixel labels", str(knn_dir))):
            references[name] = score(source, name.split(" (")[0].replace(" ", "_"), scores_dir, twin, args.stride)
            print(name, references[name]["photos"]["mae"], references[name]["videos"]["mae"], flush=True)
    trained, scored = [], {}
    for size in args.sizes:
        for seed in args.seeds:
            for kind in args.kinds:
                name = run_name(kind, size, seed)
                record = train_one(data, kind, size, seed, args.recipe, forward, out / "runs" / name, args.epochs,
                                   args.expression_epochs)
                trained.append(record)
                scored[name] = score(str(out / "runs" / name), name, scores_dir, twin, args.stride)
                print(name, f"train {record['train_s']} s, score {scored[name]['score_s']} s, photos "
                      f"{scored[name]['photos']['mae']:.4f}, videos {scored[name]['videos']['mae']:.4f}", flush=True)
                summary = summarise(trained, scored, references)
                (out / "study.json").write_text(json.dumps({"args": vars(args), "parameters": counts,
                                                             "forward": forward_record, **summary}, indent=2))
    print(markdown(summarise(trained, scored, references)))


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")
    main()
