"""Training runs on disk, and the policy object loaded back from one.

A run directory holds `model.safetensors` (every learned tensor) and `config.json` (a `RunConfig`:
model kind and hyper-parameters, the face spec it was trained for, the expression layout, training
settings and metrics), plus `loss.png`. A run only loads against the face spec it was trained for.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from facetwin.dataset import atomic
from facetwin.dataset.layout import one_line
from facetwin.expression import EXPRESSION_NAMES
from facetwin.spec import FaceSpec, SpecError, default_spec, face_of, load_face

from facetwin.agents.policies.features import HEAD_SCALE_DEG, as_expression_batch
from facetwin.agents.policies.kinds import PolicyModel, build_model
from facetwin.agents.policies.kan_attention import servo_regions
from facetwin.agents.forward.refine import Refiner

FORMAT = "facetwin-policy/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class RunError(ValueError):
    """A run directory is missing, malformed, or does not fit this face / expression layout."""


class SpecMismatchError(RunError):
    """The run was trained for another face spec."""


@dataclass
class RunConfig:
    model: str
    hparams: dict
    spec_name: str
    spec_fingerprint: str
    servo_names: list[str]
    expression_names: list[str] = field(default_factory=lambda: list(EXPRESSION_NAMES))
    head_scale_deg: float = HEAD_SCALE_DEG
    training: dict = field(default_factory=dict)
    format: str = FORMAT
    face: str = ""  # the face it was trained for (`--face`); "" in runs from before faces had names
    readout: str = "fast"  # how its training data's expressions were read (facetwin.dataset.layout.READOUTS)

    @property
    def recorded_face(self) -> str | None:
        """The face the run is for: as written, or (older runs) the packaged face whose spec it names."""
        return self.face or face_of(self.spec_name, self.spec_fingerprint) or face_of(self.spec_name)

    @classmethod
    def read(cls, run_dir: str | Path) -> "RunConfig":
        path = Path(run_dir) / CONFIG_FILE
        if not path.is_file():
            raise RunError(f"no {CONFIG_FILE} in {run_dir}: not a facetwin training run (make one with `facetwin train`)")
        retrain = f"re-run `facetwin train --out {run_dir}`"
        try:
            raw = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunError(f"{path} is not valid JSON (truncated or damaged: {' '.join(str(exc).split())}); {retrain}") from exc
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise RunError(f"{path}: format {got!r}, this facetwin reads {FORMAT!r} (damaged, or another version); {retrain}")
        try:
            config = cls(**raw)
        except TypeError as exc:  # a key renamed by damage
            raise RunError(f"{path} is damaged ({exc}); {retrain}") from exc
        kinds = {"model": str, "hparams": dict, "servo_names": list, "expression_names": list, "training": dict,
                 "spec_name": str, "spec_fingerprint": str, "head_scale_deg": (int, float), "face": str,
                 "readout": str}
        wrong = [k for k, t in kinds.items() if not isinstance(getattr(config, k), t)]
        if wrong:
            raise RunError(f"{path} is damaged ({', '.join(wrong)} of the wrong type); {retrain}")
        return config

    def write(self, run_dir: str | Path) -> None:
        atomic.write_text(Path(run_dir) / CONFIG_FILE, json.dumps(asdict(self), indent=2) + "\n")


@dataclass
class Policy:
    """A trained policy for one face: `policy(expr55) -> cmd25` (or (N, 55) -> (N, 25)), commands in [-1, 1]
    in the face spec's servo order."""

    model: PolicyModel
    config: RunConfig
    spec: FaceSpec
    refiner: Refiner | None = None  # gradient steps through the run's forward model after the network's answer

    def __call__(self, expression) -> np.ndarray:
        single = np.ndim(expression) == 1
        batch = as_expression_batch(expression)
        out = self.model.predict(batch)
        if self.refiner is not None:
            out = self.refiner(batch, out)
        return out[0] if single else out

    @property
    def kind(self) -> str:
        return self.config.model

    @property
    def servo_names(self) -> tuple[str, ...]:
        return self.spec.names


def config_for(model: PolicyModel, spec: FaceSpec, training: dict | None = None, readout: str = "fast") -> RunConfig:
    return RunConfig(model=model.kind, hparams=model.hparams, spec_name=spec.name,
                     spec_fingerprint=spec.fingerprint, servo_names=list(spec.names), training=training or {},
                     face=spec.face, readout=readout)


