"""Closed-loop evaluation on human faces: perceive -> policy -> twin -> re-perceive -> compare.

For every face in a folder of images or a video: MediaPipe reads the person's expression, the policy
turns it into 25 servo commands, the twin settles under them and is read back, either on the fast path
(the twin's own landmarks through the blendshape network) or, with ``pixels``, by rendering it and
running the full Face Landmarker on the render. The reached expression is scored against the person's
(`expression_error`), and the oracle (`oracle.optimise`) shows what the face could have reached.

The oracle searches on the fast path. On the pixel path (the headline: only the camera agrees with a
camera, ../shared/notes/camera-readout.md) its answer then warm-starts a second search through pixels,
`oracle_pixel_budget` evaluations, one PixelReadout batch per CMA-ES generation; with that budget at 0
the fast winner is only re-read through pixels, and the ratio can fall below 1 when the readouts disagree.
On the pixel path the searches of all faces run in lockstep once every face has been seen
(`oracle_lockstep`): each round settles every face's candidates at once on a BatchTwin and reads them as one
PixelReadout batch; each face's answer is the one its own search finds alone on that BatchTwin.
On the pixel path every face is also read on the fast path (policy, oracle, neutral: a second column),
and every report carries the neutral face, the do-nothing baseline, in each readout it shows.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facetwin.agents.policies.loader import FacePolicy
from facetwin.agents.evaluation.metrics import REGIONS, ExpressionError, expression_error
from facetwin.agents.evaluation.oracle import (
    DEFAULT_BUDGET,
    DEFAULT_PIXEL_BUDGET,
    OracleConfig,
    OracleResult,
    feasible,
    optimise,
    reach,
)
from facetwin.agents.evaluation.oracle_lockstep import LOCKSTEP_FACES, lockstep_batch, optimise_lockstep
from facetwin.agents.evaluation.sheet import SheetTile, crop_face
from facetwin.expression import EXPRESSION_DIM, Expression
from facetwin.perception.sources import IMAGE_SUFFIXES
from facetwin.sim.landmark_engines import DEFAULT_ENGINE, ENGINES
from facetwin.sim.twin import FaceTwin

RENDER_SIZE = 512  # the pixel path's render; the twin's fast-path camera has the same size
# Latency stages, in loop order; the pixel path replaces twin_readout with render + perceive.
FAST_STAGES = ("perceive_human", "policy", "twin_settle", "twin_readout")
PIXEL_STAGES = ("perceive_human", "policy", "twin_settle", "twin_render", "twin_perceive")


class EvalError(ValueError):
    """Nothing to evaluate (no faces found, bad settings); the message says what to change."""


@dataclass
class EvalConfig:
    pixels: bool = False  # re-perceive the twin from a render with the full landmarker
    oracle_budget: int = DEFAULT_BUDGET  # twin evaluations per face; 0 skips the oracle
    # pixel evaluations per face on the pixel path, warm-started from the fast oracle; 0 re-reads its winner only
    oracle_pixel_budget: int = DEFAULT_PIXEL_BUDGET
    readout_workers: int = 0  # processes the pixel oracle's batches are read by (0: this one)
    readout_engine: str = DEFAULT_ENGINE  # the landmark engine the pixel oracle's batches are read by
    # Where the oracle settles candidates. 0: one FaceTwin, candidate after candidate, face after face. N: a
    # BatchTwin of N worlds, as many faces' searches in lockstep as hold a generation each (at least one).
    # None: 0 on the fast path; on the pixel path a BatchTwin of LOCKSTEP_FACES faces' generations, in lockstep.
    oracle_worlds: int | None = None
    max_faces: int | None = None  # stop after this many faces found
    stride: int = 1  # use every stride-th frame (videos)
    seed: int = 0
    keep_tiles: bool = False  # keep images for a contact sheet
    # Oracle commands from an earlier report, by face key: extra warm starts, so one oracle can be
    # carried across policies (see `oracle_starts_from`) instead of each policy's warm start shaping it.
    oracle_starts: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.oracle_budget < 0:
            raise EvalError(f"the oracle budget must be >= 0 (0 skips the oracle), got {self.oracle_budget}")
        if self.oracle_worlds is not None and self.oracle_worlds < 0:
            raise ValueError(f"oracle_worlds must be 0 (one FaceTwin) or a number of batched worlds, got {self.oracle_worlds}")
        if self.readout_engine not in ENGINES:
            raise EvalError(f"unknown readout engine {self.readout_engine!r}; choose one of {', '.join(ENGINES)}")
        if self.oracle_pixel_budget < 0 or self.readout_workers < 0:
            raise EvalError("the oracle's pixel budget and the readout workers must be >= 0, got "
                            f"{self.oracle_pixel_budget} and {self.readout_workers}")
        if self.max_faces is not None and self.max_faces < 1:
            raise EvalError(f"max_faces must be at least 1, got {self.max_faces}")
        if self.stride < 1:
            raise EvalError(f"stride must be at least 1, got {self.stride}")

    @property
    def lockstep(self) -> bool:
        """Whether the oracle's searches run in lockstep on a BatchTwin (see oracle_worlds)."""
        return self.oracle_budget > 0 and (self.pixels if self.oracle_worlds is None else self.oracle_worlds > 0)


