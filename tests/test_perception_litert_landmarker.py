"""MediaPipe's Face Landmarker on LiteRT with NumPy and OpenCV crops: MediaPipe's IMAGE-mode reading.

The whole pipeline is held to MediaPipe's landmarker on the shared photos and on renders of the twin
(landmarks within 1 px at 512 px, coefficients within 0.003 MAE, per frame), the warp to the torch
landmarker's (which reproduces OpenCV's fixed-point warp) bit for bit, and the tracking crop to
MediaPipe's VIDEO mode; the tracking crop from the twin's own projected landmarks is held as close to
IMAGE mode as MediaPipe's own tracking crop is.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facetwin import landmarker_bundle
from facetwin.app.bench.landmarker import mediapipe_read, photo_frames, twin_frames
from facetwin.landmarker_bundle import LandmarkerModelError
from facetwin.motion.poses import NAMED_POSES, named_pose
from facetwin.perception import FacePerceiver, PerceptionError
from facetwin.perception.litert_landmarker import LiteRTFaceLandmarker, warp
from facetwin.perception.torch_landmarker import constants as C
from facetwin.perception.torch_landmarker.crops import Crops
from facetwin.perception.torch_landmarker.warp import warp as torch_warp
from facetwin.sim.render import BatchRenderer



@pytest.fixture(scope="module")
def landmarker():
    return LiteRTFaceLandmarker()


@pytest.fixture(scope="module")
def photos(faces_dir):
    return photo_frames(faces_dir)


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


@pytest.mark.parametrize("border", ["zero", "replicate"])
def test_the_warp_is_the_torch_landmarkers(photos, border, torch_one_thread):
    """cv2.remap on fixed-point maps (cv2.convertMaps) is the torch warp's arithmetic, which is OpenCV's
    fixed-point bilinear warp as MediaPipe runs it: rotated crops larger and smaller than the frame,
    partly outside it, up- and downscaled. Bit for bit but where NumPy's and torch's float32 sine or
    cosine (one unit in the last place apart) put a source position on either side of a 1/64-pixel
    rounding boundary: one level, in a handful of values."""
    rng = np.random.default_rng(3)
    off = total = 0
    for frame in photos[:3]:
        height, width, _ = frame.shape
        n = 6
        crops = Crops(
            center=(rng.uniform(0.2, 0.8, (n, 2)) * (width, height)).astype(np.float32),
            size=np.repeat(rng.uniform(40, 1.3 * max(width, height), (n, 1)), 2, axis=1).astype(np.float32),
            rotation=rng.uniform(-np.pi, np.pi, n).astype(np.float32),
        )
        got = warp(frame, crops, 64, border)
        expected = torch_warp(torch.from_numpy(frame[None]), torch.zeros(n, dtype=torch.long), crops.to("cpu"), 64, border)
        diff = np.abs(got.astype(np.int16) - expected.numpy())
        assert diff.max() <= 1
        off, total = off + int((diff > 0).sum()), total + diff.size
    assert off <= 1e-4 * total, f"{off} of {total} values differ"


def test_matches_mediapipe_image_mode_on_the_shared_photos(landmarker, photos, reads_like_mediapipe):
    got = landmarker.detect(photos)  # frames of several sizes
    reference = mediapipe_read(photos)
    assert reads_like_mediapipe(reference, got).head_deg_max <= 0.1
    for ref, res in zip(reference, got):
        np.testing.assert_allclose(res.transformation_matrix, ref.extra["transformation_matrix"], atol=5e-3)
        np.testing.assert_allclose(res.landmarks_px()[:, 2], ref.landmarks[:, 2], atol=0.5)


def test_matches_mediapipe_on_renders_of_the_twin(landmarker, twin, reads_like_mediapipe):
    """Every named pose and 30 random commands (the 500-render figure is in docs/camera.md)."""
    frames = twin_frames(twin, n_random=30, seed=0)
    reads_like_mediapipe(mediapipe_read(frames), landmarker.detect(np.stack(frames)))


def test_the_tracking_crop_is_mediapipes(landmarker, photos):
    """MediaPipe's VIDEO mode reads a second frame from the crop its first frame's landmarks give (1000 s
    apart, so its landmark smoothing passes the new frame through); ``track`` from the same landmarks
    reads what it reads."""
    chosen = photos[:3]
    first = mediapipe_read(chosen)
    tracked = landmarker.track(chosen, [e.landmarks[:, :2] / e.image_size for e in first])
    for image, result in zip(chosen, tracked):
        with FacePerceiver(mode="video", max_faces=1) as video:
            video.perceive(image, 1000.0)
            second = video.perceive(image, 2000.0)
        assert np.abs(second.landmarks[:, :2] - result.landmarks_px()[:, :2]).max() < 0.1
        assert _mae(second.blendshapes, result.blendshapes) < 0.001


def test_the_twins_own_landmarks_place_the_crop_as_well_as_mediapipes_tracking_does(landmarker, twin):
    """The tracking crop from the twin's projected landmarks (no detector) against IMAGE mode (the
    detector's crop). Neither tracking crop is the detector's, so both read a little off IMAGE mode
    (figures in docs/camera.md); the twin's landmarks must place it about as well as MediaPipe's own
    landmarks of the same render do (its VIDEO mode's crop), for every named pose."""
    qpos = []
    for name in NAMED_POSES:
        twin.reset(readout=False)
        twin.apply(named_pose(name, twin.spec), readout=False)
        qpos.append(twin.data.qpos.copy())
    twin.reset()
    with BatchRenderer(twin.model, 512) as renderer:
        images, projected = renderer.render_with_landmarks(np.array(qpos))
    image_mode = landmarker.detect(images)
    own = landmarker.track(images, image_mode)
    from_twin = landmarker.track(images, projected / 512)
    assert all(r.face_found for r in from_twin)
    twin_mae = [_mae(t.blendshapes, i.blendshapes) for t, i in zip(from_twin, image_mode)]
    own_mae = [_mae(o.blendshapes, i.blendshapes) for o, i in zip(own, image_mode)]
    assert np.mean(twin_mae) <= np.mean(own_mae) + 0.005, (np.mean(twin_mae), np.mean(own_mae))
    assert max(twin_mae) < 0.05, max(twin_mae)


def test_a_frame_without_a_face_is_empty(landmarker):
    wall = np.full((120, 160, 3), 200, np.uint8)
    (result,) = landmarker.detect(wall[None])
    assert not result.face_found and result.landmarks is None and result.image_size == (160, 120)
    empty = result.expression(1.5)
    assert not empty.face_found and empty.timestamp == 1.5 and not empty.blendshapes.any()


def test_bad_frames_and_landmarks_are_one_clear_error(landmarker):
    with pytest.raises(PerceptionError, match=r"uint8 RGB"):
        landmarker.detect([np.zeros((10, 10, 3), np.float32)])
    with pytest.raises(PerceptionError, match=r"frame\[None\]"):
        landmarker.detect(np.zeros((10, 10, 3), np.uint8))
    frames = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="landmarks of every frame: 2 frames, 1 landmark sets"):
        landmarker.track(frames, np.zeros((1, 478, 2)))
    with pytest.raises(ValueError, match=r"frame 0: previous landmarks must be \(478 or 468, 2 or 3\)"):
        landmarker.track(frames, np.zeros((2, 100, 2)))


@pytest.mark.parametrize("missing", [C.DETECTOR_MEMBER, C.LANDMARKS_MEMBER, landmarker_bundle.BLENDSHAPES_MEMBER])
def test_a_bundle_without_a_network_is_refused_by_name(missing, bundle_without):
    with pytest.raises(LandmarkerModelError, match=f"has no {missing}"):
        LiteRTFaceLandmarker(bundle_without(missing))
