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

One face's search is `FaceSearch`, driven by `run_searches`, which hands its commands to whatever settles and
reads them: one FaceTwin here, or a BatchTwin with many faces' searches in lockstep (`oracle_lockstep`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
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


def population(dims: int) -> int:
    """CMA-ES's default number of candidates a generation in `dims` dimensions (the cma package's rule)."""
    return 4 + int(3 * np.log(dims))


class FaceSearch:
    """One face's search, as steps a driver takes: read the starts, then ask and tell generations until the
    budget is spent, then check the winner from the neutral face. The driver settles and reads every
    command it is given (`run_searches`), so one face's search is the same whether it runs alone or in
    lockstep with others; what a step asks for depends only on this face's target, starts, config and readings.
    """

    def __init__(self, target: Expression, starts: dict[str, np.ndarray] | None, config: OracleConfig, n_commands: int):
        self.target, self.config = target, config
        starts = dict(starts or {})
        starts.setdefault("neutral", np.zeros(n_commands))
        self.starts = starts
        self.first = list(starts.items())[: config.budget]
        self.evaluations = 0
        self.es = None
        self.best = self.best_start = None
        self.start, self.cap = "", 0.0
        self.again: _Scored | None = None  # the winner measured again from the neutral face, by the driver
        self._asked: list[np.ndarray] | None = None
        self._last_generation = False
        self._random_state = None

    def score(self, command: np.ndarray, seen: Expression) -> _Scored:
        """A reading scored against the target; a reading without a face scores as the empty expression."""
        err = expression_error(self.target, seen if seen.face_found else Expression.empty())
        return _Scored(err.objective(self.config.head_weight_per_deg), command, seen, err)

    def start_commands(self) -> list[np.ndarray]:
        return [x for _, x in self.first]

    def take_starts(self, scored: list[_Scored]) -> None:
        import cma

        self.evaluations += len(scored)
        named = dict(zip([name for name, _ in self.first], scored))
        self.cap = min(s.error.blendshape_mae for s in named.values())
        within_cap = (s for s in named.values() if s.error.blendshape_mae <= self.cap)
        self.best_start = min(within_cap, key=lambda s: s.objective)
        self.best = self.best_start
        self.start = min(named, key=lambda name: named[name].objective)
        if self.evaluations < self.config.budget:
            with self._own_random_state():
                # cma treats seed 0 as "from the clock": shift so every config seed is reproducible.
                self.es = cma.CMAEvolutionStrategy(np.clip(self.starts[self.start], -0.99, 0.99), self.config.sigma0,
                                                   {"bounds": [-1.0, 1.0], "seed": self.config.seed + 1, "verbose": -9})

    @contextmanager
    def _own_random_state(self):
        # cma seeds and draws from NumPy's global generator: each search keeps its own stream there, so searches
        # that take turns (in lockstep) draw what each would draw alone, and callers' draws are left as they were.
        outer = np.random.get_state()
        if self._random_state is not None:
            np.random.set_state(self._random_state)
        try:
            yield
        finally:
            self._random_state = np.random.get_state()
            np.random.set_state(outer)

    def ask(self) -> list[np.ndarray] | None:
        """The next generation's candidates (the last one cut to the budget left), or None once the search is over."""
        if self.es is None or self._last_generation or self.evaluations >= self.config.budget:
            return None
        with self._own_random_state():
            if self.es.stop():
                return None
            self._asked = self.es.ask()
        left = self.config.budget - self.evaluations
        if len(self._asked) > left:  # the last, partial generation: score it, tell nothing
            self._last_generation = True
            return self._asked[:left]
        return self._asked

    def tell(self, scored: list[_Scored]) -> None:
        self.evaluations += len(scored)
        values = [self._consider(candidate) for candidate in scored]
        if not self._last_generation:
            with self._own_random_state():
                self.es.tell(self._asked, values)

    def _consider(self, candidate: _Scored) -> float:
        if candidate.error.blendshape_mae <= self.cap and candidate.objective < self.best.objective:
            self.best = candidate
        return candidate.objective

    def check(self) -> np.ndarray | None:
        """The command to measure again from the neutral face (None: the best start won, already measured so)."""
        return None if self.best is self.best_start else self.best.command

    def finish(self, seconds: float, readout: str) -> OracleResult:
        best, again = self.best_start, self.again
        if again is not None:  # the search's winner, measured again as the starts were
            ok = again.error.blendshape_mae <= self.cap and again.objective <= self.best_start.objective
            best = again if ok else self.best_start
        return OracleResult(best.command, best.expression, best.error, float(best.objective), self.evaluations, seconds,
                            self.start, readout)


