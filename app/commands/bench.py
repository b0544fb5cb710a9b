"""`facetwin bench`: every benchmark group from one entry point, with machine info and regression flags."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import time
import traceback
from pathlib import Path

from facetwin.app.cli import CLIError
from facetwin.app.face_option import add_face_option, face_spec
from facetwin.spec import DEFAULT_FACE

# group -> module exposing run(quick: bool) -> dict. The stages own their benchmarks; this composes them.
GROUPS = {
    "sim": "facetwin.app.bench.twin",
    "collect": "facetwin.app.bench.collect",
    "policy": "facetwin.app.bench.policy",
    "eval": "facetwin.app.bench.eval",
    "env": "facetwin.app.bench.envs",
    "real": "facetwin.app.bench.real",
    "batch": "facetwin.app.bench.batch",
    "camera": "facetwin.app.bench.camera",
    "range": "facetwin.app.bench.range",
    "landmarker": "facetwin.app.bench.landmarker",
    "agreement": "facetwin.app.bench.agreement",
    "oracle": "facetwin.app.bench.oracle",
}
# The groups about one face (its poses through the pixels, its expressive range, its bus, its closed loop) take
# `--face`; the others time machinery (collectors, environments, batches, networks, renders) on the default face.
FACE_GROUPS = ("sim", "range", "real", "eval")
HIGHER_IS_BETTER = ("per_s", "fps", "speedup", "throughput")
LOWER_IS_BETTER = ("_ms", "mae", "latency", "seconds", "error", "_s_")
REGRESSION_TOLERANCE = 0.2


def register(sub) -> None:
    p = sub.add_parser("bench", help="run benchmark groups and write results.json, results.md and plots")
    p.add_argument("groups", nargs="*", metavar="GROUP", help=f"groups to run (default: all): {', '.join(GROUPS)}")
    p.add_argument("--quick", action="store_true", help="CI-sized runs")
    p.add_argument("--out", type=Path, default=Path("bench_results"), help="output directory")
    p.add_argument("--baseline", type=Path, help="a previous results.json: flag regressions against it")
    p.add_argument("--policies", nargs="+", metavar="RUN_DIR", help="trained runs whose per-region errors the eval group compares")
    p.add_argument("--soak", type=int, metavar="N", help="real group: also N fault-injected control ticks (facetwin.real.soak)")
    add_face_option(p, default=f"{DEFAULT_FACE}; given, it runs the groups about one face ({', '.join(FACE_GROUPS)}), all of them by default")
    p.set_defaults(func=run)


def machine_info() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "mujoco_gl": os.environ.get("MUJOCO_GL"),
    }
    for pkg in ("mujoco", "torch", "mediapipe", "numpy", "gymnasium"):
        try:
            info[pkg] = importlib.import_module(pkg).__version__
        except Exception:  # a missing optional package is reported, not fatal
            info[pkg] = None
    try:
        import torch

        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:
        info["cuda"] = None
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def flatten(d: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
    return out


def direction(metric: str) -> int:
    """+1 if bigger is better, -1 if smaller is better, 0 if the name does not say."""
    name = metric.lower()
    if "target" in name:
        return 0
    if any(t in name for t in HIGHER_IS_BETTER):
        return 1
    if any(t in name for t in LOWER_IS_BETTER) or name.endswith("_s"):
        return -1
    return 0


def regressions(current: dict, baseline: dict, tolerance: float = REGRESSION_TOLERANCE) -> list[str]:
    cur, base = flatten(current.get("groups", {})), flatten(baseline.get("groups", {}))
    found = []
    for key, value in cur.items():
        sign = direction(key)
        if sign == 0 or key not in base or base[key] == 0:
            continue
        change = (value - base[key]) / abs(base[key]) * sign
        if change < -tolerance:
            found.append(f"{key}: {base[key]:.4g} -> {value:.4g} ({change * 100:+.0f}%)")
    return found


def to_markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# facetwin benchmarks",
        "",
        f"Machine: {m['cpu']} ({m['cpu_count']} cores), GPU: {m.get('cuda') or 'none'}, "
        f"mujoco {m['mujoco']}, torch {m['torch']}, MUJOCO_GL={m['mujoco_gl']}. Quick: {results['quick']}."
        + (f" Face: {results['face']}." if results.get("face") else ""),
        "",
        "| group | metric | value |",
        "|---|---|---|",
    ]
    for group, res in results["groups"].items():
        if "error" in res and isinstance(res["error"], str):
            lines.append(f"| {group} | error | {res['error'].splitlines()[-1]} |")
            continue
        for key, value in flatten(res).items():
            lines.append(f"| {group} | {key} | {value:.4g} |")
    if results.get("regressions"):
        lines += ["", "## Regressions against the baseline", ""] + [f"- {r}" for r in results["regressions"]]
    return "\n".join(lines) + "\n"


def plot(results: dict, out: Path) -> list[Path]:
    """throughput.png, ratios.png, and where their groups ran: poses.png (sim) and regions.png (eval)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {g: r for g, r in results["groups"].items() if not isinstance(r.get("error"), str)}
    flat = {f"{g}.{k}": v for g, r in groups.items() for k, v in flatten(r).items()}
    written = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        written.append(out / name)

    def barh(metrics: dict, title: str, name: str, log: bool) -> None:
        if not metrics:
            return
        fig, ax = plt.subplots(figsize=(9, 0.32 * len(metrics) + 1.4))
        ax.barh(list(metrics), list(metrics.values()), color="#4C72B0")
        if log:
            ax.set_xscale("log")
        ax.set_title(title)
        save(fig, name)

    barh({k: v for k, v in flat.items() if "per_s" in k and "target" not in k and v > 0},
         f"throughput ({results['machine']['cpu']}, {results['machine']['cpu_count']} cores)", "throughput.png", log=True)
    barh({k: v for k, v in flat.items() if ("ratio" in k or "speedup" in k) and "oracle" not in k},
         "speed ratios measured in one process", "ratios.png", log=True)

    rises = groups.get("sim", {}).get("poses", {}).get("pixel_rises")
    if rises:
        names = list(rises)
        fig, ax = plt.subplots(figsize=(9, 0.4 * len(names) + 1.4))
        y = range(len(names))
        scale = [max(1.0, r["least"]) for r in rises.values()]  # head yaw is in degrees: show it /15
        ax.barh([i + 0.2 for i in y], [r["pixel_rise"] / s for r, s in zip(rises.values(), scale)], 0.4, label="pixel path")
        ax.barh([i - 0.2 for i in y], [r["fast_rise"] / s for r, s in zip(rises.values(), scale)], 0.4, label="fast path")
        ax.scatter([r["least"] / s for r, s in zip(rises.values(), scale)], list(y), color="k", marker="|", s=200, label="goal")
        ax.set_yticks(list(y), [n if s == 1 else f"{n} (/{s:g} deg)" for n, s in zip(names, scale)])
        ax.set_title("named poses: rise over the neutral face")
        ax.legend()
        save(fig, "poses.png")

    policies = groups.get("eval", {}).get("policies")
    if policies:
        regions = list(next(iter(policies.values()))["per_region"])
        fig, ax = plt.subplots(figsize=(9, 4))
        width = 0.8 / len(policies)
        for j, (name, res) in enumerate(policies.items()):
            ax.bar([i + j * width for i in range(len(regions))], [res["per_region"][r] for r in regions], width,
                   label=f"{name} (MAE {res['blendshape_mae']:.3f})")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(regions))], regions)
        ax.set_ylabel("closed-loop blendshape MAE")
        ax.set_title("closed-loop error per face region, per policy")
        ax.legend()
        save(fig, "regions.png")
    return written


