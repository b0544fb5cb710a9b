"""A collection stopped at any moment and resumed holds exactly the rows of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from facetwin.app.cli import main
from facetwin.dataset import check, load_arrays
from facetwin.sim import collector as collector_module
from facetwin.sim.collector import CollectConfig, collect

EPISODES, FRAMES, CHUNK = 8, 20, 40  # a data file commits every 2 episodes
CONFIG = CollectConfig(frames_per_episode=FRAMES, readout="fast")
ROWS = ("action", "state", "expression", "landmarks", "episode_index", "frame_index", "timestamp", "index", "task_index")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "whole"
    collect(out, EPISODES, CONFIG, chunk_frames=CHUNK, progress=False)
    return load_arrays(out)


def assert_same_rows(root, expected):
    report = check(root)
    assert report.ok, report.problems
    assert not report.warnings, report.warnings  # no residue of the interrupted run
    got = load_arrays(root)
    for key in ROWS:
        np.testing.assert_array_equal(getattr(got, key), getattr(expected, key), err_msg=key)


def committed_episodes(root) -> int:
    try:
        return json.loads((root / "meta" / "info.json").read_text())["total_episodes"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_rows(tmp_path, uninterrupted):
    out = tmp_path / "killed"
    argv = ["collect", "--episodes", str(EPISODES), "--frames-per-episode", str(FRAMES), "--readout", "fast",
            "--out", str(out), "--chunk-frames", str(CHUNK), "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "facetwin.app.cli", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while committed_episodes(out) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)  # right after the first commit, with the next chunk being built
    finally:
        proc.wait()
    done = committed_episodes(out)
    assert 2 <= done < EPISODES, f"the run should have been killed mid-way, it had committed {done} episodes"
    # Resuming with only the flags that say where: the settings come from the dataset's record.
    assert main(["collect", "--episodes", str(EPISODES), "--out", str(out), "--chunk-frames", str(CHUNK), "--resume", "--no-progress"]) == 0
    assert_same_rows(out, uninterrupted)


def test_a_failure_mid_episode_keeps_whole_episodes_and_resume_completes_them(tmp_path, uninterrupted, monkeypatch):
    out = tmp_path / "failed"
    real_collect = collector_module.EpisodeCollector.collect

    def fail_at_episode_5(self, episode_index):
        if episode_index == 5:
            raise RuntimeError("injected failure")
        return real_collect(self, episode_index)

    monkeypatch.setattr(collector_module.EpisodeCollector, "collect", fail_at_episode_5)
    with pytest.raises(RuntimeError, match="injected"):
        collect(out, EPISODES, CONFIG, chunk_frames=CHUNK, progress=False)
    assert committed_episodes(out) == 5  # episode 4 was buffered mid-chunk and committed on the way out
    monkeypatch.undo()
    result = collect(out, EPISODES, CONFIG, chunk_frames=CHUNK, resume=True, progress=False)
    assert (result.episodes_added, result.episodes_total) == (EPISODES - 5, EPISODES)
    assert_same_rows(out, uninterrupted)


def test_resuming_a_complete_dataset_adds_nothing(tmp_path):
    out = tmp_path / "done"
    collect(out, 1, CollectConfig(frames_per_episode=5, readout="fast"), progress=False)
    result = collect(out, 1, CollectConfig(frames_per_episode=5, readout="fast"), resume=True, progress=False)
    assert (result.episodes_added, result.episodes_total) == (0, 1)
