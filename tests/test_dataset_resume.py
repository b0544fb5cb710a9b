"""A dataset run killed at any moment and resumed ends with exactly the rows of an uninterrupted run.

The producer runs in a child process that SIGKILLs itself at a chosen point: in the middle of an
episode, or inside the commit of a data file (after the data parquet, after meta/episodes, just
before info.json is renamed into place). The parent then resumes with the same seed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from facetwin.dataset import DatasetWriter, EpisodeFrames, check, load_arrays
from facetwin.dataset.video import count_frames

N_EPISODES = 12
PRODUCER = r'''
import os, signal, sys
from pathlib import Path
import numpy as np
from facetwin.dataset import DatasetWriter, atomic

N_EPISODES = 12

def frames(i):
    """Episode i depends on its index only: the contract that makes resumes exact."""
    rng = np.random.default_rng(1000 + i)
    t = int(rng.integers(5, 30))
    for _ in range(t):
        yield dict(
            action=rng.uniform(-1, 1, 25),
            state=rng.uniform(-1, 1, 25),
            expression=rng.uniform(0, 1, 55),
            landmarks=rng.uniform(0, 256, (478, 3)),
            render=rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
        )

def run(root, kill=None):
    frame_count = 0
    commits = {}
    if kill and kill.startswith("commit:"):
        _, needle, nth, when = kill.split(":")
        real = atomic.commit
        def commit(tmp, target):
            if needle in str(target):
                commits[needle] = commits.get(needle, 0) + 1
                if commits[needle] == int(nth) and when == "before":
                    os.kill(os.getpid(), signal.SIGKILL)
                real(tmp, target)
                if commits[needle] == int(nth) and when == "after":
                    os.kill(os.getpid(), signal.SIGKILL)
            else:
                real(tmp, target)
        atomic.commit = commit
    with DatasetWriter(root, fps=20, resume=True, chunk_frames=40, render_size=(16, 16)) as w:
        for i in range(w.next_episode_index, N_EPISODES):
            for f in frames(i):
                w.add_frame(f["action"], f["state"], f["expression"], landmarks=f["landmarks"], render=f["render"])
                frame_count += 1
                if kill == f"frame:{frame_count}":
                    os.kill(os.getpid(), signal.SIGKILL)
            w.end_episode()

if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
'''


def _produce(script: Path, root: Path, kill: str | None = None) -> int:
    args = [sys.executable, str(script), str(root)] + ([kill] if kill else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=120).returncode


@pytest.fixture(scope="module")
def producer() -> dict:
    ns: dict = {}
    exec(compile(PRODUCER, "producer", "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("producer") / "producer.py"
    path.write_text(PRODUCER)
    return path


@pytest.fixture(scope="module")
def reference(script, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reference") / "ds"
    assert _produce(script, root) == 0
    return root


def _data_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("file-*.*"))


def _all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def assert_same_dataset(got: Path, want: Path) -> None:
    a, b = load_arrays(got), load_arrays(want)
    for name in ("action", "state", "expression", "landmarks", "episode_index", "frame_index", "timestamp", "index", "task_index"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert _all_files(got) == _all_files(want)  # same file boundaries; no temporary or orphan file left over
    assert json.loads((got / "meta/info.json").read_text()) == json.loads((want / "meta/info.json").read_text())
    assert json.loads((got / "meta/stats.json").read_text()) == json.loads((want / "meta/stats.json").read_text())
    for rel in _data_files(want):
        if rel.startswith("meta/episodes/"):
            assert pq.read_table(got / rel).equals(pq.read_table(want / rel)), rel
        if rel.endswith(".mp4"):
            assert count_frames(got / rel) == count_frames(want / rel), rel


def test_reference_run_is_complete_and_valid(reference):
    arrays = load_arrays(reference)
    assert arrays.info.total_episodes == N_EPISODES
    assert np.array_equal(np.unique(arrays.episode_index), np.arange(N_EPISODES))
    report = check(reference)
    assert report.ok, report.problems
    assert report.warnings == []
    assert len(_data_files(reference)) >= 8  # several data files and their videos: kills land mid-run


@pytest.mark.parametrize(
    "kill",
    [
        "frame:3",  # before anything was committed
        "frame:95",  # mid-episode, with uncommitted complete episodes buffered
        "commit:data/chunk-000/file-001:1:after",  # data file in place, meta not yet
        "commit:meta/episodes:2:after",  # an episodes file lists episodes info.json does not
        "commit:stats.json:3:after",  # stats count uncommitted episodes
        "commit:info.json:2:before",  # everything but the commit record
    ],
)
def test_killed_run_resumes_to_identical_dataset(script, producer, reference, tmp_path, kill):
    root = tmp_path / "ds"
    assert _produce(script, root, kill) == -9  # really killed by SIGKILL at that point
    producer["run"](root)  # resume (in this process: same code, one interpreter start less)
    assert_same_dataset(root, reference)
    assert check(root).ok


def test_resuming_repairs_meta_of_an_interrupted_commit(script, tmp_path):
    """Killed after stats.json but before info.json: the stats count episodes that do not exist yet."""
    root = tmp_path / "ds"
    assert _produce(script, root, "commit:stats.json:3:after") == -9
    stale = check(root)
    assert any("stats.json" in p and "resume" in p for p in stale.problems)
    assert any("not referenced" in w for w in stale.warnings)
    DatasetWriter(root, fps=20, resume=True, chunk_frames=40, render_size=(16, 16)).close()  # no new episodes
    repaired = check(root)
    assert repaired.ok and repaired.warnings == [], (repaired.problems, repaired.warnings)
    assert repaired.n_episodes == load_arrays(root).info.total_episodes > 0


def test_producer_exception_mid_episode_loses_and_duplicates_nothing(producer, reference, tmp_path):
    """In-process failure: the context manager commits complete episodes, the partial one is redone."""
    ns = producer
    root = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="producer failed"):
        with DatasetWriter(root, fps=20, chunk_frames=40, render_size=(16, 16)) as w:
            for i in range(N_EPISODES):
                for k, f in enumerate(ns["frames"](i)):
                    if i == 5 and k == 2:
                        raise RuntimeError("producer failed")
                    w.add_frame(f["action"], f["state"], f["expression"], landmarks=f["landmarks"], render=f["render"])
                w.end_episode()
    assert load_arrays(root).info.total_episodes == 5
    with DatasetWriter(root, fps=20, resume=True, chunk_frames=40, render_size=(16, 16)) as w:
        assert w.next_episode_index == 5
        for i in range(w.next_episode_index, N_EPISODES):
            for f in ns["frames"](i):
                w.add_frame(f["action"], f["state"], f["expression"], landmarks=f["landmarks"], render=f["render"])
            w.end_episode()
    a, b = load_arrays(root), load_arrays(reference)
    for name in ("action", "state", "expression", "landmarks", "episode_index", "frame_index", "index"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert check(root).ok


def test_add_episode_matches_add_frame(producer, reference, tmp_path):
    ns = producer
    root = tmp_path / "ds"
    with DatasetWriter(root, fps=20, chunk_frames=40, render_size=(16, 16)) as w:
        for i in range(N_EPISODES):
            fs = list(ns["frames"](i))
            w.add_episode(
                EpisodeFrames(
                    action=np.stack([f["action"] for f in fs]),
                    state=np.stack([f["state"] for f in fs]),
                    expression=np.stack([f["expression"] for f in fs]),
                    landmarks=np.stack([f["landmarks"] for f in fs]),
                    renders=np.stack([f["render"] for f in fs]),
                )
            )
    assert_same_dataset(root, reference)
