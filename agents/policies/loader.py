"""The one loader of what a user names as a policy (`facetwin eval`, `facetwin mimic`, `facetwin real mimic`,
the benchmarks), adapted to one callable: expression (55,) -> commands (n,).

It accepts a run directory written by `facetwin train` (read with
``facetwin.agents.training.checkpoint.load_run_policy``), or ``neutral``: every servo at 0, the baseline any
policy should beat and a check of a pipeline without any model. A linear (ridge) policy is a run directory
too: `facetwin train --model linear`. Nothing (``None``) means the policy that ships with the package
(`default_policy_dir`), so a new user mimics before training anything; this module is the one place that
default is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.expression import EXPRESSION_DIM
from facetwin.spec import FaceSpec, default_spec

NEUTRAL = "neutral"
DEFAULT_NAME = "default"  # how the shipped policy is named in reports and stats
ACCEPTED = f"pass a run directory written by `facetwin train --out RUN_DIR`, or '{NEUTRAL}' (every servo at 0)"
# package data: the weights and config.json of a run, written by scripts/train_default_policy.sh
DEFAULT_POLICY_PACKAGE = "facetwin.assets"
DEFAULT_POLICY_PATH = ("policies", "default")
TRAIN_DEFAULT = "bash scripts/train_default_policy.sh"


class PolicyLoadError(ValueError):
    """The policy argument names nothing loadable; the message says what to pass instead."""


@dataclass
class FacePolicy:
    """A policy for one face: its name for reports, its kind, and the map expression (55,) -> commands (n,)."""

    name: str
    act: Callable[[np.ndarray], np.ndarray]
    n_commands: int
    kind: str = NEUTRAL  # the model kind of a trained run (kan-attn, linear, ...) or the baseline's name

    def __call__(self, expression: np.ndarray) -> np.ndarray:
        out = np.asarray(self.act(np.asarray(expression, np.float32).reshape(EXPRESSION_DIM)), np.float64).reshape(-1)
        if out.shape != (self.n_commands,):
            raise ValueError(f"policy {self.name} returned {out.shape[0]} commands, the face has {self.n_commands}")
        return out


def neutral_policy(spec: FaceSpec) -> FacePolicy:
    zeros = np.zeros(spec.n)
    return FacePolicy(NEUTRAL, lambda _expr: zeros, spec.n)


def default_policy_dir() -> Path:
    """The run directory of the policy shipped inside the package (weights and config only: no forward model)."""
    from importlib import resources

    return Path(str(resources.files(DEFAULT_POLICY_PACKAGE).joinpath(*DEFAULT_POLICY_PATH)))


def load_default_policy(spec: FaceSpec | None = None) -> FacePolicy:
    """The shipped policy, named ``default``; a ``PolicyLoadError`` saying how to rebuild it if it is missing."""
    spec = spec or default_spec()
    run_dir = default_policy_dir()
    if not (run_dir / "config.json").is_file():
        raise PolicyLoadError(f"the default policy is missing from this installation ({run_dir}); rebuild it with "
                              f"`{TRAIN_DEFAULT}`, or {ACCEPTED}")
    from facetwin.agents.training.checkpoint import RunConfig, load_run_policy

    try:
        shipped_for = RunConfig.read(run_dir).recorded_face
        if shipped_for is not None and spec.face and shipped_for != spec.face:
            # another robot face: the shipped policy is not stale, just not this face's
            raise PolicyLoadError(f"the shipped default policy is for face {shipped_for!r}, not {spec.face!r}; pass "
                                  f"--policy RUN_DIR trained for it (`facetwin train --face {spec.face}`), or "
                                  f"'{NEUTRAL}'")
        act = load_run_policy(run_dir, spec)
    except PolicyLoadError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise PolicyLoadError(f"the default policy in {run_dir} does not load ({exc}); rebuild it with "
                              f"`{TRAIN_DEFAULT}`, or {ACCEPTED}") from exc
    return checked(FacePolicy(DEFAULT_NAME, act, spec.n, kind=getattr(act, "kind", "trained")))


def load_policy(policy: str | Path | None = None, spec: FaceSpec | None = None, refine_steps: int = 0,
                refine_through: str = "student", bundle: str | Path | None = None) -> FacePolicy:
    """``None`` (the shipped default), ``neutral`` or a `facetwin train` run directory; a ``PolicyLoadError``
    naming the problem otherwise. refine_steps: gradient steps through the run's forward model
    (`refine_through`: its student or teacher) after each answer (checkpoint.load_run_policy)."""
    spec = spec or default_spec()
    if policy is None:
        if refine_steps:
            # its forward models outweigh the policy itself, so they stay in the run the script trains
            raise PolicyLoadError("the shipped default policy carries no forward model to refine with; drop "
                                  "--refine, or pass --policy RUN_DIR of a run trained with `facetwin train`")
        return load_default_policy(spec)
    text = str(policy)
    if text == NEUTRAL:
        if refine_steps:
            raise PolicyLoadError("the neutral baseline has no forward model to refine with; drop --refine")
        return neutral_policy(spec)
    run_dir = Path(text).expanduser()
    if not run_dir.exists():
        raise PolicyLoadError(f"policy {run_dir} does not exist; {ACCEPTED}")
    if not run_dir.is_dir():
        if run_dir.suffix == ".npz":  # the retired live ridge-policy file: say where its model went
            raise PolicyLoadError(f"policy {run_dir}: ridge policy .npz files are no longer read; fit the linear "
                                  f"model as a run directory with `facetwin train --model linear --out RUN_DIR`, "
                                  f"or pass '{NEUTRAL}'")
        raise PolicyLoadError(f"policy {run_dir} is a file, not a run directory; {ACCEPTED}")
    from facetwin.agents.training.checkpoint import load_run_policy

    try:
        act = load_run_policy(run_dir, spec, refine_steps, refine_through, bundle)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # RunError / SpecMismatchError are ValueErrors
        raise PolicyLoadError(f"cannot load the policy in {run_dir}: {exc}") from exc
    kind = getattr(act, "kind", "trained")
    if refine_steps:
        kind += f"+refine{refine_steps}" + ("-teacher" if refine_through == "teacher" else "")
    return checked(FacePolicy(text, act, spec.n, kind=kind))


def checked(policy: FacePolicy) -> FacePolicy:
    """Fail at load time, not mid-video or mid-evaluation, if the policy's output does not fit the face."""
    out = np.asarray(policy.act(np.zeros(EXPRESSION_DIM, np.float32)), np.float64).reshape(-1)
    if out.shape != (policy.n_commands,) or not np.all(np.isfinite(out)):
        raise PolicyLoadError(f"policy {policy.name} maps an expression to {out.shape[0]} values; the face needs "
                              f"{policy.n_commands} finite commands")
    return policy