@dataclass
class OracleScore:
    command: np.ndarray
    error: ExpressionError
    evaluations: int
    seconds: float
    start: str
    fast_error: ExpressionError | None = None  # pixel path: the same command read on the fast path
    pixel_evaluations: int = 0  # pixel path: the search through pixels after the fast one


@dataclass
class FaceResult:
    """One face: the policy's command and score, the oracle's, and how long each stage took."""

    path: str
    index: int  # frame index in the source
    timestamp: float
    target: Expression
    command: np.ndarray  # the policy's command as sent (clipped, coupling-limited)
    error: ExpressionError
    twin_face_found: bool  # pixel path: the landmarker found the twin's face in the render
    oracle: OracleScore | None
    latency_ms: dict[str, float]
    tiles: list[SheetTile] = field(default_factory=list)
    neutral_error: ExpressionError | None = None  # the neutral face, in the headline readout
    fast_error: ExpressionError | None = None  # pixel path: the policy's command read on the fast path
    neutral_fast_error: ExpressionError | None = None  # pixel path: the neutral face on the fast path

    def to_dict(self) -> dict:
        out = {
            "path": self.path,
            "index": self.index,
            "timestamp": self.timestamp,
            "blendshape_mae": self.error.blendshape_mae,
            "head_error_deg": self.error.head_error_deg,
            "per_region": self.error.per_region,
            "oracle_blendshape_mae": None,
            "oracle_head_error_deg": None,
            "oracle_per_region": None,
            "ratio_to_oracle": None,
            "twin_face_found": self.twin_face_found,
            "target_head_deg": [float(v) for v in self.target.head],
            "policy_command": [round(float(v), 4) for v in self.command],
            "latency_ms": self.latency_ms,
            "neutral_blendshape_mae": None if self.neutral_error is None else self.neutral_error.blendshape_mae,
        }
        if self.fast_error is not None:
            out["fast_blendshape_mae"] = self.fast_error.blendshape_mae
            out["neutral_fast_blendshape_mae"] = self.neutral_fast_error.blendshape_mae
        if self.oracle is not None:
            o = self.oracle
            out.update(
                oracle_blendshape_mae=o.error.blendshape_mae,
                oracle_head_error_deg=o.error.head_error_deg,
                oracle_per_region=o.error.per_region,
                ratio_to_oracle=_ratio(self.error.blendshape_mae, o.error.blendshape_mae),
                oracle_command=[float(v) for v in o.command],  # exact: a later eval starts from it
                oracle_evaluations=o.evaluations,
                oracle_start=o.start,
            )
            if o.fast_error is not None:
                out.update(oracle_fast_blendshape_mae=o.fast_error.blendshape_mae,
                           oracle_pixel_evaluations=o.pixel_evaluations)
        return out


