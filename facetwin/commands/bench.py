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

from facetwin.cli import CLIError

# group -> module exposing run(quick: bool) -> dict. The stages own their benchmarks; this composes them.
GROUPS = {
    "sim": "facetwin.sim.bench",
    "collect": "facetwin.sim.bench_collect",
    "policy": "facetwin.agents.bench",
    "eval": "facetwin.agents.bench_eval",
    "env": "facetwin.sim.envs.bench",
    "real": "facetwin.real.bench",
}
HIGHER_IS_BETTER = ("per_s", "fps", "speedup", "throughput")
LOWER_IS_BETTER = ("_ms", "mae", "latency", "seconds", "error", "_s_")
REGRESSION_TOLERANCE = 0.2


def register(sub) -> None:
    p = sub.add_parser("bench", help="run benchmark groups and write results.json, results.md and plots")
    p.add_argument("groups", nargs="*", metavar="GROUP", help=f"groups to run (default: all): {', '.join(GROUPS)}")
    p.add_argument("--quick", action="store_true", help="CI-sized runs")
    p.add_argument("--out", type=Path, default=Path("bench_results"), help="output directory")
    p.add_argument("--baseline", type=Path, help="a previous results.json: flag regressions against it")
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
        f"mujoco {m['mujoco']}, torch {m['torch']}, MUJOCO_GL={m['mujoco_gl']}. Quick: {results['quick']}.",
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for group, res in results["groups"].items():
        metrics = {k: v for k, v in flatten(res).items() if v > 0 and "target" not in k}
        if not metrics:
            continue
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(metrics) + 1.2))
        ax.barh(list(metrics), list(metrics.values()), color="#4C72B0")
        ax.set_xscale("log")
        ax.set_title(f"facetwin bench: {group}")
        fig.tight_layout()
        path = out / f"{group}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def run(args: argparse.Namespace) -> int:
    groups = args.groups or list(GROUPS)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise CLIError(f"unknown benchmark group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    baseline = None
    if args.baseline is not None:
        try:
            baseline = json.loads(args.baseline.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CLIError(f"cannot read baseline {args.baseline}: {exc}") from exc
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"machine": machine_info(), "quick": args.quick, "groups": {}, "seconds": {}}
    for group in groups:
        print(f"[bench] {group} ...", flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(GROUPS[group])
            results["groups"][group] = module.run(quick=args.quick)
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
