"""The oracle in lockstep: many faces' searches settled together on one BatchTwin and read as one batch a round,
each face's answer the one its own search finds alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facetwin.agents.evaluation.closed_loop import EvalConfig, EvalError
from facetwin.agents.evaluation.oracle import OracleConfig, optimise, population
from facetwin.agents.evaluation.oracle_lockstep import lockstep_batch, optimise_lockstep
from facetwin.sim.batch import BatchTwin

POPULATION = 13  # CMA-ES's default population in 25 dimensions: 4 + floor(3 ln 25)


PHOTOS = ("cremad_1001_happy.jpg", "max_surprised.jpg", "pyfeat_single_happy.jpg")


@pytest.fixture(scope="module")
def targets(faces_dir):
    """Three people as MediaPipe reads them: a short search from the neutral face improves on each."""
    import cv2

    from facetwin.perception import FacePerceiver

    with FacePerceiver(mode="image") as perceiver:
        return [perceiver.perceive(cv2.cvtColor(cv2.imread(str(faces_dir / "images" / name)), cv2.COLOR_BGR2RGB))
                for name in PHOTOS]


def assert_same_answers(alone, together):
    for a, b in zip(alone, together, strict=True):
        assert b.evaluations == a.evaluations
        assert b.start == a.start
        np.testing.assert_array_equal(b.command, a.command)
        assert b.error.blendshape_mae == a.error.blendshape_mae


def test_the_population_is_cmas_default():
    assert population(25) == POPULATION


def test_each_face_in_lockstep_finds_what_its_search_alone_finds(twin, targets):
    configs = [OracleConfig(budget=60, seed=k) for k in range(len(targets))]
    with BatchTwin(POPULATION, network="litert") as batch:  # one face a group: each search alone, face after face
        alone = [optimise(twin, t, None, c, batch=batch) for t, c in zip(targets, configs)]
    with lockstep_batch(len(targets), twin.spec) as batch:
        assert batch.n == len(targets) * POPULATION
        together = optimise_lockstep(batch, targets, None, configs)
    assert_same_answers(alone, together)
    assert all(np.abs(found.command).max() > 0.1 for found in together)  # each search moved off the neutral face


def test_through_pixels_each_round_is_one_batch_of_every_face_and_the_answers_are_each_faces_own(
        twin, targets, logged_readout):
    faces, starts = targets[:2], [{"policy": np.full(twin.spec.n, 0.1)}] * 2  # a policy's answer and the neutral face
    configs = [OracleConfig(budget=2 + 2 * POPULATION, seed=k) for k in range(2)]
    readout = logged_readout
    with BatchTwin(POPULATION, network="litert") as batch:
        alone = [optimise(twin, t, s, c, batch=batch, readout=readout) for t, s, c in zip(faces, starts, configs)]
        readout.sizes.clear()
    with lockstep_batch(2, twin.spec) as batch:
        together = optimise_lockstep(batch, faces, starts, configs, readout=readout)
    assert_same_answers(alone, together)
    assert all(r.readout == "pixels" for r in together)
    # both faces' starts in one batch, then each generation of both faces in one batch, then the winners' checks
    assert readout.sizes[:3] == [2 * 2, 2 * POPULATION, 2 * POPULATION]
    assert readout.sizes[3:] in ([], [1], [2])


def test_faces_beyond_what_the_batch_holds_go_in_later_groups(twin, targets):
    configs = [OracleConfig(budget=30, seed=k) for k in range(3)]
    with BatchTwin(2 * POPULATION, network="litert") as batch:  # two faces, then the third
        in_groups = optimise_lockstep(batch, targets, None, configs)
    with lockstep_batch(3, twin.spec) as batch:
        together = optimise_lockstep(batch, targets, None, configs)
    assert_same_answers(together, in_groups)


def test_a_mismatched_number_of_starts_or_configs_is_refused(twin, targets):
    with BatchTwin(POPULATION, network="litert") as batch:
        with pytest.raises(ValueError, match="one starts dict and one config per target"):
            optimise_lockstep(batch, targets, [None], None)


def test_eval_on_the_pixel_path_runs_the_faces_in_lockstep_with_each_faces_own_answer(tmp_path, faces_dir):
    from facetwin.app.cli import main

    per_face = {}
    for worlds in ("13", None):  # a BatchTwin of one generation: one face a group; default: both faces in lockstep
        out = tmp_path / f"worlds{worlds}.json"
        extra = ["--oracle-worlds", worlds] if worlds else []
        assert main(["eval", "--policy", "neutral", "--faces", str(faces_dir / "images"), "--out", str(out), "--pixels",
                     "--max-faces", "2", "--oracle-budget", "30", "--oracle-pixel-budget", str(2 + POPULATION),
                     *extra]) == 0
        per_face[worlds] = json.loads(out.read_text())["per_face"]
    alone, together = per_face["13"], per_face[None]
    assert len(together) == 2
    for a, b in zip(alone, together):
        assert b["oracle_command"] == a["oracle_command"]
        assert b["oracle_pixel_evaluations"] == a["oracle_pixel_evaluations"] == 2 + POPULATION
        assert b["oracle_blendshape_mae"] == a["oracle_blendshape_mae"]
        assert b["oracle_blendshape_mae"] <= b["neutral_blendshape_mae"] + 1e-3  # within the two renders' disagreement


def test_an_unknown_readout_engine_is_a_one_line_error():
    with pytest.raises(EvalError, match="unknown readout engine 'nope'; choose one of mediapipe"):
        EvalConfig(pixels=True, readout_engine="nope")


def test_eval_searches_through_the_engine_it_is_given_and_scores_with_mediapipe(tmp_path, faces_dir):
    from facetwin.app.cli import main

    out = tmp_path / "litert.json"
    assert main(["eval", "--policy", "neutral", "--faces", str(faces_dir / "images"), "--out", str(out), "--pixels",
                 "--max-faces", "1", "--oracle-budget", "30", "--oracle-pixel-budget", str(2 + POPULATION),
                 "--readout-engine", "litert"]) == 0
    (face,) = json.loads(out.read_text())["per_face"]
    assert face["oracle_pixel_evaluations"] == 2 + POPULATION
    assert face["oracle_blendshape_mae"] <= face["neutral_blendshape_mae"] + 1e-3
