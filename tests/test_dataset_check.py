"""`check` and `facetwin dataset check` catch damaged or inconsistent datasets and say where."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from facetwin.app.cli import main
from facetwin.dataset import DatasetWriter, EpisodeFrames, check

DATA0 = "data/chunk-000/file-000.parquet"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine") / "ds"
    with DatasetWriter(root, fps=30, chunk_frames=25) as w:
        for i in range(4):
            rng = np.random.default_rng(i)
            t = 10
            expression = np.zeros((t, 55))
            expression[:, 25] = rng.uniform(0, 1, t)  # jawOpen moves, everything else is constant
            action = rng.uniform(-1, 1, (t, 25))
            action[:, 0] = 0.0  # one servo never moves
            w.add_episode(EpisodeFrames(action, action, expression, landmarks=rng.uniform(0, 9, (t, 478, 3))))
    return root


@pytest.fixture
def ds(pristine, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(pristine, root)
    return root


def _edit_column(path, name, edit):
    table = pq.read_table(path)
    values = np.array(table.column(name).to_pylist())
    edit(values)
    field = table.schema.field(name)
    arr = pa.array(values.tolist(), type=field.type)
    pq.write_table(table.set_column(table.column_names.index(name), field, arr), path)


def _edit_info(root, edit):
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    edit(info)
    path.write_text(json.dumps(info))


def test_pristine_dataset_passes_and_is_summarised(pristine):
    report = check(pristine)
    assert report.ok, report.problems
    assert (report.n_episodes, report.n_frames) == (4, 40)
    assert report.non_constant_expressions == ("jawOpen",)
    assert report.idle_servos[0] == "eye_right_yaw" and len(report.idle_servos) == 1
    assert report.ranges["action"].max.max() <= 1.0


def test_out_of_range_action_is_named_by_row_and_servo(ds):
    def edit(v):
        v[13, 3] = 1.7

    _edit_column(ds / DATA0, "action", edit)
    problems = " ".join(check(ds).problems)
    assert "outside [-1, 1]" in problems and "row 13" in problems and "episode 1, frame 3" in problems
    assert "stats.json 'action'" in problems  # the stored stats no longer describe the data


def test_duplicated_frame_index_is_a_problem(ds):
    def edit(v):
        v[5] = 4

    _edit_column(ds / DATA0, "frame_index", edit)
    assert any("'frame_index' row 5 is 4, expected 5" in p for p in check(ds).problems)


def test_missing_data_file_is_a_problem(ds):
    (ds / "data/chunk-000/file-001.parquet").unlink()
    assert any("file-001.parquet is missing" in p for p in check(ds).problems)


def test_truncated_parquet_is_a_problem(ds):
    path = ds / DATA0
    path.write_bytes(path.read_bytes()[:200])
    assert any("not a readable parquet file" in p for p in check(ds).problems)


def test_totals_disagreeing_with_episodes_is_a_problem(ds):
    _edit_info(ds, lambda info: info.update(total_frames=41))
    assert any("total_frames is 41" in p for p in check(ds).problems)


def test_feature_shape_disagreeing_with_files_is_a_problem(ds):
    _edit_info(ds, lambda info: info["features"]["observation.landmarks"].update(shape=[468, 3]))
    problems = check(ds).problems
    assert any("observation.landmarks" in p and "[468, 3]" in p for p in problems)


def test_servo_names_from_another_spec_are_a_problem(ds):
    _edit_info(ds, lambda info: info["features"]["action"]["names"].reverse())
    assert any("'action' names differ from face spec" in p for p in check(ds).problems)


def test_leftovers_of_an_interrupted_write_are_warnings(ds):
    (ds / "data/chunk-000/.file-002.tmp-123.parquet").write_bytes(b"partial")
    shutil.copy(ds / DATA0, ds / "data/chunk-000/file-007.parquet")
    report = check(ds)
    assert report.ok
    assert any("interrupted write" in w for w in report.warnings)
    assert any("file-007.parquet: not referenced" in w for w in report.warnings)


def test_not_a_dataset(tmp_path):
    report = check(tmp_path)
    assert not report.ok and "not a LeRobot v3.0 dataset" in report.problems[0]


def test_cli_check_exit_codes_and_messages(pristine, ds, tmp_path, capsys):
    assert main(["dataset", "check", str(pristine)]) == 0
    out = capsys.readouterr().out
    assert "episodes  4" in out and "frames    40" in out and "non-constant expressions: 1/55: jawOpen" in out
    assert "servos never moved: eye_right_yaw" in out and out.rstrip().endswith("OK")

    (ds / "meta/stats.json").write_text(json.dumps({}))
    assert main(["dataset", "check", str(ds)]) == 1
    out = capsys.readouterr().out
    assert "problem: meta/stats.json lacks 'action'" in out and "FAILED" in out

    assert main(["dataset", "check", str(tmp_path / "nowhere")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["dataset", "info", str(pristine)]) == 0
    assert "episodes  4, frames 40" in capsys.readouterr().out
