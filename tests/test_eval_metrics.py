"""Expression error: what it compares (51 active coefficients, head, regions) and what it ignores."""

from __future__ import annotations

import numpy as np
import pytest

from facetwin.agents.evaluation.metrics import BLENDSHAPE_REGIONS, REGIONS, expression_error, region_indices
from facetwin.expression import ACTIVE_BLENDSHAPES, BLENDSHAPE_NAMES, Expression, blendshape_index


def expr(blendshapes=None, head=(0.0, 0.0, 0.0)) -> Expression:
    bs = np.zeros(52, np.float32) if blendshapes is None else np.asarray(blendshapes, np.float32)
    return Expression(blendshapes=bs, head=np.asarray(head, np.float32))


def test_regions_cover_the_51_active_coefficients_exactly_once():
    covered = [i for ix in BLENDSHAPE_REGIONS.values() for i in ix]
    assert sorted(covered) == list(ACTIVE_BLENDSHAPES)
    assert len(covered) == len(set(covered)) == 51
    assert tuple(BLENDSHAPE_REGIONS) == REGIONS and all(BLENDSHAPE_REGIONS.values())


@pytest.mark.parametrize(
    "name, region",
    [("browInnerUp", "brows"), ("eyeBlinkLeft", "eyes"), ("jawOpen", "jaw"), ("mouthSmileRight", "mouth"),
     ("cheekPuff", "cheeks_nose"), ("noseSneerLeft", "cheeks_nose")],
)
def test_coefficients_fall_in_the_region_their_name_says(name, region):
    assert blendshape_index(name) in region_indices()[region]


def test_identical_expressions_have_zero_error():
    rng = np.random.default_rng(0)
    e = expr(rng.uniform(0, 1, 52), head=(5.0, -3.0, 2.0))
    err = expression_error(e, e)
    assert err.blendshape_mae == 0.0 and err.head_error_deg == 0.0
    assert set(err.per_region.values()) == {0.0}


def test_neutral_coefficient_is_ignored_and_one_coefficient_counts_one_51st():
    target = np.zeros(52)
    target[0] = 0.9  # _neutral
    assert expression_error(expr(target), expr()).blendshape_mae == 0.0
    target[blendshape_index("jawOpen")] = 0.51
    err = expression_error(expr(target), expr())
    assert err.blendshape_mae == pytest.approx(0.51 / 51)
    assert err.per_region["jaw"] == pytest.approx(0.51 / len(BLENDSHAPE_REGIONS["jaw"]))
    assert err.per_region["mouth"] == 0.0


def test_head_error_is_the_mean_absolute_angle_difference_and_enters_the_objective():
    err = expression_error(expr(head=(10.0, 0.0, 0.0)), expr(head=(4.0, 3.0, 0.0)))
    assert err.head_error_deg == pytest.approx(3.0)
    assert err.objective(head_weight_per_deg=0.01) == pytest.approx(0.03)


def test_mismatched_vectors_are_a_clear_error():
    with pytest.raises(ValueError, match="52"):
        expression_error(expr(np.zeros(51)), expr())
    assert len(BLENDSHAPE_NAMES) == 52
