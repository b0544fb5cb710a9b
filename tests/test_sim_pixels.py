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


@pytest.fixture(scope="module")
def named_qpos(twin, commands):
    poses = []
    for c in commands:
        twin.reset(readout=False)
        twin.apply(c, readout=False)
        poses.append(twin.data.qpos.copy())
    twin.reset()
    return np.array(poses)


def test_the_litert_engine_reads_every_named_pose_as_the_reference(twin, named_qpos, reference):
    """MediaPipe's networks on LiteRT with its IMAGE-mode crops: the reference's reading, not just within jitter."""
    with PixelReadout(twin.model, engine="litert", bundle=twin.bundle) as readout:
        read = readout.read(named_qpos)
    for name, got, ref in zip(NAMED_POSES, read, reference):
        assert got.face_found and got.image_size == (512, 512), name
        assert _mae(got, ref) < 0.003, f"{name}: coefficient MAE {_mae(got, ref):.4f} against the reference"
        assert np.abs(got.head - ref.head).max() < 0.5, name


def test_the_twins_own_landmarks_crop_the_face_in_every_worker(twin, named_qpos, reference):
    """crop="twin": each render comes with the twin's projected landmarks and the engine reads the face from
    the tracking crop around them, without its detector, in this process and in workers alike. The
    tracking crop is not the detector's, so the reading is near the reference, not on it (docs/camera.md)."""
    poses = named_qpos[:4]
    with PixelReadout(twin.model, engine="litert", crop="twin", bundle=twin.bundle) as local:
        here = local.read(poses)
    with PixelReadout(twin.model, engine="litert", crop="twin", workers=1, bundle=twin.bundle) as pool:
        there = pool.read(poses)
    for name, a, b, ref in zip(NAMED_POSES, here, there, reference):
        assert a.face_found and b.face_found, name
        np.testing.assert_allclose(a.blendshapes, b.blendshapes, atol=1e-6)
        assert _mae(a, ref) < 0.05, f"{name}: coefficient MAE {_mae(a, ref):.4f} against the reference"


def test_the_tracking_crop_drawn_directly_reads_as_the_crop_cut_from_the_render(twin, named_qpos):
    """crop="drawn": the renderer draws the tracking crop at the landmark network's size instead of a 512 px
    frame for the engine to cut it from. A different rasteriser sampling of the same view, so it reads
    within the landmarker's jitter (0.0076 coefficient MAE) of crop="twin", in this process and in workers alike."""
    with PixelReadout(twin.model, engine="litert", crop="twin", bundle=twin.bundle) as cut:
        reference = cut.read(named_qpos)
    with PixelReadout(twin.model, engine="litert", crop="drawn", bundle=twin.bundle) as drawn:
        here = drawn.read(named_qpos)
    with PixelReadout(twin.model, engine="litert", crop="drawn", workers=1, bundle=twin.bundle) as pool:
        there = pool.read(named_qpos[:3])
    errors = [_mae(got, ref) for got, ref in zip(here, reference)]
    assert all(got.face_found and got.image_size == (512, 512) for got in here)
    assert np.mean(errors) < LANDMARKER_JITTER, f"mean coefficient MAE {np.mean(errors):.4f} against the cut crop"
    assert max(errors) < 0.02, f"{NAMED_POSES[int(np.argmax(errors))]}: coefficient MAE {max(errors):.4f}"
    assert max(np.abs(got.head - ref.head).max() for got, ref in zip(here, reference)) < 0.5
    for a, b in zip(here, there):
        np.testing.assert_allclose(a.blendshapes, b.blendshapes, atol=1e-6)


def test_reading_pixels_leaves_the_twin_as_it_was(twin, commands):
    twin.reset(readout=False)
    twin.apply(named_pose("smile", twin.spec), readout=False)
    qpos, command, time = twin.data.qpos.copy(), twin.command.copy(), twin.data.time
    twin.read_pixels(commands[:3])
    np.testing.assert_array_equal(twin.data.qpos, qpos)
    np.testing.assert_array_equal(twin.command, command)
    assert twin.data.time == time
    twin.reset()


def test_worker_processes_read_what_this_process_reads(twin, named_qpos, reference):
    poses = named_qpos[:6]
    with PixelReadout(twin.model, workers=2, bundle=twin.bundle) as readout:
        read = readout.read(poses)  # three poses per worker
        assert readout.times.frames == 6 and len(readout.times.per_worker) == 2
        readout._procs[1].kill()  # a worker that dies (killed, out of memory) is one clear error, not a hang
        readout._procs[1].wait()
        with pytest.raises(ReadoutError, match="a readout worker exited while reading"):
            readout.read(poses)
    for name, got, ref in zip(NAMED_POSES, read, reference):
        assert _mae(got, ref) < LANDMARKER_JITTER, f"{name}: coefficient MAE {_mae(got, ref):.4f} against the reference"


def test_bad_settings_and_poses_get_one_clear_error(twin):
    with pytest.raises(EngineError, match="unknown landmark engine 'dlib'; choose one of mediapipe, litert, torch"):
        PixelReadout(twin.model, engine="dlib")
    with pytest.raises(EngineError, match="CPU only"):
        PixelReadout(twin.model, engine="mediapipe", device="cuda")
    with pytest.raises(EngineError, match="the litert engine runs on the CPU only"):
        PixelReadout(twin.model, engine="litert", device="cuda")
    with pytest.raises(EngineError, match="the mediapipe engine finds the face with its own detector only; crop='twin' needs"):
        PixelReadout(twin.model, engine="mediapipe", crop="twin")
    with pytest.raises(EngineError, match="the torch engine reads whole frames only; crop='drawn' needs engine='litert'"):
        PixelReadout(twin.model, engine="torch", crop="drawn")
    with pytest.raises(ReadoutError, match="unknown crop 'nose'; choose one of detector, twin"):
        PixelReadout(twin.model, engine="litert", crop="nose")
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