def save_run(run_dir: str | Path, model: PolicyModel, config: RunConfig) -> Path:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # Both files atomic (a full disk mid-save leaves the previous checkpoint whole), weights first.
    target = run_dir / WEIGHTS_FILE
    tmp = atomic.temporary_path(target)
    try:
        save_file(model.tensors(), str(tmp))
        atomic.commit(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    config.write(run_dir)
    return run_dir


def check_spec(config: RunConfig, spec: FaceSpec, source: str) -> None:
    if config.spec_fingerprint == spec.fingerprint and list(config.servo_names) == list(spec.names):
        return
    if list(config.servo_names) != list(spec.names):
        theirs, ours = list(config.servo_names), list(spec.names)
        diff = [f"#{i}: {a} vs {b}" for i, (a, b) in enumerate(zip(theirs, ours)) if a != b][:3]
        if len(theirs) != len(ours):
            diff.insert(0, f"{len(theirs)} servos vs {len(ours)}")
        what = "servo names/order differ (" + "; ".join(diff) + ")"
    else:
        what = "same servo names, but limits or geometry differ"
    theirs = config.recorded_face
    if theirs == spec.face:
        what = f"face {theirs!r}'s spec has changed since ({what})"
    fix = f"run it with `--face {theirs}`" if theirs and theirs != spec.face else "load it with the spec it was made for"
    raise SpecMismatchError(
        f"{source} was trained for face {theirs or config.spec_name!r} (spec {config.spec_name!r}, fingerprint "
        f"{config.spec_fingerprint}), but this face is {spec.face!r} (spec {spec.name!r}, fingerprint {spec.fingerprint}): "
        f"{what}. Retrain for this face (`facetwin train --face {spec.face}`), or {fix}."
    )


REFINE_THROUGH = ("student", "teacher")


def _recorded_spec(config: RunConfig) -> FaceSpec:
    """The spec of the face a run records (the default face if it names none that loads: check_spec then says why)."""
    face = config.recorded_face
    try:
        return load_face(face) if face else default_spec()
    except SpecError:
        return default_spec()


def load_run_policy(run_dir: str | Path, spec: FaceSpec | None = None, refine_steps: int = 0,
                    refine_through: str = "student", bundle: str | Path | None = None) -> Policy:
    """Load a run for `spec` (by default the face the run records); a run for another face raises SpecMismatchError.
    What a user types as a policy goes through `agents.policies.loader.load_policy`, which reads runs with this.

    refine_steps > 0: every answer is refined by that many gradient steps through one of the run's forward
    models (`refine.Refiner`); the run must have it (trained with the expression objective):
    - "student": the distilled direct model the policy trained through, ~1 ms a step;
    - "teacher": the landmark-structured model it was distilled from, ending in the blendshape network of
      `bundle` (default: $FACETWIN_FACE_LANDMARKER or the cache); closer to the face, ~7 ms a step."""
    if refine_through not in REFINE_THROUGH:
        raise ValueError(f"refine_through must be one of {', '.join(REFINE_THROUGH)}, got {refine_through!r}")
    config = RunConfig.read(run_dir)
    spec = _recorded_spec(config) if spec is None else spec
    check_spec(config, spec, f"run {run_dir}")
    if list(config.expression_names) != list(EXPRESSION_NAMES) or config.head_scale_deg != HEAD_SCALE_DEG:
        raise RunError(f"run {run_dir} expects another expression layout/scaling than this facetwin's; retrain it")
    weights = Path(run_dir) / WEIGHTS_FILE
    if not weights.is_file():
        raise RunError(f"{weights} is missing: the run was interrupted before its first checkpoint")
    try:
        model = build_model(config.model, spec.n, servo_regions(spec), config.hparams)
    except (KeyError, ValueError, TypeError) as exc:  # a model kind or hyper-parameter this facetwin does not know
        raise RunError(f"{Path(run_dir) / CONFIG_FILE}: cannot build its {config.model!r} model ({one_line(exc)}); damaged, or from "
                       f"another facetwin version: re-run `facetwin train --out {run_dir}`") from exc
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunError(f"{weights} is not a readable safetensors file (truncated or damaged: {one_line(exc)}); "
                       f"re-run `facetwin train --out {run_dir}`") from exc
    try:
        model.load_tensors(tensors)
    except (RuntimeError, KeyError, ValueError) as exc:  # tensors of another version of this model kind
        raise RunError(f"{weights} does not fit a {config.model} model with the recorded hyper-parameters "
                       f"({one_line(exc)[:300]}); damaged, or from another version: re-run `facetwin train --out {run_dir}`") from exc
    refiner = None
    if refine_steps:
        from facetwin.agents.forward.expression_objective import Coupling
        from facetwin.agents.forward.direct import load_forward

        try:
            if refine_through == "teacher":
                from facetwin.agents.forward.landmark import load_teacher

                forward = load_teacher(run_dir, bundle)
            else:
                forward = load_forward(run_dir)
        except FileNotFoundError as exc:
            raise RunError(f"refining through the {refine_through} needs the run's forward model: {exc}") from exc
        refiner = Refiner(forward, Coupling(spec), refine_steps)
    return Policy(model=model, config=config, spec=spec, refiner=refiner)
