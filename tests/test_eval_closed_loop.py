"""`facetwin eval`: the closed loop over human faces, its report, its contact sheet and its errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from facetwin.agents.policies.loader import PolicyLoadError, load_policy
from facetwin.agents.evaluation.closed_loop import EvalConfig, EvalError, evaluate
from facetwin.agents.evaluation.metrics import REGIONS
from facetwin.agents.evaluation.oracle import feasible
from facetwin.agents.evaluation.sheet import TILE, SheetTile, compose_sheet, crop_face, sheet_shape
from facetwin.app.cli import main

REPORT_KEYS = {
    "policy", "n_faces", "blendshape_mae", "oracle_blendshape_mae", "ratio_to_oracle", "per_face", "latency_ms",
    "machine", "head_error_deg", "per_region",
}
FACE_KEYS = {"path", "blendshape_mae", "oracle_blendshape_mae", "head_error_deg", "per_region", "ratio_to_oracle"}


@pytest.fixture(scope="module")
def neutral_run(tmp_path_factory, faces_dir):
    """`facetwin eval` with the neutral policy on the first 2 shared photos and a tiny oracle."""
    out = tmp_path_factory.mktemp("eval")
    report, sheet = out / "report.json", out / "sheet.png"
    rc = main([
        "eval", "--policy", "neutral", "--faces", str(faces_dir / "images"), "--out", str(report),
        "--sheet", str(sheet), "--max-faces", "2", "--oracle-budget", "40",
    ])
    assert rc == 0
    return json.loads(report.read_text()), sheet


def test_report_has_every_key_for_the_run_and_each_face(neutral_run):
    data, _ = neutral_run
    assert REPORT_KEYS <= data.keys()
    assert data["policy"] == "neutral" and data["n_faces"] == len(data["per_face"]) == 2
    for face in data["per_face"]:
        assert FACE_KEYS <= face.keys()
        assert face["path"].endswith(".jpg")
        assert set(face["per_region"]) == set(REGIONS)
    assert {"perceive_human", "policy", "twin_settle", "twin_readout", "oracle"} == set(data["latency_ms"])
    assert data["blendshape_mae"] == pytest.approx(np.mean([f["blendshape_mae"] for f in data["per_face"]]))


def test_oracle_is_never_worse_than_the_neutral_policy(neutral_run):
    data, _ = neutral_run
    for face in data["per_face"]:
        assert face["oracle_blendshape_mae"] <= face["blendshape_mae"] + 1e-9
    assert data["oracle_blendshape_mae"] <= data["blendshape_mae"]
    assert data["ratio_to_oracle"] == pytest.approx(data["blendshape_mae"] / data["oracle_blendshape_mae"])
    assert data["ratio_to_oracle"] >= 1.0


def test_sheet_has_a_row_per_face_of_human_policy_oracle_tiles(neutral_run):
    _, sheet = neutral_run
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[:2] == sheet_shape(2, 3) == (2 * TILE, 3 * TILE)
    # Each tile holds a picture, not a blank: the human photo and two twin renders.
    tiles = [img[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] for r in range(2) for c in range(3)]
    assert all(t[40:].std() > 10 for t in tiles)


def test_an_earlier_oracle_carries_over_as_a_warm_start(neutral_run, tmp_path, faces_dir):
    """With --oracle-from, a new run's oracle is never worse than the reference report's, even on 3 evaluations."""
    before, _ = neutral_run
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps(before))
    after = tmp_path / "after.json"
    rc = main([
        "eval", "--policy", "neutral", "--faces", str(faces_dir / "images"), "--out", str(after),
        "--max-faces", "2", "--oracle-budget", "3", "--oracle-from", str(reference),
    ])
    assert rc == 0
    for old, new in zip(before["per_face"], json.loads(after.read_text())["per_face"]):
        assert new["path"] == old["path"]
        assert new["oracle_blendshape_mae"] <= old["oracle_blendshape_mae"] + 1e-9


def test_a_missing_policy_directory_is_a_one_line_error(tmp_path, faces_dir, capsys):
    missing = tmp_path / "no_such_run"
    rc = main(["eval", "--policy", str(missing), "--faces", str(faces_dir / "images"), "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(missing) in err and "does not exist" in err and "facetwin train" in err
    assert not (tmp_path / "r.json").exists()


def test_refining_through_the_teacher_without_refine_steps_is_a_one_line_error(tmp_path, faces_dir, capsys):
    rc = main(["eval", "--policy", "neutral", "--faces", str(faces_dir / "images"), "--out", str(tmp_path / "r.json"),
               "--refine-through", "teacher"])
    assert rc == 2 and "--refine STEPS" in capsys.readouterr().err


def test_a_folder_that_is_no_training_run_names_facetwin_train(tmp_path):
    with pytest.raises(PolicyLoadError, match="facetwin train"):
        load_policy(tmp_path)


def test_a_trained_run_directory_drives_the_loop(tmp_path, twin, faces_dir):
    """A ridge policy fitted to 150 settled twin pairs, saved as a run, is loaded and evaluated by path."""
    from facetwin.agents.training.config import TrainConfig
    from facetwin.agents.training.train import train_from_arrays

    rng = np.random.default_rng(0)
    commands = rng.uniform(-0.6, 0.6, (150, twin.spec.n))
    expressions = np.array([twin.apply(feasible(c, twin)).expression.vector for c in commands])
    train_from_arrays(expressions, commands, TrainConfig(model="linear"), out_dir=tmp_path / "run")
    policy = load_policy(tmp_path / "run")
    assert policy.kind == "linear"
    report = evaluate(policy, faces_dir / "images", twin=twin, config=EvalConfig(oracle_budget=0, max_faces=1))
    (face,) = report.results
    assert np.abs(face.command).max() <= 1.0 and np.any(face.command != 0)
    assert report.to_dict()["policy"] == str(tmp_path / "run")


def test_a_file_is_not_a_run_directory(tmp_path):
    bogus = tmp_path / "model.safetensors"
    bogus.write_bytes(b"")
    with pytest.raises(PolicyLoadError, match="not a run directory"):
        load_policy(bogus)


def test_pixel_path_reperceives_the_rendered_twin(twin, faces_dir):
    report = evaluate(
        load_policy("neutral"), faces_dir / "images", twin=twin,
        config=EvalConfig(pixels=True, oracle_budget=0, max_faces=1),
    )
    (face,) = report.results
    assert face.twin_face_found
    assert {"twin_render", "twin_perceive"} <= face.latency_ms.keys() and "twin_readout" not in face.latency_ms
    assert report.to_dict()["ratio_to_oracle"] is None  # no oracle was asked for


def test_no_faces_and_bad_settings_are_clear_errors(tmp_path, twin):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((64, 64, 3), 127, np.uint8))
    with pytest.raises(EvalError, match="no face was found"):
        evaluate(load_policy("neutral"), blank, twin=twin, config=EvalConfig(oracle_budget=0))
    with pytest.raises(EvalError, match="max_faces"):
        EvalConfig(max_faces=0)


def test_face_crop_is_a_square_tile_centred_on_the_landmarks():
    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[100:150, 300:350] = 255  # a bright "face" near the right edge
    box = np.array([[300, 100, 0], [349, 149, 0]], np.float32)
    tile = crop_face(rgb, box, size=64, margin=0.0)
    assert tile.shape == (64, 64, 3) and tile.mean() > 200
    with pytest.raises(ValueError, match="same number of tiles"):
        compose_sheet([[SheetTile(tile, "a")], [SheetTile(tile, "b"), SheetTile(tile, "c")]], tile=64)
