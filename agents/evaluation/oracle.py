"""The oracle: the best expression the twin can physically reach for one target, found by search.

CMA-ES (the ``cma`` package) optimises the servo commands directly on the twin, each candidate settled
and read out, minimising the same error the policy is scored by (blendshape MAE + a small head term).
It needs no model of the face, so its answer bounds what any policy could achieve on that face;
a policy's MAE over the oracle's is how far it is from the face's physical best.
Every candidate goes through the spec's coupling limit first, as any command sent to the face does.

Candidates are settled from wherever the previous one left the face: the settled expression does not
depend on the path to it, and skipping the reset's read-out makes a candidate much cheaper
(docs/experiments.md#oracle). The winner is measured again from the neutral face, as the policy's
answer is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from facetwin.agents.evaluation.metrics import HEAD_WEIGHT_PER_DEG, ExpressionError, expression_error
from facetwin.expression import Expression
from facetwin.motion.constraints import limit_coupling

if TYPE_CHECKING:  # the CLI reads DEFAULT_BUDGET at start-up; MuJoCo and cma load only when searching
    from facetwin.sim.batch import BatchTwin
    from facetwin.sim.twin import FaceTwin, TwinState

# Twin evaluations per face: ~75 CMA-ES generations of 13 in 25 dimensions, which keeps a folder of photos
# to minutes on a CPU. The search is still improving there (docs/experiments.md#oracle), so the oracle's
# MAE is an upper bound on the face's true best and a ratio to it flatters a policy somewhat; raise
# --oracle-budget for a tighter bound.
DEFAULT_BUDGET = 1000


@dataclass
class OracleConfig:
    budget: int = DEFAULT_BUDGET  # twin evaluations per face, the warm starts included
    sigma0: float = 0.2  # initial CMA-ES step, in normalised command units
    seed: int = 0
    head_weight_per_deg: float = HEAD_WEIGHT_PER_DEG

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ValueError(f"the oracle budget is a number of twin evaluations, at least 1; got {self.budget}")
        if not self.sigma0 > 0:
            raise ValueError(f"sigma0 must be positive, got {self.sigma0}")


@dataclass
class OracleResult:
    command: np.ndarray  # (25,) the best command found, coupling-limited
    reached: Expression  # the twin's expression under it
    error: ExpressionError
    objective: float
    evaluations: int
    seconds: float
    start: str  # the warm start CMA-ES began from
    readout: str = "fast"  # what every candidate was read through: fast, or pixels (a PixelReadout)


def feasible(command: np.ndarray, twin: FaceTwin) -> np.ndarray:
    """A command the face accepts: clipped to [-1, 1], mouth corners limited by the jaw (the spec's coupling)."""
    return limit_coupling(np.clip(np.asarray(command, np.float64), -1.0, 1.0), twin.spec)


def reach(twin: FaceTwin, command: np.ndarray) -> TwinState:
    """Settle `command` from the neutral face, so the score never depends on the command before."""
    twin.reset(readout=False)
    return twin.apply(feasible(command, twin))


@dataclass
class _Scored:
    objective: float
    command: np.ndarray
    expression: Expression
    error: ExpressionError


def optimise(
    twin: FaceTwin,
    target: Expression,
    starts: dict[str, np.ndarray] | None = None,
    config: OracleConfig | None = None,
    batch: BatchTwin | None = None,
    readout=None,
) -> OracleResult:
    """Search the commands for the twin expression closest to `target`, within `config.budget` evaluations.

    starts: named commands tried first (e.g. the policy's answer and neutral); CMA-ES starts from the one
    with the lowest objective. The answer minimises the objective among candidates whose blendshape MAE
    is no worse than the best start's: the head term may steer the search, but never buys head pose
    with a worse score on the reported metric, so the oracle never loses to its own starts there.

    batch: a BatchTwin of the same face that settles each CMA-ES generation at once, one world per
    candidate (a generation larger than the batch goes through in parts). World i settles from where
    generation i-1's candidate i left it, as the serial search settles each candidate from the last.

    readout: a PixelReadout of this twin's model: every candidate is read as a camera sees it instead of on
    the fast path. The starts are one batch, then each CMA-ES generation is settled candidate after
    candidate and read as one batch (its population). A render without a face found scores as the empty
    expression, so the search moves away from it.
    """
    import cma

    cfg = config or OracleConfig()
    starts = dict(starts or {})
    starts.setdefault("neutral", np.zeros(twin.spec.n))
    t0 = time.perf_counter()
    evaluations = 0

    def measure(x: np.ndarray, from_neutral: bool = False) -> _Scored:
        nonlocal evaluations
        if readout is not None:
            return through_pixels([x], from_neutral)[0]
        state = reach(twin, x) if from_neutral else twin.apply(feasible(x, twin))
        evaluations += 1
        err = expression_error(target, state.expression)
        return _Scored(err.objective(cfg.head_weight_per_deg), state.command.copy(), state.expression, err)

    def through_pixels(xs, from_neutral: bool) -> list[_Scored]:
        nonlocal evaluations
        commands, poses = [], []
        for x in xs:
            if from_neutral:
                twin.reset(readout=False)
            commands.append(twin.apply(feasible(x, twin), readout=False).command.copy())
            poses.append(twin.data.qpos.copy())
        evaluations += len(poses)
        out = []
        for command, seen in zip(commands, readout.read(np.array(poses))):
            err = expression_error(target, seen if seen.face_found else Expression.empty())
            out.append(_Scored(err.objective(cfg.head_weight_per_deg), command, seen, err))
        return out

    def measure_all(xs) -> list[_Scored]:
        nonlocal evaluations
        if readout is not None:
            return through_pixels(xs, from_neutral=False)
        if batch is None:
            return [measure(x) for x in xs]
        out = []
        for i in range(0, len(xs), batch.n):
            part = np.stack([feasible(x, twin) for x in xs[i:i + batch.n]])
            state = batch.apply(part, np.arange(len(part)))
            evaluations += len(part)
            for command, expr in zip(state.command[: len(part)].cpu().numpy(), state.expressions()):
                err = expression_error(target, expr)
                out.append(_Scored(err.objective(cfg.head_weight_per_deg), command, expr, err))
        return out

    first = list(starts.items())[: cfg.budget]
    if readout is not None:
        scored = dict(zip([name for name, _ in first], through_pixels([x for _, x in first], from_neutral=True)))
    else:
        scored = {name: measure(x, from_neutral=True) for name, x in first}
    cap = min(s.error.blendshape_mae for s in scored.values())
    best_start = min((s for s in scored.values() if s.error.blendshape_mae <= cap), key=lambda s: s.objective)
    best = best_start
    start = min(scored, key=lambda name: scored[name].objective)

    def consider(candidate: _Scored) -> float:
        nonlocal best
        if candidate.error.blendshape_mae <= cap and candidate.objective < best.objective:
            best = candidate
        return candidate.objective

    if evaluations < cfg.budget:
        # cma treats seed 0 as "from the clock": shift so every config seed is reproducible.
        es = cma.CMAEvolutionStrategy(
            np.clip(starts[start], -0.99, 0.99), cfg.sigma0, {"bounds": [-1.0, 1.0], "seed": cfg.seed + 1, "verbose": -9}
        )
        while evaluations < cfg.budget and not es.stop():
            xs = es.ask()
            if len(xs) > cfg.budget - evaluations:  # the last, partial generation: score it, tell nothing
                for candidate in measure_all(xs[: cfg.budget - evaluations]):
                    consider(candidate)
                break
            es.tell(xs, [consider(candidate) for candidate in measure_all(xs)])
    if best is not best_start:  # the search won: measure it from neutral, as the starts were
        again = measure(best.command, from_neutral=True)
        evaluations -= 1  # a check, not a search step
        ok = again.error.blendshape_mae <= cap and again.objective <= best_start.objective
        best = again if ok else best_start
    return OracleResult(
        best.command, best.expression, best.error, float(best.objective), evaluations, time.perf_counter() - t0, start,
        "fast" if readout is None else "pixels",
    )


# Pixel evaluations per face for the oracle through the camera: the figure that reached the camera's limit
# on held-out faces (../shared/notes/camera-readout.md); docs/camera.md has its cost here.
DEFAULT_PIXEL_BUDGET = 600


def optimise_through_pixels(
    twin: FaceTwin,
    target: Expression,
    readout,
    starts: dict[str, np.ndarray] | None = None,
    config: OracleConfig | None = None,
    fast_budget: int = DEFAULT_BUDGET,
) -> tuple[OracleResult, OracleResult]:
    """(fast oracle, pixel oracle) for `target`: the search on the fast path (`fast_budget` evaluations) proposes,
    then `config.budget` pixel evaluations through `readout` search on from its answer and `starts`. The
    pixel search's answer is what the camera sees best; the fast one is returned for its figures."""
    from dataclasses import replace

    cfg = config or OracleConfig(budget=DEFAULT_PIXEL_BUDGET)
    fast = optimise(twin, target, starts, replace(cfg, budget=fast_budget))
    pixel_starts = {"fast_oracle": fast.command, **(starts or {})}
    return fast, optimise(twin, target, pixel_starts, cfg, readout=readout)
