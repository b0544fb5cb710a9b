"""FacePerceiver on still photos: one face each, expressions that differ where they should, pixels, no crashes."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from facetwin.blendshape_model import BlendshapeModel
from facetwin.expression import N_BLENDSHAPES, N_LANDMARKS, head_angles_deg
from facetwin.perception import FacePerceiver, PerceptionError, detect_face_landmarks, read_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FACES = SHARED / "faces" / "images"
os.environ.setdefault("FACETWIN_FACE_LANDMARKER", str(SHARED / "models" / "face_landmarker.task"))
PHOTOS = sorted(FACES.glob("*.jpg"))


@pytest.fixture(scope="module")
def perceiver():
    with FacePerceiver(mode="image") as p:
        yield p


def smile(expr) -> float:
    return (expr.coefficient("mouthSmileLeft") + expr.coefficient("mouthSmileRight")) / 2


def test_the_shared_photos_are_there():
    assert len(PHOTOS) >= 10, f"expected the shared face photos in {FACES}"


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.stem)
def test_every_photo_yields_exactly_one_face_in_pixels(perceiver, photo):
    rgb = read_image(photo)
    expr = perceiver.perceive(rgb, timestamp=1.5)
    h, w = rgb.shape[:2]
    assert expr.face_found and expr.extra["faces_detected"] == 1
    assert expr.image_size == (w, h) and expr.timestamp == 1.5
    assert expr.blendshapes.shape == (N_BLENDSHAPES,) and expr.head.shape == (3,)
    assert ((expr.blendshapes >= 0) & (expr.blendshapes <= 1)).all()
    assert expr.landmarks.shape == (N_LANDMARKS, 3)
    xy = expr.landmarks[:, :2]
    # Pixels, not MediaPipe's normalised [0, 1]: the face spans tens of pixels inside the frame.
    assert (xy.min(axis=0) > -0.05 * np.array([w, h])).all() and (xy.max(axis=0) < 1.05 * np.array([w, h])).all()
    assert np.ptp(xy[:, 0]) > 30 and np.ptp(xy[:, 1]) > 30


@pytest.mark.parametrize("person", ["cremad_1001", "pyfeat_single"])
def test_happy_smiles_more_than_neutral_for_the_same_person(perceiver, person):
    happy = perceiver.perceive(read_image(FACES / f"{person}_happy.jpg"))
    neutral = perceiver.perceive(read_image(FACES / f"{person}_neutral.jpg"))
    for name in ("mouthSmileLeft", "mouthSmileRight"):
        assert happy.coefficient(name) > neutral.coefficient(name) + 0.5, name


def test_landmarks_scale_with_the_image(perceiver):
    rgb = read_image(FACES / "cremad_1001_neutral.jpg")
    small = perceiver.perceive(rgb)
    big = perceiver.perceive(cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR))
    assert big.image_size == (2 * rgb.shape[1], 2 * rgb.shape[0])
    assert np.median(np.abs(big.landmarks[:, :2] / 2 - small.landmarks[:, :2])) < 1.0


def test_head_angles_follow_the_matrix_and_mirror_with_the_image(perceiver):
    rgb = read_image(FACES / "max_sad_baby.jpg")  # head turned and tipped
    expr = perceiver.perceive(rgb)
    mirrored = perceiver.perceive(np.ascontiguousarray(rgb[:, ::-1]))
    np.testing.assert_allclose(expr.head, head_angles_deg(expr.extra["transformation_matrix"]), atol=1e-4)
    yaw, pitch, roll = expr.head
    assert abs(yaw) > 8 and abs(roll) > 5
    np.testing.assert_allclose(mirrored.head, [-yaw, pitch, -roll], atol=3.0)
    # Roll is the tilt of the eye line (outer corners 33 -> 263) with the image's y turned up.
    dx, dy = expr.landmarks[263, :2] - expr.landmarks[33, :2]
    assert roll == pytest.approx(np.degrees(np.arctan2(-dy, dx)), abs=3.0)


def test_the_fast_path_reproduces_the_landmarkers_blendshapes(perceiver):
    model = BlendshapeModel()
    for name in ("cremad_1001_happy.jpg", "max_angry.jpg", "pyfeat_single_neutral.jpg"):
        expr = perceiver.perceive(read_image(FACES / name))
        np.testing.assert_allclose(model(expr.landmarks), expr.blendshapes, atol=1e-5, err_msg=name)


@pytest.mark.parametrize(
    "frame",
    [np.zeros((240, 320, 3), np.uint8), np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)],
    ids=["blank", "noise"],
)
def test_a_frame_without_a_face_is_flagged_empty(perceiver, frame):
    expr = perceiver.perceive(frame, timestamp=2.0)
    assert not expr.face_found and expr.landmarks is None
    assert expr.image_size == (320, 240) and expr.timestamp == 2.0
    assert not expr.blendshapes.any() and not expr.head.any()
    assert detect_face_landmarks(frame, perceiver=perceiver) is None


@pytest.mark.parametrize("scale, smiling", [(0.6, False), (0.85, True)])
@pytest.mark.parametrize("smiler_on_the_left", [False, True])
def test_the_largest_of_two_faces_is_reported(perceiver, scale, smiling, smiler_on_the_left):
    # A neutral man beside a smiling one; scaling the smiler decides which face is the larger.
    neutral = read_image(FACES / "cremad_1001_neutral.jpg")  # 480x360
    smiler = cv2.resize(read_image(FACES / "pyfeat_single_happy.jpg"), None, fx=scale, fy=scale)
    h, w = smiler.shape[:2]
    canvas = np.zeros((360, 480 + w, 3), np.uint8)
    x_smiler, x_neutral = (0, w) if smiler_on_the_left else (480, 0)
    canvas[:, x_neutral : x_neutral + 480] = neutral
    canvas[:h, x_smiler : x_smiler + w] = smiler
    expr = perceiver.perceive(canvas)
    assert expr.extra["faces_detected"] == 2
    x_face = expr.landmarks[:, 0].mean()
    assert (x_smiler <= x_face < x_smiler + w) == smiling
    assert (smile(expr) > 0.5) == smiling


def test_rgba_frames_are_accepted_and_bad_arrays_refused(perceiver):
    rgb = read_image(FACES / "pyfeat_single_happy.jpg")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert perceiver.perceive(rgba).face_found
    with pytest.raises(PerceptionError, match="uint8"):
        perceiver.perceive(rgb.astype(np.float32) / 255)
    with pytest.raises(PerceptionError, match=r"\(H, W, 3\)"):
        perceiver.perceive(rgb[:, :, 0])


def test_detect_face_landmarks_returns_pixel_landmarks():
    rgb = read_image(FACES / "skimage_astronaut.jpg")
    landmarks = detect_face_landmarks(rgb)
    assert landmarks.shape == (N_LANDMARKS, 3)
    assert 100 < landmarks[1, 0] < 400 and 50 < landmarks[1, 1] < 300  # nose tip on her face (512x512)


def test_a_closed_perceiver_says_so():
    p = FacePerceiver()
    p.close()
    assert p.closed
    with pytest.raises(PerceptionError, match="closed"):
        p.perceive(np.zeros((64, 64, 3), np.uint8))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="mode"):
        FacePerceiver(mode="stream")
    with pytest.raises(ValueError, match="select"):
        FacePerceiver(select="biggest")
    with pytest.raises(ValueError, match="video"):
        from facetwin.perception import OneEuroConfig

        FacePerceiver(mode="image", smoothing=OneEuroConfig())
