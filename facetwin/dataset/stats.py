"""Per-feature statistics in lerobot's stats.json form: min, max, mean, std and count per element.

Episode stats are computed once, stored in meta/episodes, and the dataset stats are always their
count-weighted aggregate, so a resumed run and an uninterrupted one write the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureStats:
    min: np.ndarray  # feature shape, float64
    max: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    count: int

    def to_json(self) -> dict:
        return {
            "min": self.min.tolist(),
            "max": self.max.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "count": [int(self.count)],
        }

    @classmethod
    def from_json(cls, raw: dict) -> "FeatureStats":
        return cls(
            min=np.asarray(raw["min"], np.float64),
            max=np.asarray(raw["max"], np.float64),
            mean=np.asarray(raw["mean"], np.float64),
            std=np.asarray(raw["std"], np.float64),
            count=int(np.asarray(raw["count"]).reshape(-1)[0]),
        )


def compute(values: np.ndarray, shape: tuple[int, ...]) -> FeatureStats:
    """Stats over the frame axis of `values` (N, *shape); scalar columns (N,) use shape (1,)."""
    v = np.asarray(values, dtype=np.float64).reshape((-1, *shape))
    if len(v) == 0:
        raise ValueError("cannot compute stats of an empty episode")
    return FeatureStats(min=v.min(0), max=v.max(0), mean=v.mean(0), std=v.std(0), count=len(v))


def aggregate(parts: list[FeatureStats]) -> FeatureStats:
    """Combine per-episode stats exactly (parallel variance formula), in the given order."""
    if not parts:
        raise ValueError("no stats to aggregate")
    counts = np.array([p.count for p in parts], dtype=np.float64)
    total = counts.sum()
    w = counts.reshape((-1,) + (1,) * parts[0].mean.ndim) / total
    means = np.stack([p.mean for p in parts])
    mean = (w * means).sum(0)
    var = (w * (np.stack([p.std for p in parts]) ** 2 + (means - mean) ** 2)).sum(0)
    return FeatureStats(
        min=np.min(np.stack([p.min for p in parts]), 0),
        max=np.max(np.stack([p.max for p in parts]), 0),
        mean=mean,
        std=np.sqrt(np.maximum(var, 0.0)),
        count=int(total),
    )


def close_enough(a: FeatureStats, b: FeatureStats, rtol: float = 1e-5) -> list[str]:
    """Names of the stats that differ beyond float32 round-off (relative to the feature's spread)."""
    scale = np.maximum(np.abs(a.max - a.min), 1.0)
    bad = [n for n in ("min", "max", "mean", "std") if not np.all(np.abs(getattr(a, n) - getattr(b, n)) <= rtol * scale)]
    if a.count != b.count:
        bad.append("count")
    return bad