def run_searches(searches: list[FaceSearch], settle_and_read) -> None:
    """Drive every search to its end, all in step: each round asks every search still going for its commands
    and hands them to `settle_and_read` together.

    settle_and_read(groups, from_neutral) -> readings: groups is a list of (search index, commands);
    it settles each command (from the neutral face, or from where the face was) and returns, per group, one
    (command as applied, Expression read) per command. The winners' checks from neutral are the last call.
    """
    def read(groups, from_neutral):
        readings = settle_and_read(groups, from_neutral)
        return [[searches[i].score(c, seen) for c, seen in found] for (i, _), found in zip(groups, readings)]

    groups = [(i, s.start_commands()) for i, s in enumerate(searches)]
    for (i, _), scored in zip(groups, read(groups, True)):
        searches[i].take_starts(scored)
    while True:
        groups = [(i, xs) for i, xs in ((i, s.ask()) for i, s in enumerate(searches)) if xs is not None]
        if not groups:
            break
        for (i, _), scored in zip(groups, read(groups, False)):
            searches[i].tell(scored)
    checks = [(i, [c]) for i, c in ((i, s.check()) for i, s in enumerate(searches)) if c is not None]
    if checks:
        for (i, _), scored in zip(checks, read(checks, True)):
            searches[i].again = scored[0]


def _on_twin(twin: FaceTwin, readout):
    """Settle on one FaceTwin, command after command; read each on the fast path, or all of a call's commands
    as one batch of `readout`."""
    def settle_and_read(groups, from_neutral):
        out = []
        poses = []
        for _, xs in groups:
            found = []
            for x in xs:
                if from_neutral:
                    twin.reset(readout=False)
                state = twin.apply(feasible(x, twin), readout=readout is None)
                found.append((state.command.copy(), state.expression))
                if readout is not None:
                    poses.append(twin.data.qpos.copy())
            out.append(found)
        if readout is not None:
            seen = iter(readout.read(np.array(poses)))
            out = [[(c, next(seen)) for c, _ in found] for found in out]
        return out

    return settle_and_read


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

    batch: a BatchTwin of the same face that settles the search instead of `twin`: each CMA-ES generation at
    once, one world per candidate (a generation larger than the batch goes through in parts), world i
    settling from where generation i-1's candidate i left it, as the serial search settles each candidate
    from the last. This is `oracle_lockstep.optimise_lockstep` with one face.

    readout: a PixelReadout of this twin's model: every candidate is read as a camera sees it instead of on
    the fast path. The starts are one batch, then each CMA-ES generation is settled (candidate after
    candidate, or at once on `batch`) and read as one batch (its population). A render without a face found
    scores as the empty expression, so the search moves away from it.
    """
    cfg = config or OracleConfig()
    if batch is not None:
        from facetwin.agents.evaluation.oracle_lockstep import optimise_lockstep

        return optimise_lockstep(batch, [target], [starts], [cfg], readout=readout)[0]
    t0 = time.perf_counter()
    search = FaceSearch(target, starts, cfg, twin.spec.n)
    run_searches([search], _on_twin(twin, readout))
    return search.finish(time.perf_counter() - t0, "fast" if readout is None else "pixels")


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
