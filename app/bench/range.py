"""`facetwin bench range`: how far the twin's expressions reach, as a camera reads them.

Three figures, all through the pixel path (a 512 px render read by MediaPipe's full Face Landmarker):

* per coefficient the face has a mechanism for (a servo whose `positive`/`negative` in the face spec
  names it), the highest value the landmarker reads: CMA-ES over the face's servos (the neck held still,
  so no head turn can buy a reading), maximising that one coefficient from the best of that mechanism
  at full travel and the named poses (those without head motion);
* beside it, people's 95th percentile on the shared photos and videos;
* the camera limit on the shared photos: per face, CMA-ES over all 25 commands minimising the blendshape
  MAE to the person's reading, beside the neutral face's MAE.

Every budget is in results (`*_budget`), and so is the group's wall time.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.human_faces import shared_faces
from facetwin.expression import BLENDSHAPE_NAMES, Expression
from facetwin.motion.constraints import limit_coupling
from facetwin.spec import FaceSpec

FACES = shared_faces()
RENDER_SIZE = 512
# Twin evaluations (render + landmarker) per search; quick runs keep CI's bench test short.
MAX_BUDGET, MAX_BUDGET_QUICK = 80, 6
LIMIT_BUDGET, LIMIT_BUDGET_QUICK = 600, 8
LIMIT_FACES_QUICK = 1
SIGMA0 = 0.3
_NAME = re.compile(r"\(([^)]*)\)")
# What each named pose is for, read once through pixels beside the searched maxima (docs/face.md).
POSE_READINGS = (
    ("neutral", "browInnerUp"), ("neutral", "mouthPucker"),
    ("smile", "mouthSmileLeft"), ("smile", "mouthSmileRight"),
    ("brow_furrow", "browDownLeft"), ("brow_furrow", "browDownRight"),
    ("anger", "browDownLeft"), ("anger", "browDownRight"), ("brow_raise", "browInnerUp"),
    ("blink", "eyeBlinkLeft"), ("blink", "eyeBlinkRight"), ("jaw_open", "jawOpen"), ("surprise", "jawOpen"),
    ("pucker", "mouthPucker"), ("look_left", "eyeLookOutLeft"), ("look_right", "eyeLookOutRight"),
)


@dataclass(frozen=True)
class Mechanism:
    """The servos that drive one blendshape coefficient, and the sign of command that does."""

    coefficient: str
    servos: tuple[int, ...]
    signs: tuple[int, ...]

    def start(self, n: int) -> np.ndarray:
        c = np.zeros(n)
        c[list(self.servos)] = self.signs
        return c


def mechanisms(spec: FaceSpec) -> dict[str, Mechanism]:
    """The coefficients the spec says a servo drives: blendshape names in its `positive`/`negative` text."""
    found: dict[str, list[tuple[int, int]]] = {}
    for i, s in enumerate(spec.servos):
        for sign, text in ((1, s.positive), (-1, s.negative)):
            for group in _NAME.findall(text or ""):
                for word in re.split(r"[^A-Za-z]+", group):
                    if word in BLENDSHAPE_NAMES:
                        found.setdefault(word, []).append((i, sign))
    return {
        name: Mechanism(name, tuple(i for i, _ in pairs), tuple(s for _, s in pairs))
        for name, pairs in sorted(found.items(), key=lambda kv: BLENDSHAPE_NAMES.index(kv[0]))
    }


class PixelReader:
    """Commands in, the landmarker's reading of the rendered twin out (None where it finds no face)."""

    def __init__(self, twin, perceiver, size: int = RENDER_SIZE):
        self.twin, self.perceiver, self.size = twin, perceiver, size
        self.evaluations = 0

    def command(self, x: np.ndarray) -> np.ndarray:
        return limit_coupling(np.clip(np.asarray(x, np.float64), -1.0, 1.0), self.twin.spec)

    def read(self, x: np.ndarray, from_neutral: bool = False) -> Expression | None:
        # A settled face does not depend on the path to it, so a search settles from the last candidate.
        if from_neutral:
            self.twin.reset(readout=False)
        self.twin.apply(self.command(x), readout=False)
        self.evaluations += 1
        seen = self.perceiver.perceive(self.twin.render(self.size))
        return seen if seen.face_found else None


def _cma(objective, x0: np.ndarray, budget: int, seed: int) -> None:
    import cma

    es = cma.CMAEvolutionStrategy(np.clip(x0, -0.99, 0.99), SIGMA0, {"bounds": [-1.0, 1.0], "seed": seed + 1, "verbose": -9})
    used = 0
    while used < budget and not es.stop():
        xs = es.ask()[: budget - used]
        values = [objective(x) for x in xs]
        used += len(xs)
        if len(xs) == es.popsize:
            es.tell(xs, values)


