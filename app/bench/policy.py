"""Policy speed: batch-1 inference latency and training-step time, kan-attn against an MLP of equal size.

Two training steps are timed: the supervised one (command MSE, the policy alone) and the
expression-objective one that `facetwin train` spends most of its time on by default (the policy
through the distilled forward model, `expression_objective`), where both kinds also pay for f.

`run()` returns a dict (printed as JSON by `python -m facetwin.app.bench.policy [--quick]`). Times are
medians over interleaved repetitions (the models take turns, so load on a shared machine hits all
alike), on seeded models and data; CUDA is measured too when present. Training steps are timed the
way a training loop runs them, in runs of consecutive steps of one model, the first of each run
untimed: strict alternation evicts each model's data between its steps, which flatters the model that
allocates more per step (docs/experiments.md, "Timing training steps"). Both orders are
reported, and the ratio at that smaller size too (`small_policy`), where fixed per-step costs weigh
most. Training steps are also timed in this thread's CPU time: on a loaded machine the process is
descheduled at random, and CPU time leaves that out.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time

import numpy as np
import torch
from torch import nn

from facetwin.spec import default_spec

from facetwin.agents.forward.expression_objective import Coupling
from facetwin.agents.policies.numpy_inference import FastKanAttn
from facetwin.agents.forward.direct import ForwardModel, expression_loss
from facetwin.agents.policies.kan import KAN
from facetwin.agents.forward.landmark import LandmarkSettings
from facetwin.agents.policies.kinds import DEFAULT_HPARAMS, build_module
from facetwin.agents.policies.networks import MLPPolicy, parameter_count, mlp_hidden_for
from facetwin.agents.policies.kan_attention import servo_regions
from facetwin.agents.forward.synthetic_face import SyntheticFace


def run(quick: bool = False, device: str | None = None, batch_size: int = 256, threads: int | None = 1) -> dict:
    """Benchmark on `device` (default: CPU, and CUDA when present). `threads` pins PyTorch's CPU threads
    for the run (1 by default: a control loop runs the policy on one core; None leaves it alone)."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run(quick, device, batch_size)
    finally:
        torch.set_num_threads(previous)


