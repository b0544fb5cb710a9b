"""Per-robot calibration: where each servo's neutral and safe limits sit in encoder ticks.

The face spec says what a command means in shaft degrees (`FaceSpec.offsets_deg`: piecewise linear,
c >= 0 scales range_deg[1], c < 0 scales range_deg[0]); the calibration says where those degrees are on
this robot's encoders. So the twin and the robot turn a command into the same shaft angle:

    ticks = neutral_ticks + direction * offsets_deg(c) * ticks_per_rev / 360      (then rounded)

A first calibration comes from the spec alone (`Calibration.from_spec`), treating the spec's absolute
angles as the servo's 0-180 travel centred on tick 2048:

    neutral_ticks = 2048 + direction * (neutral_deg - travel_deg / 2) * ticks_per_rev / 360
    min/max_ticks = the two range ends, rounded outwards so c = +-1 is never clipped

Interactive calibration (facetwin.real.calibrate) replaces neutral/min/max with measured ticks. Every
conversion clamps to [min_ticks, max_ticks], whichever way it is called.

The file carries a `checksum` of its contents (sha256 of the table as canonical JSON), written before the
servo table: these numbers are the limits that keep the skin whole, and a truncated or bit-flipped file
can still be valid YAML with plausible ticks. A file without the line (older, or edited by hand on
purpose, after deleting it) is read on trust.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

from facetwin.spec import FaceSpec, default_spec

FORMAT_VERSION = 1
TOP_KEYS = ("format", "robot", "spec_fingerprint", "source", "checksum", "servos")


class CalibrationError(ValueError):
    """A calibration file is missing, malformed or does not fit the face spec."""


@dataclass(frozen=True)
class ServoCalibration:
    name: str
    bus_id: int
    neutral_ticks: int
    min_ticks: int
    max_ticks: int
    direction: int  # +1: a positive command turns the shaft towards higher ticks


@dataclass(frozen=True)
class Calibration:
    robot: str  # the face spec's name
    servos: tuple[ServoCalibration, ...]  # in the spec's order
    spec: FaceSpec = field(repr=False, compare=False)
    source: str = "from-spec"  # "from-spec" or "interactive"

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: FaceSpec | None = None) -> Calibration:
        spec = spec or default_spec()
        k = spec.ticks_per_rev / 360.0
        centre = spec.ticks_per_rev // 2
        servos = []
        for s in spec.servos:
            neutral = centre + s.direction * (s.neutral_deg - spec.travel_deg / 2) * k
            ends = [neutral + s.direction * r * k for r in s.range_deg]
            servos.append(
                ServoCalibration(
                    name=s.name,
                    bus_id=s.bus_id,
                    neutral_ticks=int(round(neutral)),
                    min_ticks=int(math.floor(min(ends) + 1e-9)),
                    max_ticks=int(math.ceil(max(ends) - 1e-9)),
                    direction=s.direction,
                )
            )
        return cls(robot=spec.name, servos=tuple(servos), spec=spec)

    def with_servo(self, servo: ServoCalibration) -> Calibration:
        servos = tuple(servo if s.name == servo.name else s for s in self.servos)
        return replace(self, servos=servos, source="interactive")

    # -- arrays ----------------------------------------------------------------------------------
    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(s.bus_id for s in self.servos)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.servos)

    def _column(self, attr: str) -> np.ndarray:
        return np.array([getattr(s, attr) for s in self.servos], dtype=np.float64)

    @property
    def neutral_ticks(self) -> np.ndarray:
        return self._column("neutral_ticks").astype(np.int64)

    @property
    def min_ticks(self) -> np.ndarray:
        return self._column("min_ticks").astype(np.int64)

    @property
    def max_ticks(self) -> np.ndarray:
        return self._column("max_ticks").astype(np.int64)

    # -- mapping ---------------------------------------------------------------------------------
    def _ticks_per_deg(self) -> float:
        return self.spec.ticks_per_rev / 360.0

    def to_ticks(self, command) -> np.ndarray:
        """Normalised commands (spec order) -> goal ticks, clamped to the calibrated limits."""
        c = self.spec.check_command(command, clip=True)
        raw = self._column("neutral_ticks") + self._column("direction") * self.spec.offsets_deg(c) * self._ticks_per_deg()
        return np.clip(np.rint(raw), self.min_ticks, self.max_ticks).astype(np.int64)

    def to_commands(self, ticks) -> np.ndarray:
        """Measured ticks (spec order) -> normalised positions in [-1, 1], the inverse of `to_ticks`."""
        t = np.asarray(ticks, dtype=np.float64)
        if t.shape != (len(self.servos),):
            raise ValueError(f"expected {len(self.servos)} tick values in the spec's order, got shape {t.shape}")
        t = np.clip(t, self.min_ticks, self.max_ticks)
        offsets = self._column("direction") * (t - self._column("neutral_ticks")) / self._ticks_per_deg()
        return self.spec.commands_from_offsets(offsets)

    def reach(self) -> np.ndarray:
        """(n, 2): the commands the calibrated limits let each servo reach (-1, +1 when nothing is cut)."""
        lo = self.to_commands(np.where(self._column("direction") > 0, self.min_ticks, self.max_ticks))
        hi = self.to_commands(np.where(self._column("direction") > 0, self.max_ticks, self.min_ticks))
        return np.stack([lo, hi], axis=1)

    # -- files -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        body = {
            "format": FORMAT_VERSION,
            "robot": self.robot,
            "spec_fingerprint": self.spec.fingerprint,
            "source": self.source,
            "servos": {
                s.name: {
                    "bus_id": s.bus_id,
                    "neutral_ticks": s.neutral_ticks,
                    "min_ticks": s.min_ticks,
                    "max_ticks": s.max_ticks,
                    "direction": s.direction,
                }
                for s in self.servos
            },
        }
        servos = body.pop("servos")
        return {**body, "checksum": content_checksum({**body, "servos": servos}), "servos": servos}

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        header = "# facetwin servo calibration (ticks: 4096 per revolution). Written by `facetwin real calibrate`.\n"
        p.write_text(header + yaml.safe_dump(self.to_dict(), sort_keys=False))
        return p

    @classmethod
    def load(cls, path: str | Path, spec: FaceSpec | None = None) -> Calibration:
        spec = spec or default_spec()
        p = Path(path)
        if not p.exists():
            raise CalibrationError(
                f"no calibration at {p}; create one with `facetwin real calibrate --port PORT --from-spec` "
                f"(or interactively without --from-spec)"
            )
        try:
            raw = yaml.safe_load(p.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:  # YAML errors span lines: keep the first
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CalibrationError(f"cannot read calibration {p} ({first}; truncated or damaged?); {RECALIBRATE}") from exc
        return cls.from_dict(raw, spec, source=str(p))

    @classmethod
    def from_dict(cls, raw: dict, spec: FaceSpec, source: str = "calibration") -> Calibration:
        if not isinstance(raw, dict) or not isinstance(raw.get("servos"), dict):
            raise CalibrationError(f"{source}: expected a mapping with a `servos` table (empty, truncated or damaged?); {RECALIBRATE}")
        unknown = [str(k) for k in raw if k not in TOP_KEYS]
        if unknown:
            raise CalibrationError(f"{source}: unknown entries {unknown} (damaged?); {RECALIBRATE}")
        if raw.get("robot") != spec.name:
            raise CalibrationError(f"{source}: calibrates robot {raw.get('robot')!r}, but the face spec is {spec.name!r}; "
                                   f"use that robot's spec, or {RECALIBRATE}")
        table = raw["servos"]
        missing = [n for n in spec.names if n not in table]
        extra = [n for n in table if n not in spec.names]
        if missing or extra:
            raise CalibrationError(
                f"{source}: servo names differ from the face spec (missing: {missing or 'none'}, unknown: {extra or 'none'}); "
                f"re-run `facetwin real calibrate`"
            )
        if raw.get("spec_fingerprint") not in (None, spec.fingerprint):
            warnings.warn(f"{source}: made for a different version of face spec {spec.name!r}; check the limits", stacklevel=2)
        servos = []
        try:
            for name in spec.names:
                e = table[name]
                servos.append(
                    ServoCalibration(
                        name=name,
                        bus_id=int(e["bus_id"]),
                        neutral_ticks=int(e["neutral_ticks"]),
                        min_ticks=int(e["min_ticks"]),
                        max_ticks=int(e["max_ticks"]),
                        direction=int(e["direction"]),
                    )
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"{source}: servo {name!r} entry malformed ({exc!r}); needs bus_id, neutral_ticks, "
                                   f"min_ticks, max_ticks, direction; {RECALIBRATE}") from exc
        cal = cls(robot=spec.name, servos=tuple(servos), spec=spec, source=str(raw.get("source", "interactive")))
        validate(cal, source)
        # last, so that a file with a plain mistake gets the specific message above
        if "checksum" in raw:
            body = {k: v for k, v in raw.items() if k != "checksum"}
            if raw["checksum"] != content_checksum(body):
                raise CalibrationError(
                    f"{source}: contents do not match their checksum (damaged or truncated, or edited by hand); "
                    f"{RECALIBRATE}, or for a deliberate edit delete the checksum line")
        return cal


RECALIBRATE = "re-run `facetwin real calibrate --port PORT` (or `--from-spec` for a first file)"


def content_checksum(body: dict) -> str:
    """sha256 of the calibration table as canonical JSON (key order and YAML layout do not count)."""
    try:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):  # keys of mixed types after damage: cannot match a written checksum
        text = repr(body)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def validate(cal: Calibration, source: str = "calibration") -> None:
    problems = []
    ids = cal.ids
    if len(set(ids)) != len(ids):
        problems.append("bus IDs repeat")
    top = cal.spec.ticks_per_rev - 1
    for s in cal.servos:
        if s.direction not in (-1, 1):
            problems.append(f"{s.name}: direction must be +1 or -1")
        if not (0 <= s.min_ticks < s.neutral_ticks < s.max_ticks <= top):
            problems.append(f"{s.name}: needs 0 <= min_ticks < neutral_ticks < max_ticks <= {top} (got {s.min_ticks}, {s.neutral_ticks}, {s.max_ticks})")
    if problems:
        raise CalibrationError(f"{source}: " + "; ".join(problems) + f"; {RECALIBRATE}")


def default_calibration_path(spec: FaceSpec | None = None) -> Path:
    """Where a robot's calibration lives unless --calibration says otherwise ($FACETWIN_CALIBRATION_DIR)."""
    spec = spec or default_spec()
    root = Path(os.environ.get("FACETWIN_CALIBRATION_DIR", Path.home() / ".config" / "facetwin"))
    return root / f"calibration_{spec.name}.yaml"
