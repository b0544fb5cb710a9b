"""open_source: images, folders, videos and webcams as RGB frames; anything unreadable is a clear PerceptionError."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facetwin.perception import PerceptionError, open_source, read_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FACES = SHARED / "faces" / "images"
VIDEO = SHARED / "faces" / "videos" / "single_face.mp4"


def test_an_image_file_is_one_rgb_frame():
    with open_source(str(FACES / "skimage_astronaut.jpg")) as source:
        frames = list(source)
    assert source.kind == "image" and len(frames) == 1
    frame = frames[0]
    assert frame.rgb.shape == (512, 512, 3) and frame.rgb.dtype == np.uint8
    assert frame.index == 0 and frame.timestamp == 0.0 and frame.path.endswith("skimage_astronaut.jpg")
    # RGB, not OpenCV's BGR: the astronaut's orange suit is red-dominant.
    suit = frame.rgb[400:450, 60:120].reshape(-1, 3).mean(axis=0)
    assert suit[0] > suit[2] + 50


def test_a_folder_yields_its_images_in_name_order_and_skips_other_files():
    with open_source(FACES) as source:
        frames = list(source)
    names = [Path(f.path).name for f in frames]
    assert names == sorted(p.name for p in FACES.glob("*.jpg"))  # MANIFEST.tsv is not an image
    assert [f.index for f in frames] == list(range(len(frames)))


@pytest.mark.parametrize("video, n_frames, size", [(VIDEO, 72, (360, 640)), (VIDEO.parent / "1001_DFA_HAP_XX.flv", None, (360, 480))])
def test_a_video_yields_timed_frames(video, n_frames, size):
    with open_source(str(video)) as source:
        frames = [(f.index, f.timestamp, f.rgb.shape, f.path) for f in source]
    assert source.kind == "video" and source.fps == pytest.approx(30.0, abs=0.1)
    assert n_frames is None or len(frames) == n_frames
    assert len(frames) > 40
    assert all(shape == (*size, 3) for _, _, shape, _ in frames)
    idx, ts = np.array([f[0] for f in frames]), np.array([f[1] for f in frames])
    assert (idx == np.arange(len(frames))).all()
    np.testing.assert_allclose(np.diff(ts), 1 / source.fps, atol=1e-9)
    assert frames[0][3] == str(video)


@pytest.mark.parametrize("name", ["broken.jpg", "broken.png", "empty.jpg"])
def test_a_corrupt_image_names_the_file(tmp_path, name):
    bad = tmp_path / name
    bad.write_bytes(b"" if name.startswith("empty") else np.random.default_rng(1).bytes(4000))
    with pytest.raises(PerceptionError, match=rf"{name}.*not a readable image"):
        open_source(str(bad))
    with pytest.raises(PerceptionError, match=name):
        read_image(bad)


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".flv"])
def test_a_corrupt_video_names_the_file(tmp_path, suffix):
    bad = tmp_path / f"broken{suffix}"
    bad.write_bytes(np.random.default_rng(2).bytes(5000))
    with pytest.raises(PerceptionError, match=rf"broken\{suffix} is not a readable video"):
        open_source(str(bad))


def test_a_truncated_video_is_refused(tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(VIDEO.read_bytes()[:50_000])  # the index (moov atom) sits at the end
    with pytest.raises(PerceptionError, match="cut.mp4"):
        open_source(cut)


def test_a_corrupt_image_inside_a_folder_names_that_image(tmp_path):
    ok = read_image(FACES / "max_neutral.jpg")
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(ok, cv2.COLOR_RGB2BGR))
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    frames = iter(open_source(tmp_path))
    np.testing.assert_array_equal(next(frames).rgb, ok)  # PNG round trip is lossless
    with pytest.raises(PerceptionError, match="b.jpg"):
        next(frames)


def test_missing_unknown_and_empty_sources_say_what_is_accepted(tmp_path):
    with pytest.raises(PerceptionError, match=r"nope\.jpg does not exist.*folder of images.*webcam:N"):
        open_source(tmp_path / "nope.jpg")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(PerceptionError, match=r"notes\.txt: unknown kind of source '\.txt'.*\.mp4"):
        open_source(notes)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PerceptionError, match="holds no images"):
        open_source(empty)


def test_webcam_specs_are_checked():
    with pytest.raises(PerceptionError, match="webcam:N"):
        open_source("webcam:front")
    with pytest.raises(PerceptionError, match="no camera could be opened at index 97"):
        open_source("webcam:97")
