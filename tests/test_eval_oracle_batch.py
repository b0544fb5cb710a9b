"""The oracle with a BatchTwin: each CMA-ES generation settles at once, one world per candidate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facetwin.agents.evaluation.metrics import expression_error
from facetwin.agents.evaluation.oracle import OracleConfig, optimise, reach
from facetwin.sim.batch import BatchTwin

POPULATION = 13  # CMA-ES's default population in 25 dimensions: 4 + floor(3 ln 25)


@pytest.fixture(scope="module")
def target(twin):
    """An expression the twin itself makes (brows up, jaw half open), so the optimum has MAE ~0."""
    command = np.zeros(twin.spec.n)
    for name, value in [("brow_inner_right", 0.8), ("brow_inner_left", 0.8), ("jaw_open", 0.5)]:
        command[twin.spec.index(name)] = value
    return reach(twin, command).expression


@pytest.mark.parametrize("worlds", [POPULATION, 5])  # a generation in one batch, and in three parts
def test_a_batched_search_finds_what_the_serial_one_finds(twin, target, worlds):
    neutral = expression_error(target, reach(twin, np.zeros(twin.spec.n)).expression)
    config = OracleConfig(budget=150, seed=1)
    serial = optimise(twin, target, config=config)
    with BatchTwin(worlds, network="litert") as batch:
        batched = optimise(twin, target, config=config, batch=batch)
    assert batched.evaluations == serial.evaluations == 150
    assert batched.error.blendshape_mae < 0.5 * neutral.blendshape_mae
    # The two searches see the same settled faces up to the settle tolerance, so they end close together.
    assert batched.error.blendshape_mae == pytest.approx(serial.error.blendshape_mae, abs=0.01)
    # As for the serial search, the reported score is the winner measured again from the neutral face.
    again = expression_error(target, reach(twin, batched.command).expression)
    assert again.blendshape_mae == pytest.approx(batched.error.blendshape_mae, abs=1e-6)


def test_eval_settles_each_oracle_generation_on_a_batched_twin_when_asked(tmp_path, faces_dir):
    from facetwin.app.cli import main

    reports = {}
    for worlds in (0, 13):
        out = tmp_path / f"worlds{worlds}.json"
        assert main(["eval", "--policy", "neutral", "--faces", str(faces_dir / "images"), "--out", str(out),
                     "--max-faces", "1", "--oracle-budget", "52", "--oracle-worlds", str(worlds)]) == 0
        reports[worlds] = json.loads(out.read_text())["per_face"][0]
    serial, batched = reports[0], reports[13]
    assert batched["oracle_evaluations"] == serial["oracle_evaluations"] == 52
    assert batched["oracle_blendshape_mae"] < batched["blendshape_mae"]  # the search improved on the neutral face
    assert batched["oracle_blendshape_mae"] == pytest.approx(serial["oracle_blendshape_mae"], abs=0.01)


def test_a_negative_number_of_oracle_worlds_is_a_one_line_error(tmp_path, faces_dir, capsys):
    from facetwin.app.cli import main

    assert main(["eval", "--policy", "neutral", "--faces", str(faces_dir / "images"), "--out", str(tmp_path / "r.json"),
                 "--oracle-worlds", "-2"]) != 0
    assert "oracle_worlds" in capsys.readouterr().err
