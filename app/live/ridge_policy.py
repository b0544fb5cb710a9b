"""A linear inverse model of the twin, expression -> commands, fitted by ridge regression.

It stands in for a trained policy where none exists yet (demos, checks of the live pipeline): the twin
is driven through commands from the expert motion strategy, its fast-path expression is read out, and
commands are regressed on expressions. Fitting 600 poses takes a few seconds on a CPU.

    python -m facetwin.app.live.ridge_policy OUT.npz [--samples 600] [--seed 0]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.expression import EXPRESSION_DIM, N_BLENDSHAPES

HEAD_SCALE_DEG = 30.0  # head angles enter in units of 30 deg, like coefficients in [0, 1]


def features(expressions: np.ndarray) -> np.ndarray:
    """(N, 55) expressions -> (N, 56): coefficients, head / 30 deg, and a constant."""
    x = np.atleast_2d(np.asarray(expressions, dtype=np.float64))
    if x.shape[1] != EXPRESSION_DIM:
        raise ValueError(f"expressions must have {EXPRESSION_DIM} columns, got {x.shape[1]}")
    return np.concatenate([x[:, :N_BLENDSHAPES], x[:, N_BLENDSHAPES:] / HEAD_SCALE_DEG, np.ones((len(x), 1))], 1)


@dataclass
class RidgePolicy:
    weights: np.ndarray  # (56, n_servos)

    def __call__(self, expression: np.ndarray) -> np.ndarray:
        return np.clip(features(expression) @ self.weights, -1.0, 1.0)[0]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, weights=self.weights)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "RidgePolicy":
        with np.load(path) as data:
            if "weights" not in data:
                raise ValueError(f"{path} holds no 'weights' array; write it with facetwin.app.live.ridge_policy")
            return cls(np.asarray(data["weights"], dtype=np.float64))


def fit(expressions: np.ndarray, commands: np.ndarray, alpha: float = 1e-2) -> RidgePolicy:
    f = features(expressions)
    w = np.linalg.solve(f.T @ f + alpha * np.eye(f.shape[1]), f.T @ np.asarray(commands, dtype=np.float64))
    return RidgePolicy(w)


def twin_pairs(twin, samples: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(expressions (N, 55), commands (N, 25)) from expert-strategy poses applied to the twin."""
    from facetwin.motion import make_strategy

    strategy = make_strategy("expert", twin.spec, seed=seed)
    per_episode = 40
    # 2 fps along the expert's trajectories: keyframes and the way between them, few repeats.
    commands = np.concatenate([strategy.episode(i, per_episode, 2.0) for i in range(-(-samples // per_episode))])[:samples]
    expressions = np.stack([twin.apply(c).expression.vector for c in commands])
    twin.reset()
    return expressions, commands


def fit_on_twin(twin, samples: int = 600, seed: int = 0, alpha: float = 1e-2) -> RidgePolicy:
    return fit(*twin_pairs(twin, samples, seed), alpha=alpha)


def main(argv: list[str] | None = None) -> int:
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    p = argparse.ArgumentParser(prog="python -m facetwin.app.live.ridge_policy", description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="where to write the policy (.npz)")
    p.add_argument("--samples", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from facetwin.sim.twin import FaceTwin

    with FaceTwin() as twin:
        policy = fit_on_twin(twin, args.samples, args.seed)
    print(f"wrote {policy.save(args.out.with_suffix('.npz'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
