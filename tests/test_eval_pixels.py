"""`facetwin eval --pixels`: the headline in pixels with the fast path's figures beside it, the neutral face as a
baseline row in every report, and the oracle's budget stated."""

from __future__ import annotations

import json

import pytest

from facetwin.app.cli import main


def run_eval(tmp_path, faces_dir, capsys, *extra):
    out = tmp_path / "report.json"
    rc = main(["eval", "--policy", "neutral", "--faces", str(faces_dir / "images"), "--out", str(out),
               "--max-faces", "1", "--oracle-budget", "60", *extra])
    assert rc == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def test_a_pixel_report_leads_with_pixels_beside_the_fast_path_with_a_neutral_row(tmp_path, faces_dir, capsys):
    data, printed = run_eval(tmp_path, faces_dir, capsys, "--pixels", "--oracle-pixel-budget", "15")
    rows = {row["row"]: row for row in data["table"]}
    assert list(rows) == ["policy", "oracle", "neutral"] and all(set(r) == {"row", "pixels", "fast"} for r in rows.values())
    # the neutral policy is the neutral face: its row equals the policy's in both readouts
    assert rows["neutral"]["pixels"] == pytest.approx(rows["policy"]["pixels"], abs=1e-9)
    assert rows["neutral"]["fast"] == pytest.approx(rows["policy"]["fast"], abs=1e-9)
    assert data["neutral_blendshape_mae"] == rows["neutral"]["pixels"]
    assert rows["oracle"]["pixels"] == data["oracle_blendshape_mae"] < rows["neutral"]["pixels"]
    (face,) = data["per_face"]
    assert face["oracle_pixel_evaluations"] == 15 and face["oracle_evaluations"] == 60
    assert face["fast_blendshape_mae"] != pytest.approx(face["blendshape_mae"], abs=1e-4)  # two readouts, two figures
    assert data["oracle_budget"] == 60 and data["oracle_pixel_budget"] == 15
    assert "pixels MAE" in printed and "fast MAE" in printed
    assert "60 fast-path evaluations/face, then 15 through pixels" in printed


def test_a_fast_report_has_the_neutral_row_and_one_column(tmp_path, faces_dir, capsys):
    data, printed = run_eval(tmp_path, faces_dir, capsys)
    assert [row["row"] for row in data["table"]] == ["policy", "oracle", "neutral"]
    assert all(set(row) == {"row", "fast"} for row in data["table"])
    assert data["oracle_pixel_budget"] == 0 and data["neutral_blendshape_mae"] == pytest.approx(data["blendshape_mae"], abs=1e-9)
    assert "fast MAE" in printed and "pixels MAE" not in printed and "(60 evaluations/face)" in printed
