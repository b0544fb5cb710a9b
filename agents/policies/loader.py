"""What `facetwin eval --policy` accepts, adapted to one callable: expression (55,) -> commands (25,).

A run directory written by `facetwin train` (loaded with ``facetwin.agents.training.checkpoint.load_policy``), or
``neutral``: every servo at 0, the baseline any policy should beat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.expression import EXPRESSION_DIM
from facetwin.spec import FaceSpec, default_spec


class PolicyLoadError(ValueError):
    """The policy argument names nothing loadable; the message says what to pass instead."""


@dataclass
class EvalPolicy:
    """A policy under evaluation: its name for the report and the map expression (55,) -> commands (n,)."""

    name: str
    act: Callable[[np.ndarray], np.ndarray]
    n_commands: int
    kind: str = "neutral"  # the model kind of a trained run (kan-attn, mlp, ...) or the baseline's name

    def __call__(self, expression: np.ndarray) -> np.ndarray:
        out = np.asarray(self.act(np.asarray(expression, np.float32).reshape(EXPRESSION_DIM)), np.float64).reshape(-1)
        if out.shape != (self.n_commands,):
            raise ValueError(f"policy {self.name} returned {out.shape[0]} commands, the face has {self.n_commands}")
        return out


def neutral_policy(spec: FaceSpec) -> EvalPolicy:
    zeros = np.zeros(spec.n)
    return EvalPolicy("neutral", lambda _expr: zeros, spec.n)


def load_eval_policy(policy: str | Path, spec: FaceSpec | None = None, refine_steps: int = 0,
                     refine_through: str = "student", bundle: str | Path | None = None) -> EvalPolicy:
    """``neutral`` or a `facetwin train` run directory; a ``PolicyLoadError`` naming the problem otherwise.
    refine_steps: gradient steps through the run's forward model (`refine_through`: its student or
    teacher) after each answer (checkpoint.load_policy)."""
    spec = spec or default_spec()
    text = str(policy)
    if text == "neutral":
        if refine_steps:
            raise PolicyLoadError("the neutral baseline has no forward model to refine with; drop --refine")
        return neutral_policy(spec)
    run_dir = Path(text).expanduser()
    expected = "pass a run directory written by `facetwin train --out RUN_DIR`, or 'neutral' (every servo at 0)"
    if not run_dir.exists():
        raise PolicyLoadError(f"policy {run_dir} does not exist; {expected}")
    if not run_dir.is_dir():
        raise PolicyLoadError(f"policy {run_dir} is a file, not a run directory; {expected}")
    from facetwin.agents.training.checkpoint import load_policy

    try:
        act = load_policy(run_dir, spec, refine_steps, refine_through, bundle)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # RunError / SpecMismatchError are ValueErrors
        raise PolicyLoadError(f"cannot load the policy in {run_dir}: {exc}") from exc
    kind = getattr(act, "kind", "trained")
    if refine_steps:
        kind += f"+refine{refine_steps}" + ("-teacher" if refine_through == "teacher" else "")
    return EvalPolicy(text, act, spec.n, kind=kind)
