"""The oracle: the best expression the twin can physically reach for one target, found by search.

CMA-ES (the ``cma`` package) optimises the servo commands directly on the twin, each candidate settled
and read out, minimising the same error the policy is scored by (blendshape MAE + a small head term).
It needs no model of the face, so its answer bounds what any policy could achieve on that face;
a policy's MAE over the oracle's is how far it is from the face's physical best.
Every candidate goes through the spec's coupling limit first, as any command sent to the face does.

Candidates are settled from wherever the previous one left the face: the settled expression is
path-independent to ~1e-5 MAE (measured), and skipping the reset's read-out makes a candidate ~3x
cheaper. The winner is measured again from the neutral face, as the policy's answer is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from facetwin.agents.expression_error import HEAD_WEIGHT_PER_DEG, ExpressionError, expression_error
from facetwin.expression import Expression
from facetwin.motion.constraints import limit_coupling

if TYPE_CHECKING:  # the CLI reads DEFAULT_BUDGET at start-up; MuJoCo and cma load only when searching
    from facetwin.sim.twin import FaceTwin, TwinState

# Twin evaluations per face (~75 CMA-ES generations of 13 in 25 dimensions, ~3-5 s on a 2-core CPU).
# The search is still improving there (measured: MAE 0.042 -> 0.037 going 1000 -> 3000 on one face), so
# the oracle is an upper bound on the face's best: a ratio to it flatters a policy a little, never harms it.
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


def feasible(command: np.ndarray, twin: FaceTwin) -> np.ndarray:
    """A command the face accepts: clipped to [-1, 1], mouth corners limited by the jaw (the spec's coupling)."""
    return limit_coupling(np.clip(np.asarray(command, np.float64), -1.0, 1.0), twin.spec)


def reach(twin: FaceTwin, command: np.ndarray) -> TwinState:
    """Settle `command` from the neutral face, so the score never depends on the command before."""
    twin.reset()
    return twin.apply(feasible(command, twin))


def optimise(
    twin: FaceTwin,
    target: Expression,
    starts: dict[str, np.ndarray] | None = None,
    config: OracleConfig | None = None,
) -> OracleResult:
    """Search the commands for the twin expression closest to `target`, within `config.budget` evaluations.

    starts: named commands tried first (e.g. the policy's answer and neutral); CMA-ES starts from the best.
    """
    import cma

    cfg = config or OracleConfig()
    n = twin.spec.n
    starts = dict(starts or {})
    starts.setdefault("neutral", np.zeros(n))
    t0 = time.perf_counter()
    best: list = [np.inf, None, None, None]  # objective, command, state, error
    evaluations = 0

    def score(x: np.ndarray, from_neutral: bool = False) -> float:
        nonlocal evaluations
        state = reach(twin, x) if from_neutral else twin.apply(feasible(x, twin))
        err = expression_error(target, state.expression)
        f = err.objective(cfg.head_weight_per_deg)
        evaluations += 1
        if f < best[0]:
            best[:] = [f, state.command.copy(), state, err]
        return f

    start_scores = {}
    for name, x in starts.items():
        if evaluations >= cfg.budget:
            break
        start_scores[name] = score(np.asarray(x, np.float64), from_neutral=True)
    best_start = list(best)
    start = min(start_scores, key=start_scores.get)
    remaining = cfg.budget - evaluations
    if remaining > 0:
        # cma treats seed 0 as "from the clock": shift so every config seed is reproducible.
        es = cma.CMAEvolutionStrategy(
            np.clip(starts[start], -0.99, 0.99), cfg.sigma0, {"bounds": [-1.0, 1.0], "seed": cfg.seed + 1, "verbose": -9}
        )
        while evaluations < cfg.budget and not es.stop():
            xs = es.ask()
            if len(xs) > cfg.budget - evaluations:
                for x in xs[: cfg.budget - evaluations]:
                    score(x)
                break
            es.tell(xs, [score(x) for x in xs])
    if best[1] is not best_start[1]:  # the search won: measure it from neutral, as the starts were
        state = reach(twin, best[1])
        err = expression_error(target, state.expression)
        f = err.objective(cfg.head_weight_per_deg)
        best = [f, state.command.copy(), state, err] if f < best_start[0] else best_start
    f, command, state, err = best
    return OracleResult(command, state.expression, err, float(f), evaluations, time.perf_counter() - t0, start)
