"""How well collected expressions cover the expressions people make.

For every human frame, the distance to the nearest collected sample over MediaPipe's 51 expressive
blendshape coefficients (`_neutral` left out): a dataset covers a human expression when some command
in it made the face show something that close. Reported as the fraction of human frames within a few
distance thresholds and the mean nearest distance; datasets are compared at equal sample counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facetwin.expression import ACTIVE_BLENDSHAPES, BLENDSHAPE_NAMES

if TYPE_CHECKING:
    from facetwin.human_faces import HumanFaces

METRICS = ("mean_abs", "l2")
# mean_abs: mean |difference| per coefficient; 0.05 is a coefficient off by 0.05 on average.
DEFAULT_THRESHOLDS = {"mean_abs": (0.02, 0.03, 0.05, 0.08), "l2": (0.3, 0.5, 0.8, 1.2)}
ACTIVE_NAMES = tuple(BLENDSHAPE_NAMES[i] for i in ACTIVE_BLENDSHAPES)
_BLOCK_ELEMENTS = 1 << 22  # bound on the (humans x samples x 51) temporary of one block, in floats


def active(blendshapes: np.ndarray) -> np.ndarray:
    """(N, 52) coefficients -> (N, 51) without `_neutral`."""
    return np.asarray(blendshapes, np.float32)[:, list(ACTIVE_BLENDSHAPES)]


def nearest_distances(queries: np.ndarray, samples: np.ndarray, metric: str = "mean_abs") -> np.ndarray:
    """(M,) distance from each query row to its nearest sample row (both (., D))."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    q = np.asarray(queries, np.float32)
    s = np.asarray(samples, np.float32)
    if len(s) == 0:
        raise ValueError("no samples to compare against")
    best = np.full(len(q), np.inf, np.float32)
    block = max(1, _BLOCK_ELEMENTS // max(1, len(q) * q.shape[1]))
    for i in range(0, len(s), block):
        part = s[i : i + block]
        if metric == "mean_abs":
            d = np.abs(q[:, None, :] - part[None, :, :]).mean(axis=2)
        else:
            sq = (q * q).sum(1)[:, None] + (part * part).sum(1)[None, :] - 2.0 * q @ part.T
            d = np.sqrt(np.maximum(sq, 0.0))
        np.minimum(best, d.min(axis=1), out=best)
    return best


def subsample(rows: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """`n` rows chosen at random without replacement (kept in order); all rows when n >= len(rows)."""
    if n >= len(rows):
        return rows
    pick = np.sort(np.random.default_rng(seed).choice(len(rows), size=n, replace=False))
    return rows[pick]


@dataclass
class DatasetCoverage:
    name: str
    n_samples: int
    thresholds: tuple[float, ...]
    nearest: np.ndarray  # (M,) per human frame
    coefficients: np.ndarray  # (n_samples, 51) the samples compared

    @property
    def fraction_within(self) -> np.ndarray:
        return np.array([(self.nearest <= t).mean() for t in self.thresholds])

    @property
    def mean_nearest(self) -> float:
        return float(self.nearest.mean())

    @property
    def median_nearest(self) -> float:
        return float(np.median(self.nearest))

    def gaps(self, human: np.ndarray, top: int = 5) -> list[tuple[str, float, float]]:
        """Coefficients people push furthest beyond what the dataset reaches: (name, human p95, dataset p99)."""
        h95 = np.percentile(human, 95, axis=0)
        d99 = np.percentile(self.coefficients, 99, axis=0)
        order = np.argsort(-(h95 - d99))[:top]
        return [(ACTIVE_NAMES[i], float(h95[i]), float(d99[i])) for i in order if h95[i] > d99[i]]


@dataclass
class CoverageReport:
    metric: str
    thresholds: tuple[float, ...]
    humans: HumanFaces
    datasets: list[DatasetCoverage] = field(default_factory=list)

    @property
    def human_coefficients(self) -> np.ndarray:
        return active(self.humans.blendshapes)

    def table(self) -> str:
        h = self.humans
        lines = [
            f"human frames: {len(h)} with a face from {h.n_files} files ({h.frames_without_face} without a face left out)",
            f"distance: {self.metric} over the 51 expressive blendshape coefficients; "
            "'within d' = share of human frames whose nearest sample is at most d away",
            "",
        ]
        head = f"{'dataset':<28} {'samples':>8} " + " ".join(f"{'<=' + format(t, 'g'):>7}" for t in self.thresholds)
        head += f" {'mean':>7} {'median':>7}"
        lines += [head, "-" * len(head)]
        for d in self.datasets:
            row = f"{d.name[-28:]:<28} {d.n_samples:>8} " + " ".join(f"{f:>7.1%}" for f in d.fraction_within)
            lines.append(row + f" {d.mean_nearest:>7.4f} {d.median_nearest:>7.4f}")
        for d in self.datasets:
            gaps = d.gaps(self.human_coefficients)
            if gaps:
                lines.append(f"{d.name}: widest gaps (human p95 > dataset p99): " + ", ".join(f"{n} {a:.2f}>{b:.2f}" for n, a, b in gaps))
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "metric": self.metric,
            "thresholds": list(self.thresholds),
            "human_frames": len(self.humans),
            "human_files": self.humans.n_files,
            "datasets": [
                {
                    "name": d.name,
                    "samples": d.n_samples,
                    "fraction_within": dict(zip(map(str, d.thresholds), map(float, d.fraction_within))),
                    "mean_nearest": d.mean_nearest,
                    "median_nearest": d.median_nearest,
                }
                for d in self.datasets
            ],
        }


def coverage(
    humans: HumanFaces,
    datasets: dict[str, np.ndarray],
    *,
    metric: str = "mean_abs",
    thresholds: tuple[float, ...] | None = None,
    samples: int | None = None,
    seed: int = 0,
) -> CoverageReport:
    """Compare datasets ((N, 52) blendshapes each, by name) with human faces.

    samples: compare every dataset at this many samples (random subset); default the smallest
    dataset's size, so that a bigger dataset does not win by size alone.
    """
    if not datasets:
        raise ValueError("give at least one dataset")
    thresholds = tuple(thresholds or DEFAULT_THRESHOLDS[metric])
    n = samples or min(len(b) for b in datasets.values())
    human = active(humans.blendshapes)
    report = CoverageReport(metric, thresholds, humans)
    for name, blend in datasets.items():
        coeffs = subsample(active(blend), n, seed)
        report.datasets.append(DatasetCoverage(name, len(coeffs), thresholds, nearest_distances(human, coeffs, metric), coeffs))
    return report


def plot(report: CoverageReport, path: str | Path) -> Path:
    """Coverage-vs-threshold curves and per-coefficient distributions (human vs each dataset) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(15, 11), layout="constrained")
    grid = fig.add_gridspec(1, 2, width_ratios=(1, 1.6))
    ax = fig.add_subplot(grid[0])
    top = max(max(report.thresholds) * 2, max(float(np.percentile(d.nearest, 99)) for d in report.datasets))
    ds = np.linspace(0.0, top, 200)
    for d in report.datasets:
        ax.plot(ds, [(d.nearest <= x).mean() for x in ds], label=f"{d.name} ({d.n_samples} samples)")
    for t in report.thresholds:
        ax.axvline(t, color="0.85", lw=0.8, zorder=0)
    ax.set(xlabel=f"distance to nearest sample ({report.metric})", ylabel="share of human frames covered",
           title=f"coverage of {len(report.humans)} human frames", ylim=(0, 1.01), xlim=(0, top))
    ax.legend(loc="lower right")

    ax = fig.add_subplot(grid[1])
    series = [("human faces", report.human_coefficients)] + [(d.name, d.coefficients) for d in report.datasets]
    y = np.arange(len(ACTIVE_NAMES))
    height = 0.8 / len(series)
    for k, (name, values) in enumerate(series):
        lo, mid, hi = np.percentile(values, (5, 50, 95), axis=0)
        pos = y + (k - (len(series) - 1) / 2) * height
        ax.barh(pos, hi - lo, left=lo, height=height, alpha=0.45, label=name)
        ax.plot(mid, pos, "|", color="k", ms=4)
    ax.set_yticks(y, ACTIVE_NAMES, fontsize=7)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="coefficient, 5-95% range (median marked)")
    ax.set_title("blendshape coefficients: people vs collected", pad=28)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(series), fontsize=8, frameon=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
