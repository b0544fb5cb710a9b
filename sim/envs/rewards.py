"""The face envs' reward: how far the twin's expression is from the target, plus small motion costs.

Every term is returned on its own (signed as it enters the reward) so trainers can log them and a test
can hold the reward to their sum, as Gymnasium's MuJoCo envs do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from facetwin.expression import ACTIVE_BLENDSHAPES, N_BLENDSHAPES
from facetwin.sim.envs.observation import HEAD_SCALE_DEG

ACTIVE = np.array(ACTIVE_BLENDSHAPES)


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward terms (each term is -weight * cost)."""

    blendshape_weight: float = 1.0  # cost: mean |error| over the 51 coefficients that carry expression
    head_weight: float = 0.2  # cost: mean |yaw, pitch, roll error| / HEAD_SCALE_DEG
    smoothness_weight: float = 0.01  # cost: mean squared change of the applied command
    effort_weight: float = 0.001  # cost: mean squared applied command (distance from neutral)

    def __post_init__(self):
        negative = [k for k, v in asdict(self).items() if not v >= 0]
        if negative:
            raise ValueError(f"reward weights must be >= 0 (a negative weight rewards error): {', '.join(negative)}")


@dataclass(frozen=True)
class RewardTerms:
    """One step's reward, term by term, each already weighted and signed."""

    blendshape: float
    head: float
    smoothness: float
    effort: float
    blendshape_error: float  # unweighted mean |error| over the 51 coefficients (the headline metric)
    head_error_deg: float  # unweighted mean |head angle error|, degrees

    @property
    def total(self) -> float:
        return self.blendshape + self.head + self.smoothness + self.effort

    def as_info(self) -> dict[str, float]:
        return {
            "reward_blendshape": self.blendshape,
            "reward_head": self.head,
            "reward_smoothness": self.smoothness,
            "reward_effort": self.effort,
            "blendshape_error": self.blendshape_error,
            "head_error_deg": self.head_error_deg,
        }


REWARD_KEYS = ("reward_blendshape", "reward_head", "reward_smoothness", "reward_effort")


def expression_errors(target: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """(mean |blendshape error| over the active 51, mean |head error| in degrees) of two 55-vectors."""
    t, c = np.asarray(target, np.float64), np.asarray(current, np.float64)
    return float(np.abs(t[ACTIVE] - c[ACTIVE]).mean()), float(np.abs(t[N_BLENDSHAPES:] - c[N_BLENDSHAPES:]).mean())


def reward_terms(
    config: RewardConfig, target: np.ndarray, current: np.ndarray, command: np.ndarray, previous_command: np.ndarray
) -> RewardTerms:
    bs_err, head_err = expression_errors(target, current)
    change = np.asarray(command, np.float64) - np.asarray(previous_command, np.float64)
    return RewardTerms(
        blendshape=-config.blendshape_weight * bs_err,
        head=-config.head_weight * head_err / HEAD_SCALE_DEG,
        smoothness=-config.smoothness_weight * float(np.mean(change**2)),
        effort=-config.effort_weight * float(np.mean(np.asarray(command, np.float64) ** 2)),
        blendshape_error=bs_err,
        head_error_deg=head_err,
    )
