"""System identification: fit the twin's mechanics to a robot's recorded (servo positions, expression) rows.

The twin is driven exactly as the real collector drove the face: each episode starts at rest, and
frame k holds the measured servo positions of row k for 1/fps s before the face is read. The fitted
`Perturbation` (skin and cable stiffness scales, per-servo horn offsets, optionally guide offsets
shared per region) minimises `expression_error` between what the twin then shows and what the
camera saw, by CMA-ES (the `cma` package): the error is a simulation, not differentiable, and only a
few dozen parameters are free.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from facetwin.expression import N_BLENDSHAPES
from facetwin.sim.perturb import NOMINAL, Perturbation, apply_perturbation

READOUTS = ("fast", "pixels")
HEAD_WEIGHT = 0.01  # per degree of head angle: 1 deg weighs as much as 0.01 of a blendshape
# One unit of the search vector is this much of each parameter, so one CMA step size fits all.
LOG_STIFFNESS_UNIT = 0.3
SERVO_DEG_UNIT = 3.0
GUIDE_MM_UNIT = 1.0


@dataclass
class SysidPairs:
    """Rows of a recording: what the servos measured (drives the twin) and what the camera read."""

    positions: np.ndarray  # (N, S) measured servo positions, normalised like commands
    expression: np.ndarray  # (N, 55) blendshapes then head yaw/pitch/roll (deg)
    episode_index: np.ndarray  # (N,)
    frame_index: np.ndarray  # (N,) capture frame of each row within its episode (gaps: frames dropped)
    fps: float

    def __post_init__(self):
        n = len(self.positions)
        if not (len(self.expression) == len(self.episode_index) == len(self.frame_index) == n):
            raise ValueError("positions, expression, episode_index and frame_index must have the same rows")

    def episodes(self) -> np.ndarray:
        return np.unique(self.episode_index)

    def subset(self, episodes) -> SysidPairs:
        keep = np.isin(self.episode_index, np.asarray(list(episodes)))
        return SysidPairs(self.positions[keep], self.expression[keep], self.episode_index[keep], self.frame_index[keep], self.fps)


@dataclass
class SysidConfig:
    budget: int = 200  # twin evaluations (each one replays every training row)
    sigma0: float = 0.5  # initial CMA step, in search units
    fit_servos: tuple[str, ...] | None = None  # servos whose horn offsets are fitted (None: all)
    fit_guides: bool = False  # guide offsets, one (x, y, z) per region
    val_fraction: float = 0.25  # episodes held out to report the error on
    seed: int = 0
    head_weight: float = HEAD_WEIGHT
    readout: str = "fast"  # "fast" (landmarks -> blendshape model) or "pixels" (render + full landmarker)
    read_every: int = 1  # read only every k-th frame (all are still driven): pixel reads are slow
    render_size: int = 384  # pixels readout: render size, as the recording's camera
    start: Perturbation | None = None  # search from here (e.g. a fast-readout fit) instead of nominal
    progress: bool = False

    def __post_init__(self):
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {self.readout!r}")
        if self.read_every < 1 or self.budget < 1:
            raise ValueError("read_every and budget must be at least 1")


@dataclass
class SysidResult:
    parameters: Perturbation
    val_before: float  # expression_error on held-out episodes, nominal twin
    val_after: float  # same rows, fitted twin
    train_before: float
    train_after: float
    evaluations: int
    seconds: float
    n_train: int
    n_val: int
    history: list[float] = field(default_factory=list)  # best training error after each CMA generation
    val_start: float | None = None  # held-out error at config.start, when the search started elsewhere
    readout: str = "fast"

    def to_json(self) -> dict:
        return {"parameters": self.parameters.to_json(), "val_before": self.val_before, "val_after": self.val_after,
                "train_before": self.train_before, "train_after": self.train_after, "evaluations": self.evaluations,
                "seconds": round(self.seconds, 2), "n_train": self.n_train, "n_val": self.n_val,
                "val_start": self.val_start, "readout": self.readout}


def expression_error(sim: np.ndarray, real: np.ndarray, head_weight: float = HEAD_WEIGHT) -> float:
    """Mean absolute blendshape error over the 51 non-neutral coefficients + head_weight * head MAE (deg).

    Rows the simulation did not read (NaN) are left out.
    """
    sim, real = np.asarray(sim, np.float64), np.asarray(real, np.float64)
    rows = np.isfinite(sim).all(1)
    if not rows.any():
        return float("inf")
    sim, real = sim[rows], real[rows]
    bs = np.abs(sim[:, 1:N_BLENDSHAPES] - real[:, 1:N_BLENDSHAPES]).mean()
    head = np.abs(sim[:, N_BLENDSHAPES:] - real[:, N_BLENDSHAPES:]).mean()
    return float(bs + head_weight * head)


def replay(twin, pairs: SysidPairs, readout=None, read: np.ndarray | None = None) -> np.ndarray:
    """(N, 55): what `twin` shows at each row when driven by the recorded servo positions.

    readout(twin) -> (55,) reads the face; default the fast path (landmarks -> blendshape model).
    read: (N,) bool, rows to read (the others are driven through but left NaN), for costly readouts.
    """
    from facetwin.sim.collector import frame_steps

    readout = readout or (lambda t: t.expression().vector)
    out = np.full((len(pairs.positions), pairs.expression.shape[1]), np.nan, np.float32)
    for ep in pairs.episodes():
        rows = np.flatnonzero(pairs.episode_index == ep)
        rows = rows[np.argsort(pairs.frame_index[rows], kind="stable")]
        last = int(pairs.frame_index[rows].max())
        steps = frame_steps(last + 1, pairs.fps, twin.timestep)
        twin.reset(readout=False)
        twin.settle()
        frame = 0
        for r in rows:
            target = int(pairs.frame_index[r])
            # a dropped frame's command is unknown: the servos are taken to hold the last one through it
            if frame < target:
                twin.step(int(steps[frame:target].sum()))
                frame = target
            twin.set_command(np.clip(pairs.positions[r], -1.0, 1.0))
            twin.step(int(steps[frame]))
            frame += 1
            if read is None or read[r]:
                out[r] = readout(twin)
    return out


class ParameterVector:
    """Search vector <-> Perturbation: log stiffness scales, selected servo offsets, per-region guide offsets."""

    def __init__(self, twin, config: SysidConfig):
        spec = twin.spec
        names = spec.names if config.fit_servos is None else tuple(config.fit_servos)
        unknown = [n for n in names if n not in spec.names]
        if unknown:
            raise ValueError(f"unknown servo(s) {unknown}; known: {', '.join(spec.names)}")
        self.n_servos = spec.n
        self.servo_idx = np.array([spec.names.index(n) for n in names], dtype=int)
        region_of = {s.name: s.region for s in spec.servos}
        cables = twin.geometry.cables
        self.regions = sorted({region_of[c.servo] for c in cables}) if config.fit_guides else []
        self.cable_region = np.array([self.regions.index(region_of[c.servo]) if self.regions else 0 for c in cables])
        self.n_cables = len(cables)
        self.size = 2 + len(self.servo_idx) + 3 * len(self.regions)

    def from_perturbation(self, p: Perturbation) -> np.ndarray:
        x = np.zeros(self.size)
        x[0] = np.log(p.skin_stiffness_scale) / LOG_STIFFNESS_UNIT
        x[1] = np.log(p.cable_stiffness_scale) / LOG_STIFFNESS_UNIT
        if p.servo_offset_deg:
            x[2 : 2 + len(self.servo_idx)] = np.asarray(p.servo_offset_deg)[self.servo_idx] / SERVO_DEG_UNIT
        if self.regions and p.guide_offset_mm:
            g = np.asarray(p.guide_offset_mm)
            per_region = np.array([g[self.cable_region == r].mean(0) for r in range(len(self.regions))])
            x[2 + len(self.servo_idx) :] = per_region.ravel() / GUIDE_MM_UNIT
        return np.clip(x, -3.0, 3.0)

    def to_perturbation(self, x: np.ndarray) -> Perturbation:
        x = np.asarray(x, np.float64)
        servo = np.zeros(self.n_servos)
        servo[self.servo_idx] = x[2 : 2 + len(self.servo_idx)] * SERVO_DEG_UNIT
        guides = ()
        if self.regions:
            per_region = x[2 + len(self.servo_idx) :].reshape(len(self.regions), 3) * GUIDE_MM_UNIT
            guides = tuple(map(tuple, per_region[self.cable_region]))
        return Perturbation(skin_stiffness_scale=float(np.exp(x[0] * LOG_STIFFNESS_UNIT)),
                            cable_stiffness_scale=float(np.exp(x[1] * LOG_STIFFNESS_UNIT)),
                            guide_offset_mm=guides, servo_offset_deg=tuple(servo))


def split_episodes(pairs: SysidPairs, val_fraction: float, seed: int) -> tuple[SysidPairs, SysidPairs]:
    episodes = pairs.episodes()
    if len(episodes) < 2:
        raise ValueError("system identification holds out whole episodes: record at least 2")
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(episodes)
    n_val = min(len(episodes) - 1, max(1, int(round(val_fraction * len(episodes)))))
    return pairs.subset(shuffled[n_val:]), pairs.subset(shuffled[:n_val])


def _reader(config: SysidConfig, pairs: SysidPairs):
    """(readout callable or None for the fast path, rows to read)."""
    read = None if config.read_every == 1 else (pairs.frame_index % config.read_every) == 0
    return (CameraRead(config.render_size) if config.readout == "pixels" else None), read


def fit_parameters(twin, train: SysidPairs, config: SysidConfig = SysidConfig(),
                   readout=None) -> tuple[Perturbation, int, list[float]]:
    """CMA-ES over ParameterVector, from config.start (or nominal); leaves `twin` nominal afterwards."""
    import cma

    vec = ParameterVector(twin, config)
    own, read = _reader(config, train)
    readout = readout or own

    def loss(x) -> float:
        apply_perturbation(twin, vec.to_perturbation(x))
        return expression_error(replay(twin, train, readout, read), train.expression, config.head_weight)

    x0 = vec.from_perturbation(config.start) if config.start is not None else np.zeros(vec.size)
    options = {"seed": config.seed + 1, "maxfevals": config.budget, "verbose": -9, "bounds": [-3.0, 3.0]}
    es = cma.CMAEvolutionStrategy(x0, config.sigma0, options)
    history: list[float] = []
    evaluations = 0
    try:
        while not es.stop():
            xs = es.ask()
            es.tell(xs, [loss(x) for x in xs])
            evaluations += len(xs)
            history.append(float(es.result.fbest))
            if config.progress:
                print(f"sysid: {evaluations}/{config.budget} evaluations, best error {es.result.fbest:.5f}", flush=True)
    finally:
        if own is not None and readout is own:
            own.close()
    best = vec.to_perturbation(es.result.xbest)
    apply_perturbation(twin, NOMINAL)
    return best, evaluations, history


def identify(twin, pairs: SysidPairs, config: SysidConfig = SysidConfig()) -> SysidResult:
    """Split by episode, fit on one part, report the start's and the fitted twin's error on both parts."""
    start = time.monotonic()
    train, val = split_episodes(pairs, config.val_fraction, config.seed)
    readout, _ = _reader(config, pairs)
    try:
        def error(p: Perturbation, rows: SysidPairs) -> float:
            apply_perturbation(twin, p)
            read = None if config.read_every == 1 else (rows.frame_index % config.read_every) == 0
            return expression_error(replay(twin, rows, readout, read), rows.expression, config.head_weight)

        train_before, val_before = error(NOMINAL, train), error(NOMINAL, val)
        val_start = error(config.start, val) if config.start is not None else None
        fitted, evaluations, history = fit_parameters(twin, train, config, readout)
        result = SysidResult(parameters=fitted, val_before=val_before, val_after=error(fitted, val),
                             train_before=train_before, train_after=error(fitted, train), evaluations=evaluations,
                             seconds=0.0, n_train=len(train.positions), n_val=len(val.positions), history=history,
                             val_start=val_start, readout=config.readout)
    finally:
        if readout is not None:
            readout.close()
    apply_perturbation(twin, NOMINAL)
    result.seconds = time.monotonic() - start
    return result


class CameraRead:
    """Reads the twin as a camera would, through the twin's own `PixelReadout` (render, then the full face
    landmarker, frames independent). Far slower than the fast path: use it on a subset of rows
    (`read_every`), but it compares like with like when the recording was read from pixels."""

    def __init__(self, render_size: int = 384):
        self.size = render_size

    def __call__(self, twin) -> np.ndarray:
        expr = twin.pixel_readout(size=self.size).read(twin.data.qpos[None].copy())[0]
        return expr.vector if expr.face_found else np.full(len(expr.vector), np.nan, np.float32)

    def close(self) -> None:
        """Nothing to release: the twin owns its readout and closes it with itself."""
