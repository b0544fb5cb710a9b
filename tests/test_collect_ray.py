"""`collect(engine=Engine(ray=...))`: episodes computed by Ray tasks make the single-process run's dataset;
`facetwin eval --ray`: the oracle searches as Ray tasks give the same report.

A local Ray cluster with two worker slots runs the tasks. One test kills a worker while it computes
an episode: with no retries left the run stops, keeping every episode before the lost one, and a
resume finishes the dataset with nothing lost or duplicated, row for row equal to one process's run.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from facetwin.dataset import load_arrays
from facetwin.sim.collector import CollectConfig, CollectionInterrupted, Engine, collect

ray = pytest.importorskip("ray", reason="Ray is the ray extra: pip install 'facetwin[ray]'")

CONFIG = CollectConfig(frames_per_episode=60, seed=5, readout="fast")
EPISODES = 10
TASK_TITLE = b"ray::collect_group"  # Ray names a worker process after the task it is running


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    root = tmp_path_factory.mktemp("single") / "ds"
    collect(root, EPISODES, CONFIG, progress=False)
    return load_arrays(root)


def assert_same_rows(root: Path, expected) -> None:
    got = load_arrays(root)
    np.testing.assert_array_equal(got.episode_index, expected.episode_index)
    np.testing.assert_array_equal(got.frame_index, expected.frame_index)
    for name in ("action", "state", "expression", "landmarks"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


def committed_episodes(root: Path) -> int:
    try:
        return json.loads((root / "meta" / "info.json").read_text())["total_episodes"]
    except (OSError, ValueError, KeyError):
        return 0


def kill_a_busy_worker(root: Path, killed: list[int], stop: threading.Event) -> None:
    """Once an episode is committed, SIGKILL one worker process that is computing an episode."""
    while not stop.is_set() and not killed:
        if committed_episodes(root) >= 1:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    title = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if title.startswith(TASK_TITLE):
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
                    return
        time.sleep(0.005)


def test_an_address_that_does_not_answer_is_one_clear_error(tmp_path):
    from facetwin.sim.ray_collect import connect

    assert not ray.is_initialized()  # this test runs before the module's cluster starts
    with pytest.raises(ValueError, match=r"'127\.0\.0\.1:9' does not answer.*ray start --head"):
        connect("127.0.0.1:9", timeout_s=0.5)
    with pytest.raises(ValueError, match="no address"):
        connect("ray://:77")


def test_ray_tasks_write_the_single_process_rows(cluster, single_process, tmp_path):
    result = collect(tmp_path / "ds", EPISODES, CONFIG, progress=False, engine=Engine(ray="auto"))
    assert result.episodes_added == EPISODES
    assert_same_rows(tmp_path / "ds", single_process)


def test_a_killed_worker_loses_nothing_after_resume(cluster, single_process, tmp_path):
    root = tmp_path / "ds"
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=kill_a_busy_worker, args=(root, killed, stop), daemon=True)
    killer.start()
    try:
        with pytest.raises(CollectionInterrupted, match="--resume"):
            collect(root, EPISODES, CONFIG, progress=False, chunk_frames=CONFIG.frames_per_episode,
                    engine=Engine(ray="auto", ray_retries=0))
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was caught computing an episode"
    kept = committed_episodes(root)
    assert 1 <= kept < EPISODES
    result = collect(root, EPISODES, CONFIG, resume=True, progress=False, chunk_frames=CONFIG.frames_per_episode,
                     engine=Engine(ray="auto"))
    assert result.episodes_added == EPISODES - kept
    assert_same_rows(root, single_process)


def test_eval_runs_the_oracle_searches_as_ray_tasks_with_the_same_report(cluster, faces_dir, tmp_path):
    """Each search starts from the neutral face, so where it runs cannot change what it finds."""
    from facetwin.app.cli import main

    reports = {}
    for name, extra in (("here", []), ("ray", ["--ray", "auto"])):
        out = tmp_path / f"{name}.json"
        argv = ["eval", "--policy", "neutral", "--faces", str(faces_dir / "images"), "--out", str(out),
                "--max-faces", "2", "--oracle-budget", "20", *extra]
        assert main(argv) == 0
        reports[name] = json.loads(out.read_text())["per_face"]
    for here, there in zip(reports["here"], reports["ray"], strict=True):
        for key in ("oracle_command", "oracle_blendshape_mae", "oracle_evaluations", "blendshape_mae"):
            assert here[key] == there[key], key


def test_the_cli_names_a_ray_address_that_does_not_answer(tmp_path, capsys, monkeypatch):
    from facetwin.app.cli import main
    from facetwin.sim import ray_collect

    monkeypatch.setattr(ray_collect, "CONNECT_TIMEOUT_S", 0.5)
    if ray.is_initialized():  # connect() keeps an existing connection: this checks a fresh process's path
        ray.shutdown()
    assert main(["collect", "--ray", "127.0.0.1:9", "--episodes", "1", "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not answer" in err[0] and "--ray local" in err[0]
    assert not (tmp_path / "ds").exists()
