"""`collect(engine=Engine("batch"))`: episodes stepped together on a BatchTwin give the sim backend's rows.

The physics is the same float64 MuJoCo and, on the CPU, the coefficients come from the same LiteRT
network, so every row equals the sim backend's after the dataset's float32 rounding (measured: equal
to the bit). The tolerances only let a last-bit difference of a float32 landmark through.
"""

from __future__ import annotations

import numpy as np
import pytest

from facetwin.dataset import load_arrays
from facetwin.sim.collector import CollectConfig, Engine, collect

CONFIG = CollectConfig(frames_per_episode=20, seed=3, readout="fast")
EPISODES = 4
BLENDSHAPE_TOL = 1e-6
LANDMARK_TOL_PX = 1e-4


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("collect")
    collect(root / "sim", EPISODES, CONFIG, progress=False)
    # 3 worlds for 4 episodes: one full batch and a short one that leaves a world idle.
    collect(root / "batch", EPISODES, CONFIG, progress=False, engine=Engine("batch", n_worlds=3))
    return load_arrays(root / "sim"), load_arrays(root / "batch")


def test_batch_rows_equal_the_sim_rows(both):
    sim, batch = both
    np.testing.assert_array_equal(batch.episode_index, sim.episode_index)
    np.testing.assert_array_equal(batch.frame_index, sim.frame_index)
    np.testing.assert_array_equal(batch.action, sim.action)
    np.testing.assert_allclose(batch.state, sim.state, atol=1e-6, rtol=0)
    np.testing.assert_allclose(batch.landmarks, sim.landmarks, atol=LANDMARK_TOL_PX, rtol=0)
    np.testing.assert_allclose(batch.expression[:, :52], sim.expression[:, :52], atol=BLENDSHAPE_TOL, rtol=0)
    np.testing.assert_allclose(batch.expression[:, 52:], sim.expression[:, 52:], atol=1e-5, rtol=0)


def test_a_batch_resume_continues_where_the_sim_run_stopped(both, tmp_path):
    sim, _ = both
    collect(tmp_path / "ds", 2, CONFIG, progress=False)
    result = collect(tmp_path / "ds", EPISODES, CONFIG, resume=True, progress=False, engine=Engine("batch", n_worlds=4))
    assert result.episodes_added == EPISODES - 2
    got = load_arrays(tmp_path / "ds")
    np.testing.assert_array_equal(got.episode_index, sim.episode_index)
    np.testing.assert_allclose(got.expression, sim.expression, atol=BLENDSHAPE_TOL, rtol=0)


def test_what_the_batch_backend_cannot_do_is_named(tmp_path):
    with pytest.raises(ValueError, match="fast path only.*sim backend"):
        collect(tmp_path / "r", 1, CollectConfig(render_size=64, readout="fast"), progress=False, engine=Engine("batch"))
    with pytest.raises(ValueError, match="batch backend already uses every core"):
        collect(tmp_path / "w", 2, CONFIG, workers=2, progress=False, engine=Engine("batch"))
    with pytest.raises(ValueError, match="at least 1"):
        Engine("batch", n_worlds=0)
    with pytest.raises(ValueError, match="sim, batch"):
        Engine("gpu")


def test_the_cli_collects_with_the_batch_backend(both, tmp_path, capsys):
    from facetwin.app.cli import main

    sim, _ = both
    out = tmp_path / "cli"
    argv = ["collect", "--backend", "batch", "--batch-worlds", "1", "--episodes", "1", "--frames-per-episode",
            str(CONFIG.frames_per_episode), "--seed", str(CONFIG.seed), "--readout", "fast", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    got = load_arrays(out)
    np.testing.assert_allclose(got.expression, sim.expression[: len(got.expression)], atol=BLENDSHAPE_TOL, rtol=0)
    capsys.readouterr()
    assert main(["collect", "--batch-worlds", "8", "--episodes", "1", "--out", str(tmp_path / "x")]) == 2
    assert "add --backend batch" in capsys.readouterr().err
    assert main(["collect", "--backend", "batch", "--workers", "2", "--episodes", "1", "--out", str(tmp_path / "y")]) == 2
    assert "every core" in capsys.readouterr().err
    # the batch backend reads the fast path only; collect's default is the camera's
    assert main(["collect", "--backend", "batch", "--episodes", "1", "--out", str(tmp_path / "z")]) == 2
    assert "add --readout fast" in capsys.readouterr().err and not (tmp_path / "z").exists()