@dataclass
class EvalReport:
    policy: str
    policy_kind: str
    faces: str
    pixels: bool
    oracle_budget: int
    results: list[FaceResult]
    skipped: list[dict]  # frames without a usable face: path, index, reason
    seconds: float
    machine: dict
    oracle_pixel_budget: int = 0  # pixel path: evaluations through pixels per face, after the fast search

    @property
    def blendshape_mae(self) -> float:
        return float(np.mean([r.error.blendshape_mae for r in self.results]))

    @property
    def oracle_blendshape_mae(self) -> float | None:
        if any(r.oracle is None for r in self.results):
            return None
        return float(np.mean([r.oracle.error.blendshape_mae for r in self.results]))

    @property
    def ratio_to_oracle(self) -> float | None:
        oracle = self.oracle_blendshape_mae
        return None if oracle is None else _ratio(self.blendshape_mae, oracle)

    def table(self) -> list[dict]:
        """The headline rows, policy / oracle / neutral face, with blendshape MAE per readout: the pixel path's
        reports have a pixels column (the headline) and a fast one, the fast path's only a fast one."""
        def mean(errors):
            return None if any(e is None for e in errors) else float(np.mean([e.blendshape_mae for e in errors]))

        rs, headline = self.results, "pixels" if self.pixels else "fast"
        oracle = [r.oracle for r in rs]
        rows = [("policy", [r.error for r in rs], [r.fast_error for r in rs]),
                ("oracle", [o and o.error for o in oracle], [o and o.fast_error for o in oracle]),
                ("neutral", [r.neutral_error for r in rs], [r.neutral_fast_error for r in rs])]
        table = []
        for name, main, fast in rows:
            row = {"row": name, headline: mean(main)}
            if self.pixels:
                row["fast"] = mean(fast)
            table.append(row)
        return table

    def latency_ms(self, q: float | None = None) -> dict[str, float]:
        """Per stage: the mean over faces (or the q-th percentile)."""
        stages = self.results[0].latency_ms.keys()
        agg = np.mean if q is None else (lambda v: np.percentile(v, q))
        return {s: float(agg([r.latency_ms[s] for r in self.results])) for s in stages}

    def to_dict(self) -> dict:
        rs = self.results
        oracle = self.oracle_blendshape_mae
        return {
            "policy": self.policy,
            "policy_kind": self.policy_kind,
            "faces": self.faces,
            "readout": "pixels" if self.pixels else "fast",
            "n_faces": len(rs),
            "n_skipped": len(self.skipped),
            "blendshape_mae": self.blendshape_mae,
            "oracle_blendshape_mae": oracle,
            "ratio_to_oracle": self.ratio_to_oracle,
            "head_error_deg": float(np.mean([r.error.head_error_deg for r in rs])),
            "oracle_head_error_deg": None if oracle is None else float(np.mean([r.oracle.error.head_error_deg for r in rs])),
            "per_region": {g: float(np.mean([r.error.per_region[g] for r in rs])) for g in REGIONS},
            "oracle_per_region": None
            if oracle is None
            else {g: float(np.mean([r.oracle.error.per_region[g] for r in rs])) for g in REGIONS},
            "oracle_budget": self.oracle_budget,
            "oracle_pixel_budget": self.oracle_pixel_budget if self.pixels and self.oracle_budget else 0,
            "neutral_blendshape_mae": self.table()[2]["pixels" if self.pixels else "fast"],
            "table": self.table(),
            "latency_ms": self.latency_ms(),
            "latency_ms_p95": self.latency_ms(95),
            "seconds": self.seconds,
            "machine": self.machine,
            "per_face": [r.to_dict() for r in rs],
            "skipped": self.skipped,
        }


def face_key(path: str, index: int) -> str:
    """How a face is matched across reports: file name and frame index (folders may move)."""
    return f"{Path(path).name}#{index}"


