"""`facetwin collect --backend sim`: the dataset it writes, and that it depends only on the seed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from facetwin.app.cli import main
from facetwin.dataset import check, load_arrays, read_episodes, read_info
from facetwin.motion import ExpertConfig
from facetwin.sim.collector import CollectConfig, collect, frame_steps, read_collection_config

EPISODES, FRAMES = 3, 20
ROWS = ("action", "state", "expression", "landmarks", "episode_index", "frame_index", "timestamp", "index", "task_index")


def same_rows(a, b) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ROWS)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The CLI's dataset: 3 expert episodes of 20 frames, seed 0, one process, read on the fast path."""
    out = tmp_path_factory.mktemp("collect") / "ref"
    argv = ["collect", "--backend", "sim", "--episodes", str(EPISODES), "--frames-per-episode", str(FRAMES), "--readout", "fast",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    return out


def test_cli_dataset_passes_check_and_reads_back_with_pyarrow(reference):
    report = check(reference)
    assert report.ok, report.problems
    assert (report.n_episodes, report.n_frames) == (EPISODES, EPISODES * FRAMES)
    table = pq.read_table(next((reference / "data").rglob("*.parquet")))
    assert table.num_rows == EPISODES * FRAMES
    action = np.asarray(table.column("action").to_pylist(), dtype=np.float32)
    assert action.shape == (EPISODES * FRAMES, 25)
    assert np.abs(action).max() <= 1.0 and action.std(axis=0).max() > 0.05  # commands in range, and moving


def test_rows_are_observations_of_a_moving_face_with_consistent_indices(reference):
    a = load_arrays(reference)
    assert a.expression.shape == (EPISODES * FRAMES, 55) and a.landmarks.shape == (EPISODES * FRAMES, 478, 3)
    blend = a.expression[:, 1:52]
    assert (blend.std(axis=0) > 1e-3).sum() >= 20, "most expressive coefficients should vary over the episodes"
    assert np.all((blend >= 0) & (blend <= 1))
    np.testing.assert_array_equal(a.episode_index, np.repeat(np.arange(EPISODES), FRAMES))
    np.testing.assert_array_equal(a.frame_index, np.tile(np.arange(FRAMES), EPISODES))
    np.testing.assert_array_equal(a.index, np.arange(EPISODES * FRAMES))
    np.testing.assert_allclose(a.timestamp, a.frame_index / 30.0, atol=1e-6)
    # The servos track the commands with a lag, not a teleport: close, but not equal.
    gap = np.abs(a.state - a.action)
    assert 0 < gap.mean() < 0.1
    assert [e.length for e in read_episodes(reference, read_info(reference))] == [FRAMES] * EPISODES


def test_collection_settings_are_recorded_with_the_dataset(reference):
    assert read_collection_config(reference) == CollectConfig("expert", 0, FRAMES, 30, None, "fast")
    assert "expert motion strategy (seed 0)" in (reference / "README.md").read_text()


def test_same_seed_gives_identical_rows_and_another_seed_does_not(reference, tmp_path):
    config = CollectConfig(frames_per_episode=FRAMES, readout="fast")
    collect(tmp_path / "again", EPISODES, config, progress=False)
    collect(tmp_path / "seed1", EPISODES, CollectConfig(seed=1, frames_per_episode=FRAMES, readout="fast"), progress=False)
    ref = load_arrays(reference)
    assert same_rows(load_arrays(tmp_path / "again"), ref)
    assert not np.array_equal(load_arrays(tmp_path / "seed1").action, ref.action)


def test_two_workers_write_the_rows_of_one(reference, tmp_path):
    result = collect(tmp_path / "two", EPISODES, CollectConfig(frames_per_episode=FRAMES, readout="fast"), workers=2, progress=False)
    assert result.episodes_added == EPISODES
    assert same_rows(load_arrays(tmp_path / "two"), load_arrays(reference))


def test_babble_strategy_collects_too(tmp_path):
    collect(tmp_path / "babble", 1, CollectConfig(strategy="babble", frames_per_episode=10, readout="fast"), progress=False)
    assert check(tmp_path / "babble").ok
    assert read_collection_config(tmp_path / "babble").strategy == "babble"


def test_frames_end_on_the_frame_clock_even_when_steps_do_not_divide_it():
    steps = frame_steps(30, 30, 0.002)  # 16.67 physics steps per frame
    assert set(steps.tolist()) == {16, 17}
    assert steps.sum() == 500  # exactly 1 s of physics for 1 s of frames


def test_real_backend_points_at_the_real_collector(tmp_path, capsys):
    assert main(["collect", "--backend", "real", "--episodes", "1", "--out", str(tmp_path / "r")]) == 2
    assert "facetwin real collect" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_existing_dataset_needs_resume_and_resume_needs_the_same_settings(reference, capsys):
    argv = ["collect", "--episodes", "4", "--frames-per-episode", str(FRAMES), "--readout", "fast", "--out", str(reference),
            "--no-progress"]
    assert main(argv) == 2
    assert "resume" in capsys.readouterr().err
    assert main(argv + ["--resume", "--seed", "7"]) == 2
    err = capsys.readouterr().err
    assert "seed: dataset 0, now 7" in err
    assert load_arrays(reference, landmarks=False).info.total_episodes == EPISODES  # untouched


def test_a_resume_refuses_episodes_played_by_other_motion_settings(reference, tmp_path, capsys):
    copy = tmp_path / "older"
    shutil.copytree(reference, copy)
    record = json.loads((copy / "meta" / "collection.json").read_text())
    assert record["motion"]["full_prob"] == ExpertConfig().full_prob  # the strategy's settings are recorded
    record["motion"]["full_prob"] = 0.0  # as an earlier version of the expert played them
    (copy / "meta" / "collection.json").write_text(json.dumps(record))
    argv = ["collect", "--episodes", "4", "--frames-per-episode", str(FRAMES), "--readout", "fast", "--out", str(copy),
            "--no-progress", "--resume"]
    assert main(argv) == 2
    assert "other settings than this version's (full_prob)" in capsys.readouterr().err
    assert load_arrays(copy, landmarks=False).info.total_episodes == EPISODES
