"""How far a reached expression is from a target one: the numbers every mimicry score is built from.

The 51 non-neutral blendshape coefficients (MediaPipe's ``_neutral`` is a near-constant bias) are
compared by mean absolute error, grouped into face regions by name prefix, and the head pose by the
mean absolute yaw/pitch/roll difference in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetwin.expression import ACTIVE_BLENDSHAPES, BLENDSHAPE_NAMES, Expression

# Region of each coefficient by name prefix, checked in order; one place for the whole project.
REGION_PREFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("brows", ("brow",)),
    ("eyes", ("eye",)),
    ("mouth", ("mouth",)),
    ("jaw", ("jaw",)),
    ("cheeks_nose", ("cheek", "nose")),
)
REGIONS: tuple[str, ...] = tuple(name for name, _ in REGION_PREFIXES)
# One degree of head error costs as much as this much blendshape MAE in the oracle's objective: 10 deg
# weighs like 0.05 MAE, enough to turn the neck towards the person without trading away expressions.
HEAD_WEIGHT_PER_DEG = 0.005


def _region_of(name: str) -> str:
    for region, prefixes in REGION_PREFIXES:
        if name.startswith(prefixes):
            return region
    raise ValueError(f"blendshape {name!r} matches no region prefix in REGION_PREFIXES; add it there")


def region_indices() -> dict[str, tuple[int, ...]]:
    """Region -> indices into the 52 coefficients; together the 51 active ones, each exactly once."""
    groups: dict[str, list[int]] = {r: [] for r in REGIONS}
    for i in ACTIVE_BLENDSHAPES:
        groups[_region_of(BLENDSHAPE_NAMES[i])].append(i)
    return {r: tuple(ix) for r, ix in groups.items()}


BLENDSHAPE_REGIONS: dict[str, tuple[int, ...]] = region_indices()
_ACTIVE = np.array(ACTIVE_BLENDSHAPES)


@dataclass
class ExpressionError:
    """Target vs reached: blendshape MAE (51 active coefficients), head error and per-region MAE."""

    blendshape_mae: float
    head_error_deg: float  # mean |difference| over yaw, pitch, roll
    per_region: dict[str, float]

    def objective(self, head_weight_per_deg: float = HEAD_WEIGHT_PER_DEG) -> float:
        """The single number the oracle minimises."""
        return self.blendshape_mae + head_weight_per_deg * self.head_error_deg

    def to_dict(self) -> dict:
        return {"blendshape_mae": self.blendshape_mae, "head_error_deg": self.head_error_deg, "per_region": self.per_region}


def blendshape_mae(target: np.ndarray, reached: np.ndarray) -> float:
    """MAE over the 51 active coefficients of two (52,) vectors."""
    diff = np.abs(np.asarray(target, np.float64)[_ACTIVE] - np.asarray(reached, np.float64)[_ACTIVE])
    return float(diff.mean())


def expression_error(target: Expression, reached: Expression) -> ExpressionError:
    t = np.asarray(target.blendshapes, np.float64)
    r = np.asarray(reached.blendshapes, np.float64)
    if t.shape != (len(BLENDSHAPE_NAMES),) or r.shape != t.shape:
        raise ValueError(f"expected two ({len(BLENDSHAPE_NAMES)},) blendshape vectors, got {t.shape} and {r.shape}")
    diff = np.abs(t - r)
    return ExpressionError(
        blendshape_mae=float(diff[_ACTIVE].mean()),
        head_error_deg=float(np.abs(np.asarray(target.head, np.float64) - np.asarray(reached.head, np.float64)).mean()),
        per_region={region: float(diff[list(ix)].mean()) for region, ix in BLENDSHAPE_REGIONS.items()},
    )
