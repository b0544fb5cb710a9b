"""The policy ``facetwin mimic`` runs: a callable from a 55-dim expression to 25 commands in [-1, 1].

``load_policy(text)`` accepts
- ``neutral``: always command 0 (checks the pipeline and the latency without any model);
- a ``.npz`` file written by ``facetwin.app.live.ridge_policy`` (a linear inverse model fitted on the twin);
- a training run directory, loaded by ``facetwin.agents.load_policy``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from facetwin.expression import EXPRESSION_DIM

NEUTRAL = "neutral"

Policy = Callable[[np.ndarray], np.ndarray]


class PolicyLoadError(ValueError):
    """The policy named on the command line cannot be loaded; the message says what to pass instead."""


class NeutralPolicy:
    """Command 0 (the face spec's neutral pose) for every expression."""

    def __init__(self, n_servos: int):
        self.n = n_servos

    def __call__(self, expression: np.ndarray) -> np.ndarray:
        return np.zeros(self.n)


def load_policy(text: str, n_servos: int, refine_steps: int = 0) -> Policy:
    """refine_steps > 0 (run directories only): gradient steps through the run's forward model per answer."""
    if refine_steps and (text == NEUTRAL or Path(text).expanduser().is_file()):
        raise PolicyLoadError(f"policy {text}: only a training run directory has a forward model to refine with; "
                              "drop --refine")
    if text == NEUTRAL:
        return NeutralPolicy(n_servos)
    path = Path(text).expanduser()
    if not path.exists():
        raise PolicyLoadError(f"policy {text!r}: no such file or run directory; pass a training run directory, "
                              f"a ridge policy .npz, or '{NEUTRAL}'")
    if path.is_file():
        if path.suffix != ".npz":
            raise PolicyLoadError(f"policy {path}: a file must be a ridge policy .npz (facetwin.app.live.ridge_policy); "
                                  "a trained policy is given by its run directory")
        from facetwin.app.live.ridge_policy import RidgePolicy

        return checked(RidgePolicy.load(path), n_servos, str(path))
    load_run = _run_loader()
    if load_run is None:
        raise PolicyLoadError(f"policy {path}: loading a run directory needs facetwin.agents.load_policy, which is "
                              f"not available; pass a ridge policy .npz or '{NEUTRAL}'")
    try:
        policy = load_run(path, refine_steps=refine_steps) if refine_steps else load_run(path)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise PolicyLoadError(f"policy {path}: {exc}") from exc
    return checked(policy, n_servos, str(path))


def _run_loader():
    """facetwin.agents' run loader: the package's export, or the module that defines it."""
    import importlib

    for module in ("facetwin.agents", "facetwin.agents.training.checkpoint"):
        try:
            loader = getattr(importlib.import_module(module), "load_policy", None)
        except ImportError:
            continue
        if loader is not None:
            return loader
    return None


def checked(policy: Policy, n_servos: int, name: str) -> Policy:
    """Fail at load time, not mid-video, if the policy's output does not fit the face."""
    out = np.asarray(policy(np.zeros(EXPRESSION_DIM, np.float32)), dtype=np.float64).reshape(-1)
    if out.shape != (n_servos,) or not np.all(np.isfinite(out)):
        raise PolicyLoadError(f"policy {name} maps an expression to {out.shape} values; the face needs {n_servos} "
                              "finite commands")
    return policy
