"""Coverage of human expressions by collected datasets: distances, the report and `facetwin coverage`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facetwin.app.cli import main
from facetwin.coverage import active, coverage, nearest_distances, subsample
from facetwin.dataset import load_arrays
from facetwin.human_faces import load_human_faces
from facetwin.sim.collector import CollectConfig, collect

FACE_IMAGES = ("cremad_1001_happy.jpg", "cremad_1001_neutral.jpg", "max_surprised.jpg")


@pytest.fixture(scope="module")
def faces(tmp_path_factory, faces_dir):
    """A small faces folder: three photos of ../shared/faces, linked (never copied)."""
    root = tmp_path_factory.mktemp("faces")
    (root / "images").mkdir()
    for name in FACE_IMAGES:
        (root / "images" / name).symlink_to(faces_dir / "images" / name)
    return root


@pytest.fixture(scope="module")
def humans(faces, tmp_path_factory):
    return load_human_faces(faces, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def twin_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("cov") / "expert"
    collect(out, 2, CollectConfig(frames_per_episode=15, readout="fast"), progress=False)
    return out


@pytest.mark.parametrize("metric", ["mean_abs", "l2"])
def test_nearest_distances_match_brute_force(metric):
    rng = np.random.default_rng(0)
    q, s = rng.random((7, 51)), rng.random((300, 51))
    diff = q[:, None, :] - s[None, :, :]
    brute = np.abs(diff).mean(2) if metric == "mean_abs" else np.sqrt((diff**2).sum(2))
    np.testing.assert_allclose(nearest_distances(q, s, metric), brute.min(1), rtol=1e-5, atol=1e-6)


def test_subsample_is_deterministic_and_without_repeats():
    rows = np.arange(100)[:, None]
    a, b = subsample(rows, 30, seed=3), subsample(rows, 30, seed=3)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 30 and np.all(np.diff(a[:, 0]) > 0)


def test_every_photo_gives_one_human_frame(humans):
    assert len(humans) == len(FACE_IMAGES) and humans.n_files == len(FACE_IMAGES)
    assert humans.blendshapes.shape == (len(FACE_IMAGES), 52) and humans.frames_without_face == 0


def test_perceived_faces_are_cached_until_the_folder_changes(faces_dir, tmp_path):
    folder, cache = tmp_path / "faces", tmp_path / "cache"
    folder.mkdir()
    (folder / FACE_IMAGES[0]).symlink_to(faces_dir / "images" / FACE_IMAGES[0])
    first = load_human_faces(folder, cache_dir=cache)
    (path,) = cache.glob("*.npz")
    with np.load(path) as z:
        planted = {k: z[k] for k in z.files}
    planted["blendshapes"] = planted["blendshapes"] + 0.5  # a marker only a cache read can return
    np.savez(path, **planted)
    np.testing.assert_allclose(load_human_faces(folder, cache_dir=cache).blendshapes, first.blendshapes + 0.5)
    (folder / FACE_IMAGES[1]).symlink_to(faces_dir / "images" / FACE_IMAGES[1])
    again = load_human_faces(folder, cache_dir=cache)  # another photo: perceived anew
    assert len(again) == 2
    np.testing.assert_array_equal(again.blendshapes[:1], first.blendshapes)


def test_a_dataset_holding_the_human_expressions_covers_them_exactly(humans, twin_dataset):
    twin = load_arrays(twin_dataset, landmarks=False).expression[:, :52]
    report = coverage(humans, {"humans": humans.blendshapes, "twin": twin}, samples=len(twin))
    by_name = {d.name: d for d in report.datasets}
    assert by_name["humans"].mean_nearest == 0.0 and np.all(by_name["humans"].fraction_within == 1.0)
    assert by_name["twin"].mean_nearest > 0.0
    assert np.all(np.diff(by_name["twin"].fraction_within) >= 0), "coverage grows with the threshold"
    assert active(twin).shape == (len(twin), 51)


def test_datasets_are_compared_at_equal_sample_counts(humans, twin_dataset):
    twin = load_arrays(twin_dataset, landmarks=False).expression[:, :52]
    report = coverage(humans, {"all": twin, "half": twin[::2]})
    assert [d.n_samples for d in report.datasets] == [len(twin[::2])] * 2


def test_cli_writes_table_json_and_plot(faces, twin_dataset, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["coverage", "--data", str(twin_dataset), "--faces", str(faces), "--out", str(out), "--cache", str(tmp_path / "cache")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "human frames: 3 with a face from 3 files" in printed
    result = json.loads((out / "coverage.json").read_text())
    (ds,) = result["datasets"]
    assert ds["samples"] == 30 and 0 < ds["mean_nearest"] < 1
    fractions = list(ds["fraction_within"].values())
    assert all(0 <= f <= 1 for f in fractions) and fractions == sorted(fractions)
    assert (out / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "coverage.txt").read_text().startswith("human frames")


def test_cli_names_a_missing_faces_folder(twin_dataset, tmp_path, capsys):
    assert main(["coverage", "--data", str(twin_dataset), "--faces", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
