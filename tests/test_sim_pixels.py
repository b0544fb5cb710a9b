"""The pixel readout (facetwin.sim.pixel_readout): batched renders read by a landmark engine must read
as the reference does, the twin's own render read by MediaPipe one frame at a time."""

import numpy as np
import pytest

from facetwin.motion.poses import NAMED_POSES, named_pose
from facetwin.perception import FacePerceiver
from facetwin.sim.landmark_engines import EngineError
from facetwin.sim.pixel_readout import PixelReadout, ReadoutError

# The landmarker's own jitter: coefficient MAE between reads of one render shifted by 2 px
# (../shared/notes/camera-readout.md, section 1). A faster readout must agree with the reference within it.
LANDMARKER_JITTER = 0.0076


@pytest.fixture(scope="module")
def commands(twin):
    return np.array([named_pose(name, twin.spec) for name in NAMED_POSES])


@pytest.fixture(scope="module")
def reference(twin, commands):
    """`facetwin render`'s image of every named pose, read by MediaPipe's landmarker in IMAGE mode."""
    seen = []
    with FacePerceiver(mode="image") as perceiver:
        for c in commands:
            twin.reset(readout=False)
            twin.apply(c, readout=False)
            seen.append(perceiver.perceive(twin.render(512)))
    twin.reset()
    return seen


def _mae(a, b) -> float:
    return float(np.abs(a.blendshapes - b.blendshapes).mean())


def test_every_named_pose_reads_as_the_reference_within_the_landmarkers_jitter(twin, commands, reference):
    read = twin.read_pixels(commands)  # one batch: settled poses -> tiles -> landmarker
    assert len(read) == len(NAMED_POSES)
    for name, got, ref in zip(NAMED_POSES, read, reference):
        assert got.face_found and got.image_size == (512, 512), name
        assert _mae(got, ref) < LANDMARKER_JITTER, f"{name}: coefficient MAE {_mae(got, ref):.4f} against the reference"
        assert np.abs(got.head - ref.head).max() < 1.0, name
        assert np.median(np.abs(got.landmarks[:, :2] - ref.landmarks[:, :2])) < 1.0, name


def test_reading_pixels_leaves_the_twin_as_it_was(twin, commands):
    twin.reset(readout=False)
    twin.apply(named_pose("smile", twin.spec), readout=False)
    qpos, command, time = twin.data.qpos.copy(), twin.command.copy(), twin.data.time
    twin.read_pixels(commands[:3])
    np.testing.assert_array_equal(twin.data.qpos, qpos)
    np.testing.assert_array_equal(twin.command, command)
    assert twin.data.time == time
    twin.reset()


def test_worker_processes_read_what_this_process_reads(twin, commands, reference):
    poses = []
    for c in commands[:6]:
        twin.reset(readout=False)
        twin.apply(c, readout=False)
        poses.append(twin.data.qpos.copy())
    twin.reset()
    with PixelReadout(twin.model, workers=2, bundle=twin.bundle) as readout:
        read = readout.read(np.array(poses))  # three poses per worker
        assert readout.times.frames == 6 and len(readout.times.per_worker) == 2
        readout._procs[1].kill()  # a worker that dies (killed, out of memory) is one clear error, not a hang
        readout._procs[1].wait()
        with pytest.raises(ReadoutError, match="a readout worker exited while reading"):
            readout.read(np.array(poses))
    for name, got, ref in zip(NAMED_POSES, read, reference):
        assert _mae(got, ref) < LANDMARKER_JITTER, f"{name}: coefficient MAE {_mae(got, ref):.4f} against the reference"


def test_bad_settings_and_poses_get_one_clear_error(twin):
    with pytest.raises(EngineError, match="unknown landmark engine 'dlib'; choose one of mediapipe, torch"):
        PixelReadout(twin.model, engine="dlib")
    with pytest.raises(EngineError, match="CPU only"):
        PixelReadout(twin.model, engine="mediapipe", device="cuda")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(EngineError, match="sees no CUDA device; use device='cpu'"):
            PixelReadout(twin.model, engine="torch", device="cuda")
    readout = twin.pixel_readout()
    with pytest.raises(ReadoutError, match=rf"\(B, {twin.model.nq}\) generalised positions"):
        readout.read(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="expected 25 servo commands"):
        twin.read_pixels(np.zeros((2, 24)))


def test_a_worker_that_cannot_start_says_why(twin, tmp_path):
    missing = tmp_path / "no_such_bundle.task"
    with pytest.raises(ReadoutError, match="a readout worker failed to start: .*no_such_bundle"):
        PixelReadout(twin.model, workers=1, bundle=missing)
