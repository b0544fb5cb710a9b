"""Face specs: the one place where a robot face's servos are named and bounded.

Each face is one YAML file: `assets/face_spec.yaml` is the default face ("rena", 25 servos) and every
`assets/<name>/face_spec.yaml` is a face called <name> (e.g. "eva", 26 actuators). This module is the
only one that knows where specs live (`face_names`, `load_face`); it loads them into typed records and
owns the mapping from normalised commands in [-1, 1] to servo-shaft degrees that both the twin and the
servo bus use.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

REGIONS = ("eyes", "eyelids", "brows", "mouth", "neck")
MECHANISMS = ("cable", "jaw", "eyelid", "eyeball", "neck")


class SpecError(ValueError):
    """The face spec file is inconsistent."""


class CommandError(ValueError):
    """A servo command vector is malformed (wrong length, NaN, out of range)."""


@dataclass(frozen=True)
class Coupling:
    with_servo: str
    limit: float  # |this command| + max(other command, 0) must stay at or below this
    why: str = ""


@dataclass(frozen=True)
class Servo:
    name: str
    region: str
    bus_id: int
    neutral_deg: float
    range_deg: tuple[float, float]
    direction: int
    mechanism: str
    pulls: tuple[int, ...]
    positive: str
    negative: str
    coupling: Coupling | None = None
    # Kinematics (head frame): the rotation axis of a direct linkage, or a cable servo's pull
    # directions (from skin point towards guide) and skin travel at full -/+ command.
    axis: tuple[float, float, float] | None = None
    pull_positive: tuple[float, float, float] | None = None
    pull_negative: tuple[float, float, float] | None = None
    travel_mm: tuple[float, float] | None = None
    mirror_pairs: bool = False

    @property
    def min_deg(self) -> float:
        return self.neutral_deg + self.range_deg[0]

    @property
    def max_deg(self) -> float:
        return self.neutral_deg + self.range_deg[1]


@dataclass(frozen=True)
class FaceSpec:
    name: str
    version: int
    servo_model: str
    travel_deg: float
    ticks_per_rev: int
    baudrate: int
    servos: tuple[Servo, ...]
    fingerprint: str = field(default="", compare=False)
    # The name the face is selected by (`--face`): its folder under assets/, or the file's path for a spec
    # outside the package.
    face: str = field(default="", compare=False)
    # Optional per-face servo targets of the motion primitives (primitive name -> servo name -> command at
    # full intensity); None: the primitive library's own targets, which are written for the default face.
    primitives: dict[str, dict[str, float]] | None = field(default=None, compare=False)

    # -- lookup ---------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.servos)

    @property
    def n(self) -> int:
        return len(self.servos)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no servo named {name!r} in face spec {self.name!r}; known: {', '.join(self.names)}") from None

    def servo(self, name: str) -> Servo:
        return self.servos[self.index(name)]

    def region_indices(self, region: str) -> list[int]:
        return [i for i, s in enumerate(self.servos) if s.region == region]

    # -- command mapping -------------------------------------------------------------------------
    def check_command(self, command, *, clip: bool = False) -> np.ndarray:
        """Validate a command vector; returns it as float64. `clip` clamps instead of rejecting."""
        arr = np.asarray(command, dtype=np.float64)
        if arr.shape != (self.n,):
            raise CommandError(
                f"expected {self.n} servo commands in the face spec's order ({self.names[0]}, ..., {self.names[-1]}), "
                f"got shape {arr.shape}"
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            names = [self.names[i] for i in np.flatnonzero(bad)]
            raise CommandError(f"servo commands must be finite numbers; NaN/inf for {', '.join(names)}")
        if clip:
            return np.clip(arr, -1.0, 1.0)
        out = np.abs(arr) > 1.0 + 1e-9
        if out.any():
            bad_list = ", ".join(f"{self.names[i]}={arr[i]:.3g}" for i in np.flatnonzero(out))
            raise CommandError(
                f"servo commands are normalised to [-1, 1]; out of range: {bad_list} (clip them, or scale the policy output)"
            )
        return arr

    def offsets_deg(self, command) -> np.ndarray:
        """Shaft angle relative to neutral, degrees, for each servo (positive = the spec's `positive`)."""
        c = self.check_command(command)
        lo = np.array([s.range_deg[0] for s in self.servos])
        hi = np.array([s.range_deg[1] for s in self.servos])
        return np.where(c >= 0, c * hi, -c * lo)

    def commands_from_offsets(self, offsets_deg) -> np.ndarray:
        off = np.asarray(offsets_deg, dtype=np.float64)
        lo = np.array([s.range_deg[0] for s in self.servos])
        hi = np.array([s.range_deg[1] for s in self.servos])
        return np.clip(np.where(off >= 0, off / hi, -off / lo), -1.0, 1.0)

    def coupling_violations(self, command) -> list[str]:
        c = np.asarray(command, dtype=np.float64)
        out = []
        for i, s in enumerate(self.servos):
            if s.coupling is None:
                continue
            other = c[self.index(s.coupling.with_servo)]
            if abs(c[i]) + max(other, 0.0) > s.coupling.limit + 1e-9:
                out.append(f"{s.name} ({c[i]:+.2f}) with {s.coupling.with_servo} ({other:+.2f}) exceeds {s.coupling.limit}")
        return out


DEFAULT_SPEC = "face_spec.yaml"
DEFAULT_FACE = "rena"


def default_spec_path() -> Path:
    return Path(str(resources.files("facetwin.assets") / DEFAULT_SPEC))


def face_names() -> tuple[str, ...]:
    """The packaged faces: the default one, then every assets/<name>/ holding a face_spec.yaml."""
    root = Path(str(resources.files("facetwin.assets")))
    others = sorted(d.name for d in root.iterdir() if (d / DEFAULT_SPEC).is_file() and d.name != DEFAULT_FACE)
    return (DEFAULT_FACE, *others)


def face_spec_path(face: str | Path) -> Path:
    """Where face `face` is written: a packaged face's name, or the path of a face_spec YAML file."""
    text = str(face)
    if text == DEFAULT_FACE:
        return default_spec_path()
    if text in face_names():
        return Path(str(resources.files("facetwin.assets"))) / text / DEFAULT_SPEC
    path = Path(text).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    raise SpecError(
        f"no face named {text!r}; packaged faces: {', '.join(face_names())} "
        f"(or give the path of a face_spec.yaml; docs/new-face.md says how to add a face)"
    )


def load_face(face: str | Path | None = None) -> FaceSpec:
    """The spec of a face by name (`--face`), or of a face_spec YAML file; the default face for None."""
    return _load_face(str(face) if face is not None else DEFAULT_FACE)


@lru_cache(maxsize=16)
def _load_face(face: str) -> FaceSpec:
    return load_spec(face_spec_path(face), face=face if face in face_names() else "")


def face_of(spec_name: str, fingerprint: str = "") -> str | None:
    """The packaged face whose spec has this name (and fingerprint, when given); None if no packaged face does."""
    for face in face_names():
        spec = load_face(face)
        if spec.name == spec_name and (not fingerprint or spec.fingerprint == fingerprint):
            return face
    return None


def _parse(raw: dict, source: str, face: str) -> FaceSpec:
    try:
        servos = []
        for entry in raw["servos"]:
            coupling = entry.get("coupling")
            pull = entry.get("pull") or {}
            vec = lambda v: None if v is None else tuple(float(x) for x in v)  # noqa: E731
            servos.append(
                Servo(
                    name=str(entry["name"]),
                    region=str(entry["region"]),
                    bus_id=int(entry["bus_id"]),
                    neutral_deg=float(entry["neutral_deg"]),
                    range_deg=(float(entry["range_deg"][0]), float(entry["range_deg"][1])),
                    direction=int(entry["direction"]),
                    mechanism=str(entry["mechanism"]),
                    pulls=tuple(int(p) for p in entry["pulls"]),
                    positive=str(entry["positive"]),
                    negative=str(entry["negative"]),
                    coupling=None
                    if coupling is None
                    else Coupling(str(coupling["with"]), float(coupling["limit"]), str(coupling.get("why", ""))),
                    axis=vec(entry.get("axis")),
                    pull_positive=vec(pull.get("positive")),
                    pull_negative=vec(pull.get("negative")),
                    travel_mm=vec(entry.get("travel_mm")),
                    mirror_pairs=bool(entry.get("mirror_pairs", False)),
                )
            )
        spec = FaceSpec(
            name=str(raw["name"]),
            version=int(raw["version"]),
            servo_model=str(raw["servo_model"]),
            travel_deg=float(raw["travel_deg"]),
            ticks_per_rev=int(raw["ticks_per_rev"]),
            baudrate=int(raw["baudrate"]),
            servos=tuple(servos),
            fingerprint=hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16],
            face=face,
            primitives=_parse_primitives(raw.get("primitives")),
        )
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise SpecError(f"{source}: malformed face spec ({exc!r})") from exc
    validate(spec, source)
    return spec


