"""Closed-form baselines: ridge regression and nearest neighbours, on the same scaled inputs as the nets."""

from __future__ import annotations

import numpy as np

from facetwin.agents.policies.features import input_scale


class Ridge:
    """commands = clip(W^T [x, 1]), W by ridge regression in closed form (the bias is not penalised)."""

    def __init__(self, alpha: float = 1e-3):
        self.alpha = float(alpha)
        self.weight: np.ndarray | None = None  # (56, S): 55 scaled inputs + bias row

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        a = _design(x)  # (N, 56)
        penalty = self.alpha * len(a) * np.eye(a.shape[1])
        penalty[-1, -1] = 0.0
        self.weight = np.linalg.solve(a.T @ a + penalty, a.T @ y.astype(np.float64)).astype(np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.clip(_design(x) @ self.weight, -1.0, 1.0).astype(np.float32)


class NearestNeighbours:
    """The mean command of the k training expressions closest (Euclidean, scaled inputs) to the target."""

    def __init__(self, neighbours: int = 1):
        self.neighbours = int(neighbours)
        self.x: np.ndarray | None = None  # (N, 55) scaled
        self.y: np.ndarray | None = None  # (N, S)

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x = (x * input_scale()).astype(np.float32)
        self.y = y.astype(np.float32)

    def predict(self, x: np.ndarray, chunk: int = 1024) -> np.ndarray:
        q = (x * input_scale()).astype(np.float32)
        sq = (self.x**2).sum(1)
        out = np.empty((len(q), self.y.shape[1]), np.float32)
        k = min(self.neighbours, len(self.x))
        for s in range(0, len(q), chunk):  # chunks bound the (queries, train) distance table
            d = sq[None] - 2.0 * q[s : s + chunk] @ self.x.T  # |q|^2 omitted: constant per row
            idx = np.argpartition(d, k - 1, axis=1)[:, :k] if k > 1 else d.argmin(1)[:, None]
            out[s : s + chunk] = self.y[idx].mean(1)
        return out


def _design(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x * input_scale(), np.ones((len(x), 1), np.float32)], axis=1).astype(np.float64)
