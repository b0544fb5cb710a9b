"""The oracle through pixels: one CMA-ES generation is one PixelReadout batch, warm-started by the fast oracle,
and what it finds reads better through the camera than the neutral face and than its fast-path start."""

from __future__ import annotations

import numpy as np
import pytest

from facetwin.agents.evaluation.metrics import expression_error
from facetwin.agents.evaluation.oracle import OracleConfig, optimise_through_pixels

POPULATION = 4 + int(3 * np.log(25))  # CMA-ES's default population in 25 dimensions
STARTS = 2  # the fast oracle's answer and the neutral face


@pytest.fixture(scope="module")
def person(faces_dir):
    import cv2

    from facetwin.perception import FacePerceiver

    rgb = cv2.cvtColor(cv2.imread(str(faces_dir / "images" / "cremad_1001_happy.jpg")), cv2.COLOR_BGR2RGB)
    with FacePerceiver(mode="image") as perceiver:
        return perceiver.perceive(rgb)


def test_the_pixel_oracle_reads_batches_of_its_population_and_beats_neutral_and_its_fast_start(
        twin, person, logged_readout):
    readout = logged_readout
    budget = STARTS + 3 * POPULATION
    fast, found = optimise_through_pixels(twin, person, readout, config=OracleConfig(budget=budget, seed=0),
                                          fast_budget=120)
    assert found.readout == "pixels" and found.evaluations == budget
    # the starts in one batch, then one batch per generation, then the winner read again from neutral
    assert readout.sizes[0] == STARTS and readout.sizes[1:4] == [POPULATION] * 3 and readout.sizes[4:] in ([], [1])
    neutral, fast_in_pixels = (expression_error(person, e) for e in twin.read_pixels([np.zeros(twin.spec.n), fast.command]))
    assert found.error.blendshape_mae < 0.7 * neutral.blendshape_mae
    assert found.error.blendshape_mae <= fast_in_pixels.blendshape_mae + 1e-9
    # the reported score is the winner read through pixels from the neutral face
    (again,) = twin.read_pixels(found.command)
    assert expression_error(person, again).blendshape_mae == pytest.approx(found.error.blendshape_mae, abs=1e-6)