def oracle_starts_from(report_path: str | Path) -> dict[str, np.ndarray]:
    """The oracle commands of an earlier `facetwin eval` report, by `face_key`."""
    import json

    try:
        data = json.loads(Path(report_path).read_text())
        faces = data["per_face"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EvalError(
            f"cannot read oracle commands from {report_path}: {exc}; give a report.json from `facetwin eval`"
        ) from exc
    starts = {
        face_key(f["path"], f["index"]): np.asarray(f["oracle_command"], np.float64)
        for f in faces
        if f.get("oracle_command")
    }
    if not starts:
        raise EvalError(f"{report_path} holds no oracle commands (was it run with --oracle-budget 0?)")
    return starts


def _ratio(policy: float, oracle: float) -> float:
    return float(policy / oracle) if oracle > 0 else (1.0 if policy == 0 else float("inf"))


def machine_info() -> dict:
    import mujoco
    import torch

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": __import__("os").cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mujoco": mujoco.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        info["cpu_model"] = next(
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return info


def oracle_readout(twin: FaceTwin, engine: str, workers: int):
    """The pixel oracle's readout of `twin`: engines that can track read the face from the tracking crop around the
    twin's own projected landmarks (no detector); MediaPipe finds it with its detector, as on a photo."""
    from facetwin.sim.landmark_engines import TRACKING_ENGINES
    from facetwin.sim.pixel_readout import PixelReadout
    from facetwin.sim.render import CAMERA

    return PixelReadout(twin.model, engine=engine, size=RENDER_SIZE, camera=CAMERA, bundle=twin.bundle, workers=workers,
                        crop="twin" if engine in TRACKING_ENGINES else "detector")


class _Clock:
    """Milliseconds per named stage of one face."""

    def __init__(self):
        self.ms: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + 1e3 * (now - self._t)
        self._t = now

    def skip(self) -> None:
        """Leave the time since the last lap out of every stage."""
        self._t = time.perf_counter()


class ClosedLoop:
    """The twin and perceivers of one evaluation, reused across faces."""

    def __init__(self, policy: FacePolicy, twin: FaceTwin | None = None, config: EvalConfig | None = None, bundle=None,
                 oracles=None):
        from facetwin.perception import FacePerceiver

        self.policy, self.config = policy, config or EvalConfig()
        # Oracle searches run here, or elsewhere (oracles.submit(target, starts, config) -> a future with
        # .result(), e.g. Ray tasks), or here in lockstep; the last two are scored by finish_oracles once every
        # face has been seen.
        self.oracles, self._pending, self._waiting = oracles, [], []
        self._lockstep = oracles is None and self.config.lockstep
        self._bundle = bundle
        self._own_twin = twin is None
        self.twin = twin or FaceTwin(bundle=bundle)
        if policy.n_commands != self.twin.spec.n:
            raise EvalError(f"policy {policy.name} gives {policy.n_commands} commands, the twin's face has {self.twin.spec.n}")
        # The twin's renders are unrelated stills, never a video track of the person.
        self._twin_perceiver = FacePerceiver(bundle, mode="image", max_faces=1) if self.config.pixels else None
        # One-time costs (the renderer's GL context, importing cma, the policy's first call: its NumPy copy,
        # torch's autograd engine for a refining policy) stay out of the first face's latency.
        policy(np.zeros(EXPRESSION_DIM, np.float32))
        if self.config.pixels or self.config.keep_tiles:
            self.twin.render(RENDER_SIZE)
        self._oracle_batch = None
        if self.config.oracle_budget > 0:
            import cma  # noqa: F401

            if self._lockstep and self.config.oracle_worlds:
                from facetwin.sim.batch import BatchTwin

                self._oracle_batch = BatchTwin(self.config.oracle_worlds, "cpu", spec=self.twin.spec, bundle=bundle,
                                               network="litert")
        # The neutral face, the do-nothing baseline of every report, read once as the policy's answers are.
        self._neutral_fast = reach(self.twin, np.zeros(self.twin.spec.n)).expression
        self._neutral_pixels = self._readout = None
        if self._twin_perceiver is not None:
            self._neutral_pixels = self._twin_perceiver.perceive(self.twin.render(RENDER_SIZE))
            if self.config.oracle_budget > 0 and self.config.oracle_pixel_budget > 0:
                self._readout = oracle_readout(self.twin, self.config.readout_engine, self.config.readout_workers)

    def close(self) -> None:
        if self._readout is not None:
            self._readout.close()
        if self._twin_perceiver is not None:
            self._twin_perceiver.close()
        if self._oracle_batch is not None:
            self._oracle_batch.close()
        if self._own_twin:
            self.twin.close()

    def read_twin(self, clock: _Clock) -> tuple[Expression, np.ndarray | None]:
        """The settled twin's expression (and its render on the pixel path)."""
        if self._twin_perceiver is None:
            expr = self.twin.expression()
            clock.lap("twin_readout")
            return expr, None
        img = self.twin.render(RENDER_SIZE)
        clock.lap("twin_render")
        expr = self._twin_perceiver.perceive(img)
        clock.lap("twin_perceive")
        return expr, img

    def twin_tile(self, command: np.ndarray, caption: str, image: np.ndarray | None = None) -> SheetTile:
        if image is None:
            reach(self.twin, command)
            image = self.twin.render(RENDER_SIZE)
        return SheetTile(crop_face(image, self.twin.landmarks_px((RENDER_SIZE, RENDER_SIZE))), caption)

    def face(self, rgb: np.ndarray, target: Expression, path: str, index: int, timestamp: float, clock: _Clock) -> FaceResult:
        cfg = self.config
        command = feasible(self.policy(target.vector), self.twin)
        clock.lap("policy")
        self.twin.reset()
        clock.skip()  # every face starts from neutral: evaluation bookkeeping, not part of the loop
        self.twin.apply(command, readout=False)
        clock.lap("twin_settle")
        reached, img = self.read_twin(clock)
        error = expression_error(target, reached if reached.face_found else Expression.empty())
        neutral = self._neutral_fast if self._neutral_pixels is None else self._neutral_pixels
        scores = dict(neutral_error=expression_error(target, neutral if neutral.face_found else Expression.empty()))
        if self._twin_perceiver is not None:  # the fast path's figures, the report's second column
            scores.update(fast_error=expression_error(target, self.twin.expression()),
                          neutral_fast_error=expression_error(target, self._neutral_fast))
            clock.skip()
        oracle = None
        tiles: list[SheetTile] = []
        if cfg.keep_tiles:
            name = Path(path).name if Path(path).suffix.lower() in IMAGE_SUFFIXES else f"{Path(path).name}#{index}"
            tiles = [
                SheetTile(crop_face(rgb, target.landmarks), f"human {name}"),
                self.twin_tile(command, f"policy MAE {error.blendshape_mae:.3f}", img),
            ]
        result = FaceResult(path, index, timestamp, target, command, error, reached.face_found, oracle, clock.ms, tiles,
                            **scores)
        if cfg.oracle_budget > 0:
            starts = {"policy": command}
            if cfg.oracle_starts and face_key(path, index) in cfg.oracle_starts:
                starts["reference"] = cfg.oracle_starts[face_key(path, index)]
            search = OracleConfig(budget=cfg.oracle_budget, seed=cfg.seed + index)
            if self.oracles is not None:
                self._pending.append((result, self.oracles.submit(target, starts, search)))
            elif self._lockstep:
                self._waiting.append((result, starts, search))
            else:
                self._score_oracle(result, optimise(self.twin, target, starts, search))
        return result

    def finish_oracles(self) -> None:
        """Run the searches left for lockstep and score the ones that ran elsewhere, in the order the faces came."""
        for result, future in self._pending:
            self._score_oracle(result, future.result())
        self._pending = []
        if self._waiting:
            self._run_lockstep(self._waiting)
        self._waiting = []

    def _pixel_search(self, result: FaceResult, fast: OracleResult) -> tuple[dict, OracleConfig]:
        """The pixel search's warm starts (the fast answer and the policy's) and budget for one face."""
        starts = {"fast_oracle": fast.command, "policy": result.command}
        return starts, OracleConfig(budget=self.config.oracle_pixel_budget, seed=self.config.seed + result.index)

    def _run_lockstep(self, waiting: list) -> None:
        results = [result for result, _, _ in waiting]
        targets = [result.target for result in results]
        batch = self._oracle_batch or lockstep_batch(min(len(waiting), LOCKSTEP_FACES), self.twin.spec, self._bundle)
        try:
            fast = optimise_lockstep(batch, targets, [s for _, s, _ in waiting], [c for _, _, c in waiting])
            through = [None] * len(results)
            if self._readout is not None:
                starts, configs = zip(*(self._pixel_search(r, f) for r, f in zip(results, fast)))
                through = optimise_lockstep(batch, targets, list(starts), list(configs), readout=self._readout)
        finally:
            if batch is not self._oracle_batch:
                batch.close()
        for result, found, searched in zip(results, fast, through):
            self._score_oracle(result, found, searched)

    def _score_oracle(self, result: FaceResult, found: OracleResult, through: OracleResult | None = None) -> None:
        """Score a face's oracle: `found` on the fast path; on the pixel path the search through pixels from it
        (`through`, or run here when not given), read again as the policy's answer was."""
        t0 = time.perf_counter()
        oracle_error, command, start, fast_error, pixel_evaluations = found.error, found.command, found.start, None, 0
        searched_s = 0.0
        if self._twin_perceiver is not None:
            fast_error = found.error  # the fast path's oracle, as `facetwin eval` without --pixels reports it
            if self._readout is not None:  # search on through pixels from the fast answer (and the policy's)
                if through is None:
                    starts, search = self._pixel_search(result, found)
                    through = optimise(self.twin, result.target, starts, search, readout=self._readout)
                else:
                    searched_s = through.seconds  # its share of the lockstep's wall time
                command, start, pixel_evaluations = through.command, through.start, through.evaluations
            # score the oracle's command as the policy's was scored
            reach(self.twin, command)
            seen = self._twin_perceiver.perceive(self.twin.render(RENDER_SIZE))
            oracle_error = expression_error(result.target, seen if seen.face_found else Expression.empty())
        result.oracle = OracleScore(command, oracle_error, found.evaluations, found.seconds, start, fast_error,
                                    pixel_evaluations)
        result.latency_ms["oracle"] = (found.seconds + searched_s) * 1e3 + 1e3 * (time.perf_counter() - t0)
        if self.config.keep_tiles:
            result.tiles.append(self.twin_tile(command, f"oracle MAE {oracle_error.blendshape_mae:.3f}"))


def evaluate(
    policy: FacePolicy,
    faces: str | Path,
    *,
    config: EvalConfig | None = None,
    twin: FaceTwin | None = None,
    bundle=None,
    progress: bool = False,
    oracles=None,
) -> EvalReport:
    """Run the closed loop over every face in `faces` (a folder of images, an image or a video).

    oracles: where the per-face oracle searches run (see ClosedLoop); None: here, one after another.
    """
    from tqdm import tqdm

    from facetwin.perception import FacePerceiver, open_source

    cfg = config or EvalConfig()
    t0 = time.perf_counter()
    results: list[FaceResult] = []
    skipped: list[dict] = []
    loop = ClosedLoop(policy, twin, cfg, bundle, oracles)
    try:
        with open_source(faces) as source:
            if source.kind == "webcam" and cfg.max_faces is None:
                raise EvalError("a webcam never ends: give max_faces (--max-faces N)")
            mode = "image" if source.kind == "image" else "video"
            total = len(source) if hasattr(source, "__len__") else getattr(source, "frame_count", None)
            with FacePerceiver(bundle, mode=mode) as perceiver:
                bar = tqdm(total=cfg.max_faces or total, disable=not progress, unit="face", desc="eval")
                for frame in source:
                    if frame.index % cfg.stride:
                        continue
                    if mode == "image" and not results and not skipped:
                        perceiver.perceive(frame.rgb)  # the landmarker's first call pays its warm-up; keep it out
                    clock = _Clock()
                    target = perceiver.perceive(frame.rgb, frame.timestamp)
                    clock.lap("perceive_human")
                    if not target.face_found:
                        skipped.append({"path": frame.path, "index": frame.index, "reason": "no face found"})
                        continue
                    results.append(loop.face(frame.rgb, target, frame.path, frame.index, frame.timestamp, clock))
                    bar.update(1)
                    if cfg.max_faces is not None and len(results) >= cfg.max_faces:
                        break
                bar.close()
        loop.finish_oracles()
    finally:
        loop.close()
    if not results:
        raise EvalError(f"no face was found in any frame of {faces}; check the images show a frontal face")
    seconds = time.perf_counter() - t0
    return EvalReport(
        policy.name, policy.kind, str(faces), cfg.pixels, cfg.oracle_budget, results, skipped, seconds, machine_info(),
        cfg.oracle_pixel_budget,
    )