def _parse_primitives(raw) -> dict[str, dict[str, float]] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TypeError("primitives must map primitive names to {servo: command}")
    return {str(name): {str(k): float(v) for k, v in (targets or {}).items()} for name, targets in raw.items()}


def validate(spec: FaceSpec, source: str = "face spec") -> None:
    problems = []
    names = spec.names
    if len(set(names)) != len(names):
        problems.append("servo names repeat")
    ids = [s.bus_id for s in spec.servos]
    if len(set(ids)) != len(ids) or not all(1 <= i <= 253 for i in ids):
        problems.append("bus IDs must be unique and within 1..253")
    for s in spec.servos:
        if s.region not in REGIONS:
            problems.append(f"{s.name}: region {s.region!r} not in {REGIONS}")
        if s.mechanism not in MECHANISMS:
            problems.append(f"{s.name}: mechanism {s.mechanism!r} not in {MECHANISMS}")
        if s.direction not in (-1, 1):
            problems.append(f"{s.name}: direction must be +1 or -1")
        if not (s.range_deg[0] < 0 < s.range_deg[1]):
            problems.append(f"{s.name}: range_deg must straddle neutral (lo < 0 < hi)")
        if s.min_deg < 0 or s.max_deg > spec.travel_deg:
            problems.append(f"{s.name}: limits {s.min_deg}..{s.max_deg} deg leave the servo's 0..{spec.travel_deg} travel")
        if s.mechanism == "cable" and (s.pull_positive is None or s.pull_negative is None or s.travel_mm is None):
            problems.append(f"{s.name}: a cable servo needs pull.positive, pull.negative and travel_mm")
        if s.mechanism == "cable" and s.travel_mm is not None:
            per_deg = (s.travel_mm[0] / -s.range_deg[0], s.travel_mm[1] / s.range_deg[1])
            if abs(per_deg[0] - per_deg[1]) > 0.05 * max(per_deg):
                problems.append(
                    f"{s.name}: a horn has one radius, so travel_mm {list(s.travel_mm)} must be in the ratio of "
                    f"range_deg {list(s.range_deg)} (mm per degree {per_deg[0]:.3f} vs {per_deg[1]:.3f})"
                )
        if s.mechanism != "cable" and s.axis is None:
            problems.append(f"{s.name}: a {s.mechanism} linkage needs an axis")
        if s.coupling and s.coupling.with_servo not in names:
            problems.append(f"{s.name}: coupled with unknown servo {s.coupling.with_servo!r}")
    for primitive, targets in (spec.primitives or {}).items():
        unknown = [k for k in targets if k not in names]
        if unknown:
            problems.append(f"primitive {primitive}: drives unknown servo(s) {', '.join(unknown)}")
        out = [f"{k}={v}" for k, v in targets.items() if not -1.0 <= v <= 1.0]
        if out:
            problems.append(f"primitive {primitive}: targets must lie in [-1, 1] ({', '.join(out)})")
    if problems:
        raise SpecError(f"{source}: " + "; ".join(problems))


def load_spec(path: str | Path | None = None, *, face: str = "") -> FaceSpec:
    """Load a face spec file (the default face's by default); `face` is the name it is selected by."""
    p = default_spec_path() if path is None else Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise SpecError(f"cannot read face spec {p}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"face spec {p} is not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"face spec {p}: expected a mapping with name, version, ... and servos")
    if not face:  # a packaged face's file read by its path is still that face; another file is its path
        face = next((name for name in face_names() if face_spec_path(name).resolve() == p.resolve()), str(p.resolve()))
    return _parse(raw, str(p), face)


def default_spec() -> FaceSpec:
    """The default face's spec (`DEFAULT_FACE`)."""
    return load_face(DEFAULT_FACE)