def run(args: argparse.Namespace) -> int:
    groups = args.groups or list(FACE_GROUPS if args.face is not None else GROUPS)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise CLIError(f"unknown benchmark group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    if args.soak is not None and (args.soak < 1 or "real" not in groups):
        raise CLIError("--soak N runs N ticks in the real group: give N >= 1 and run `facetwin bench real --soak N`")
    spec = None
    if args.face is not None:
        others = [g for g in groups if g not in FACE_GROUPS]
        if others:
            raise CLIError(f"--face picks the face of the groups about one face ({', '.join(FACE_GROUPS)}); "
                           f"{', '.join(others)} time(s) machinery on the default face: drop --face or run them apart")
        spec = face_spec(args)
    baseline = None
    if args.baseline is not None:
        try:
            baseline = json.loads(args.baseline.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CLIError(f"cannot read baseline {args.baseline}: {exc}") from exc
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"machine": machine_info(), "quick": args.quick, "groups": {}, "seconds": {}}
    if spec is not None:
        results["face"] = spec.face
    for group in groups:
        print(f"[bench] {group} ...", flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(GROUPS[group])
            extra = {"policies": args.policies} if group == "eval" and args.policies else {}
            if group == "real" and args.soak:
                extra = {"soak": args.soak}
            if spec is not None:
                extra["spec"] = spec
            results["groups"][group] = module.run(quick=args.quick, **extra)
        except Exception:  # one broken group must not hide the others' figures
            results["groups"][group] = {"error": traceback.format_exc(limit=3)}
        results["seconds"][group] = round(time.perf_counter() - start, 1)
    if baseline is not None:
        results["regressions"] = regressions(results, baseline)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    (args.out / "results.md").write_text(to_markdown(results))
    plot(results, args.out)
    print(to_markdown(results))
    failed = [g for g, r in results["groups"].items() if isinstance(r.get("error"), str)]
    if failed:
        print(f"[bench] groups that failed: {', '.join(failed)}")
        return 1
    if results.get("regressions"):
        print(f"[bench] {len(results['regressions'])} regression(s) against {args.baseline}")
        return 3
    return 0
