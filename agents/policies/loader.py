"""The one loader of what a user names as a policy (`facetwin eval`, `facetwin mimic`, `facetwin real mimic`,
the benchmarks), adapted to one callable: expression (55,) -> commands (n,).

It accepts a run directory written by `facetwin train` (read with
``facetwin.agents.training.checkpoint.load_run_policy``), or ``neutral``: every servo at 0, the baseline any
policy should beat and a check of a pipeline without any model. A linear (ridge) policy is a run directory
too: `facetwin train --model linear`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.expression import EXPRESSION_DIM
from facetwin.spec import FaceSpec, default_spec

NEUTRAL = "neutral"
ACCEPTED = f"pass a run directory written by `facetwin train --out RUN_DIR`, or '{NEUTRAL}' (every servo at 0)"


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


def load_policy(policy: str | Path, spec: FaceSpec | None = None, refine_steps: int = 0,
                refine_through: str = "student", bundle: str | Path | None = None) -> FacePolicy:
    """``neutral`` or a `facetwin train` run directory; a ``PolicyLoadError`` naming the problem otherwise.
    refine_steps: gradient steps through the run's forward model (`refine_through`: its student or
    teacher) after each answer (checkpoint.load_run_policy)."""
    spec = spec or default_spec()
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
