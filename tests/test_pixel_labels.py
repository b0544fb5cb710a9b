"""Pixel labels (`facetwin collect --readout pixels`): datasets and runs record their readout, readouts never mix,
and frames the landmarker sees no face in are dropped and counted."""

import json

import numpy as np
import pytest

from facetwin.dataset import DatasetError, load_arrays, read_info
from facetwin.expression import Expression

FRAMES = 6
EPISODES = 2  # validation splits by episode


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """The same episodes (expert, seed 0) collected through both readouts."""
    from facetwin.sim.collector import CollectConfig, collect

    root = tmp_path_factory.mktemp("labels")
    out = {}
    for readout in ("fast", "pixels"):
        config = CollectConfig(frames_per_episode=FRAMES, readout=readout)
        out[readout] = (root / readout, collect(root / readout, EPISODES, config, progress=False))
    return out


def test_a_pixel_dataset_records_its_readout_and_holds_what_the_camera_sees(datasets):
    fast_root, _ = datasets["fast"]
    pixel_root, result = datasets["pixels"]
    assert read_info(pixel_root).readout == "pixels" and read_info(fast_root).readout == "fast"
    assert json.loads((pixel_root / "meta" / "info.json").read_text())["facetwin"]["readout"] == "pixels"
    fast, pixels = load_arrays(fast_root), load_arrays(pixel_root)
    assert result.frames_without_face == 0 and len(pixels.action) == EPISODES * FRAMES
    np.testing.assert_array_equal(pixels.action, fast.action)  # the readout changes the labels, never the commands
    # the camera reads the same faces differently from the fast path (docs/camera.md), never as zeros
    gap = np.abs(pixels.expression[:, :52] - fast.expression[:, :52]).mean()
    assert gap > 0.005 and np.all(pixels.expression[:, :52].max(axis=1) > 0.05)


def test_resuming_a_dataset_with_the_other_readout_is_one_clear_error(datasets, tmp_path):
    from facetwin.sim.collector import CollectConfig, collect

    fast_root, _ = datasets["fast"]
    with pytest.raises(DatasetError, match="readout: dataset 'fast', now 'pixels'"):
        collect(fast_root, EPISODES + 1, CollectConfig(frames_per_episode=FRAMES, readout="pixels"), resume=True, progress=False)


def test_the_writer_refuses_to_continue_a_dataset_with_another_readout(datasets):
    from facetwin.dataset import DatasetWriter

    pixel_root, _ = datasets["pixels"]
    with pytest.raises(DatasetError, match="readout: dataset has 'pixels', writer wants 'fast'"):
        DatasetWriter(pixel_root, resume=True, readout="fast")


def test_a_run_records_its_training_data_readout_and_another_runs_forward_model_must_match(datasets, tmp_path):
    from facetwin.agents.training.checkpoint import RunConfig
    from facetwin.agents.training.config import TrainConfig
    from facetwin.agents.training.minibatch import FitSettings
    from facetwin.agents.training.train import train_from_dataset
    from facetwin.dataset.layout import same_readout

    pixel_root, _ = datasets["pixels"]
    train_from_dataset(pixel_root, TrainConfig(model="linear", objective="supervised", fit=FitSettings(progress=False)),
                       out_dir=tmp_path / "run")
    readout = RunConfig.read(tmp_path / "run").readout
    assert readout == "pixels"
    with pytest.raises(DatasetError, match="pixels readout but dataset .* through the fast readout"):
        same_readout("run", readout, "dataset x", read_info(datasets["fast"][0]).readout)


def test_frames_without_a_face_are_dropped_never_written_as_zeros(twin):
    from facetwin.dataset import EpisodeFrames
    from facetwin.sim.pixel_labels import PIXEL_SIZE, relabel

    twin.reset(readout=False)
    poses = np.repeat(twin.data.qpos[None].copy(), 3, axis=0)
    poses[1, 0] = np.pi  # neck yaw half a turn: the camera sees the back of the head
    frames = EpisodeFrames(action=np.arange(3 * 25, dtype=np.float32).reshape(3, 25), state=np.zeros((3, 25), np.float32),
                           expression=np.zeros((3, 55), np.float32), landmarks=np.zeros((3, 478, 3), np.float32))
    kept = relabel(frames, poses, twin.pixel_readout(size=PIXEL_SIZE))
    assert len(kept) == 2
    np.testing.assert_array_equal(kept.action, frames.action[[0, 2]])
    assert np.all(kept.expression[:, :52].max(axis=1) > 0.0) and np.all(kept.landmarks[:, :, :2] > 0)


def test_pixel_confirmed_neighbours_read_no_worse_than_the_nearest_one_and_refuse_fast_labels(datasets, twin):
    from facetwin.agents.evaluation.metrics import expression_error
    from facetwin.agents.evaluation.pixel_confirm import ConfirmError, pixel_confirmed_policy

    pixel_root, _ = datasets["pixels"]
    readout = twin.pixel_readout("mediapipe")
    target = load_arrays(pixel_root).expression[-1] + 0.02  # near a recorded label, not on it
    person = Expression(target[:52], target[52:])
    nearest, confirmed = (pixel_confirmed_policy(pixel_root, twin, readout, k=k) for k in (1, 6))
    errors = [expression_error(person, twin.read_pixels(policy(target))[0]).blendshape_mae for policy in (nearest, confirmed)]
    assert errors[1] <= errors[0] + 1e-9
    with pytest.raises(ConfirmError, match="collect one with `facetwin collect --readout pixels`"):
        pixel_confirmed_policy(datasets["fast"][0], twin, readout)