def maximise(
    reader: PixelReader, mechanism: Mechanism, free: list[int], budget: int, seed: int = 0, starts: dict | None = None
) -> dict:
    """The highest reading of one coefficient over commands of the `free` servos (the rest neutral).

    The mechanism at full travel and the `starts` (e.g. the named poses) are read first, within the
    budget; CMA-ES spends the rest from the best of them.
    """
    k = BLENDSHAPE_NAMES.index(mechanism.coefficient)
    n = reader.twin.spec.n
    best = {"value": -1.0, "command": np.zeros(n)}

    def full(x: np.ndarray) -> np.ndarray:
        c = np.zeros(n)
        c[free] = x
        return reader.command(c)

    def objective(x: np.ndarray) -> float:
        c = full(x)
        seen = reader.read(c)
        value = float(seen.blendshapes[k]) if seen is not None else 0.0
        if value > best["value"]:
            best.update(value=value, command=c)
        return -value

    candidates = [mechanism.start(n), *(np.asarray(c, np.float64) for c in (starts or {}).values())][:budget]
    scores = [objective(c[free]) for c in candidates]
    if budget > len(candidates):
        _cma(objective, candidates[int(np.argmin(scores))][free], budget - len(candidates), seed)
    again = reader.read(best["command"], from_neutral=True)  # a check, not a search step
    reader.evaluations -= 1
    value = float(again.blendshapes[k]) if again is not None else 0.0
    return {"value": value, "command": [round(float(v), 3) for v in best["command"]]}


def camera_limit(reader: PixelReader, target: np.ndarray, budget: int, seed: int = 0) -> dict:
    """The twin's closest reading to a person's 52 coefficients (blendshape MAE), from neutral by CMA-ES."""
    from facetwin.agents.evaluation.metrics import blendshape_mae

    n = reader.twin.spec.n
    scores = {"best": np.inf}

    def objective(x: np.ndarray) -> float:
        seen = reader.read(x)
        mae = blendshape_mae(target, seen.blendshapes) if seen is not None else 1.0
        scores["best"] = min(scores["best"], mae)
        return mae

    neutral = reader.read(np.zeros(n), from_neutral=True)
    scores["neutral"] = blendshape_mae(target, neutral.blendshapes) if neutral is not None else 1.0
    scores["best"] = scores["neutral"]
    if budget > 1:
        _cma(objective, np.zeros(n), budget - 1, seed)
    return {"neutral_mae": float(scores["neutral"]), "limit_mae": float(scores["best"])}


def run(quick: bool = False, faces: str | Path | None = None, spec: FaceSpec | None = None) -> dict:
    from facetwin.app.spec_check import face_poses
    from facetwin.human_faces import IMAGE_SUFFIXES, load_human_faces
    from facetwin.perception import FacePerceiver
    from facetwin.sim.twin import FaceTwin

    start = time.perf_counter()
    faces = Path(faces or FACES)
    people = load_human_faces(faces)
    p95 = np.percentile(people.blendshapes, 95, axis=0)
    photos = np.array([Path(str(s)).suffix.lower() in IMAGE_SUFFIXES for s in people.source])
    max_budget = MAX_BUDGET_QUICK if quick else MAX_BUDGET
    limit_budget = LIMIT_BUDGET_QUICK if quick else LIMIT_BUDGET
    twin = FaceTwin(spec, blendshapes=False)
    free = [i for i, s in enumerate(twin.spec.servos) if s.region != "neck"]
    poses = face_poses(twin.spec)  # the named poses the face has the mechanism for
    starts = {name: c for name, c in poses.items() if not np.any(np.delete(c, free))}  # no head motion
    reach = {}
    with FacePerceiver(mode="image") as perceiver:
        reader = PixelReader(twin, perceiver)
        for seed, (name, mech) in enumerate(mechanisms(twin.spec).items()):
            found = maximise(reader, mech, free, max_budget, seed, starts)
            people_p95 = float(p95[BLENDSHAPE_NAMES.index(name)])
            reach[name] = {"twin_max": found["value"], "people_p95": people_p95, "command": found["command"]}
            if quick and seed >= 2:
                break
        readings = {}
        for pose, coefficient in POSE_READINGS:
            if pose in poses:
                seen = reader.read(poses[pose], from_neutral=True)
                readings[f"{pose}.{coefficient}"] = seen.coefficient(coefficient) if seen is not None else 0.0
        targets = people.blendshapes[photos][: LIMIT_FACES_QUICK if quick else None]
        limits = [camera_limit(reader, t, limit_budget, seed) for seed, t in enumerate(targets)]
        evaluations = reader.evaluations
    twin.close()
    return {
        "reach": reach,
        "named_poses": readings,
        "max_search_budget": max_budget,
        "people_frames": len(people),
        "camera_limit_faces": len(limits),
        "camera_limit_budget": limit_budget,
        "camera_limit_mae": float(np.mean([r["limit_mae"] for r in limits])) if limits else float("nan"),
        "neutral_mae": float(np.mean([r["neutral_mae"] for r in limits])) if limits else float("nan"),
        "evaluations": evaluations,
        "wall_seconds": time.perf_counter() - start,
    }