def _run(quick: bool, device: str | None, batch_size: int) -> dict:
    spec = default_spec()
    devices = [device] if device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    reps = 15 if quick else 60
    report: dict = {
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version()},
        "batch_size": batch_size,
        "repetitions": reps,
    }
    x, y = SyntheticFace().sample(batch_size, seed=1)
    for dev in devices:
        attn, mlp, width = _equal_size_pair(spec, x, DEFAULT_HPARAMS["kan-attn"])
        entry: dict = {
            "params": {"kan-attn": parameter_count(attn), "mlp": parameter_count(mlp), "mlp_hidden": [width, width]},
        }
        if dev.startswith("cuda"):
            entry["device_name"] = torch.cuda.get_device_name(torch.device(dev))
        attn.to(dev).eval()
        mlp.to(dev).eval()
        one = torch.from_numpy(x[:1]).to(dev)
        sync = _sync(dev)
        with torch.inference_mode():
            lat = _interleaved({"kan-attn": lambda: attn(one), "mlp": lambda: mlp(one)}, reps * 5, sync)
        entry["latency_ms_batch1"] = lat
        if dev == "cpu":
            fast = FastKanAttn(attn)
            entry["latency_ms_batch1"]["kan-attn (numpy path, used by policies)"] = _interleaved(
                {"fast": lambda: fast(x[:1])}, reps * 5, sync)["fast"]
        xb, yb = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)
        steps = {"kan-attn": _train_step(attn, xb, yb), "mlp": _train_step(mlp, xb, yb)}
        forward = ForwardModel(spec.n, LandmarkSettings().distil_hidden).to(dev).eval()
        for p in forward.parameters():
            p.requires_grad_(False)
        coupling = Coupling(spec).to(dev)
        steps.update({f"{k} (expression objective)": _expression_step(m, forward, coupling, xb)
                      for k, m in (("kan-attn", attn), ("mlp", mlp))})
        if not quick:
            steps.update(_pykan_steps(xb, yb, dev))
        cpu_ms: dict = {}
        step_ms = _interleaved(steps, reps // 3, sync, cpu_ms, block=3)
        entry["train_step_ms"] = step_ms
        entry["train_step_ratio_kan_attn_over_mlp"] = round(step_ms["kan-attn"] / step_ms["mlp"], 2)
        # the same two steps strictly alternating, as this benchmark timed them before it timed runs
        alternating = _interleaved({k: steps[k] for k in ("kan-attn", "mlp")}, reps, sync)
        entry["train_step_ratio_alternating"] = round(alternating["kan-attn"] / alternating["mlp"], 2)
        entry["expression_step_ratio_kan_attn_over_mlp"] = round(
            step_ms["kan-attn (expression objective)"] / step_ms["mlp (expression objective)"], 2)
        entry["small_policy"] = _small_policy_ratio(spec, x, xb, yb, dev, reps, sync)
        if dev == "cpu":
            entry["train_step_cpu_ms"] = cpu_ms
            entry["train_step_cpu_ratio_kan_attn_over_mlp"] = round(cpu_ms["kan-attn"] / cpu_ms["mlp"], 2)
        report[dev] = entry
    return report


def _small_policy_ratio(spec, x, xb, yb, dev: str, reps: int, sync) -> dict:
    """The same ratio for kan-attn with one hidden KAN layer of 32 (~22k parameters, the default until the
    KAN head was widened): at that size fixed per-step costs (the attention's elementwise passes, kernel
    launches, Adam over 20 tensors) outweigh the matmuls, so the ratio is at its least favourable."""
    hidden = [32]
    small, mlp, _ = _equal_size_pair(spec, x, {**DEFAULT_HPARAMS["kan-attn"], "kan_hidden": hidden})
    small.to(dev)
    mlp.to(dev)
    ms = _interleaved({"kan-attn": _train_step(small, xb, yb), "mlp": _train_step(mlp, xb, yb)}, reps // 3, sync, block=3)
    return {"kan_hidden": hidden, "params": {"kan-attn": parameter_count(small), "mlp": parameter_count(mlp)},
            "train_step_ms": ms, "train_step_ratio_kan_attn_over_mlp": round(ms["kan-attn"] / ms["mlp"], 2)}


def _equal_size_pair(spec, x, hparams: dict) -> tuple[nn.Module, nn.Module, int]:
    """A seeded kan-attn with `hparams` (grids fitted to x), the MLP with two hidden layers closest to its
    size, and that MLP's width."""
    torch.manual_seed(0)
    attn = build_module("kan-attn", spec.n, servo_regions(spec), hparams)
    attn.update_grids(torch.from_numpy(x))
    width = mlp_hidden_for(parameter_count(attn), spec.n)
    return attn, MLPPolicy(spec.n, hidden=(width, width)), width


def _train_step(module: nn.Module, x: torch.Tensor, y: torch.Tensor):
    module.train()
    opt = torch.optim.Adam(module.parameters(), lr=1e-3, foreach=True)

    def step():
        opt.zero_grad(set_to_none=True)
        nn.functional.mse_loss(module(x), y).backward()
        opt.step()

    return step


def _expression_step(module: nn.Module, forward: nn.Module, coupling: nn.Module, targets: torch.Tensor):
    module.train()
    opt = torch.optim.Adam(module.parameters(), lr=1e-3, foreach=True)

    def step():
        opt.zero_grad(set_to_none=True)
        expression_loss(forward(coupling(module(targets))), targets).backward()
        opt.step()

    return step


def _pykan_steps(x: torch.Tensor, y: torch.Tensor, dev: str) -> dict:
    """The plain-KAN baseline's shape in pykan's MultKAN and in facetwin's KAN, for reference."""
    try:
        from kan.MultKAN import MultKAN
    except ImportError:  # pykan is optional for benchmarking
        return {}
    width = [x.shape[1], *DEFAULT_HPARAMS["kan"]["hidden"], y.shape[1]]
    torch.manual_seed(0)
    ours = KAN(width).to(dev)
    theirs = MultKAN(width=list(width), grid=5, k=3, auto_save=False, save_act=False, symbolic_enabled=False,
                     device=dev, seed=0).to(dev)
    return {f"facetwin KAN {width}": _train_step(ours, x, y), f"pykan MultKAN {width}": _train_step(theirs, x, y)}


def _interleaved(fns: dict, reps: int, sync, cpu_ms: dict | None = None, block: int = 1) -> dict:
    """Median wall-clock ms of each function; their median thread CPU ms go into `cpu_ms` if given.

    With block > 1 each repetition calls a function block + 1 times in a row and times the last `block`:
    a training loop runs one step after another, so the first call after another model's step, which
    refills the caches that step evicted, is run but not timed."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm-up: allocator, kernels, caches
        for _ in range(3):
            fn()
    sync()
    for _ in range(reps):
        for name, fn in fns.items():
            if block > 1:
                fn()
                sync()
            for _ in range(block):
                start, start_cpu = time.perf_counter(), time.thread_time()
                fn()
                sync()
                cpu[name].append(time.thread_time() - start_cpu)
                times[name].append(time.perf_counter() - start)
    if cpu_ms is not None:
        cpu_ms.update({k: round(statistics.median(v) * 1e3, 4) for k, v in cpu.items()})
    return {k: round(statistics.median(v) * 1e3, 4) for k, v in times.items()}


def _sync(dev: str):
    if dev.startswith("cuda"):
        return lambda: torch.cuda.synchronize(torch.device(dev))
    return lambda: None


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default=None)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads (0: leave as is)")
    a = p.parse_args(argv)
    np.random.seed(0)
    print(json.dumps(run(a.quick, a.device, a.batch_size, a.threads or None), indent=2))


if __name__ == "__main__":
    main()
