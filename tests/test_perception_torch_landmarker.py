"""MediaPipe's Face Landmarker in torch: the same numbers as MediaPipe's own runtime, batched.

Each network is held to LiteRT's interpreter, the whole IMAGE-mode pipeline to MediaPipe's landmarker
on the shared photos and on renders of the twin (landmarks within 1 px at 512 px, coefficients within
0.003 MAE, per frame), and the tracking crop to MediaPipe's VIDEO mode.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facetwin import landmarker_bundle
from facetwin.app.bench.landmarker import mediapipe_read, photo_frames, twin_frames
from facetwin.landmarker_bundle import LandmarkerModelError
from facetwin.perception import FacePerceiver, PerceptionError
from facetwin.perception.torch_landmarker import TorchFaceLandmarker
from facetwin.perception.torch_landmarker import constants as C
from facetwin.perception.torch_landmarker.crops import Crops
from facetwin.perception.torch_landmarker.detector import ssd_anchors
from facetwin.perception.torch_landmarker.tflite_graph import TfliteGraph
from facetwin.perception.torch_landmarker.warp import warp



@pytest.fixture(scope="module")
def landmarker(torch_one_thread):
    return TorchFaceLandmarker()


@pytest.fixture(scope="module")
def photos(faces_dir):
    return photo_frames(faces_dir)


@pytest.mark.parametrize("member", [C.DETECTOR_MEMBER, C.LANDMARKS_MEMBER, landmarker_bundle.BLENDSHAPES_MEMBER])
def test_each_network_matches_litert_and_batches(member, torch_one_thread):
    from ai_edge_litert.interpreter import Interpreter

    blob = landmarker_bundle.read_member(landmarker_bundle.resolve(None), member)
    graph = TfliteGraph(blob, label=member)
    interpreter = Interpreter(model_content=blob)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    rng = np.random.default_rng(0)
    inputs = rng.uniform(0, 1, (2, *inp["shape"][1:])).astype(np.float32)
    with torch.inference_mode():
        got = graph(torch.from_numpy(inputs))
    for row in range(2):  # the graph's batch of one, widened: each row is its own run
        interpreter.set_tensor(inp["index"], inputs[row : row + 1])
        interpreter.invoke()
        for index, out in zip(graph.outputs, got):
            expected = interpreter.get_tensor(index)
            want = expected[0] if out.ndim == expected.ndim else expected  # the blendshape graph drops its batch axis
            scale = max(1.0, float(np.abs(want).max()))  # float32 sums in another order: relative to the range
            np.testing.assert_allclose(out[row].numpy(), want, rtol=0, atol=2e-5 * scale)


def test_the_bundles_metadata_confirms_the_constants():
    """The detector carries no FACE_DETECTOR_METADATA (so MediaPipe's short-range defaults apply) and each
    model's input normalisation is the range the pipeline feeds it."""
    from ai_edge_litert import schema_py_generated as schema
    from mediapipe.tasks.metadata import metadata_schema_py_generated as meta_schema

    bundle = landmarker_bundle.resolve(None)
    for member, (low, high) in ((C.DETECTOR_MEMBER, C.DETECTOR_RANGE), (C.LANDMARKS_MEMBER, C.LANDMARKS_RANGE)):
        blob = landmarker_bundle.read_member(bundle, member)
        model = schema.ModelT.InitFromPackedBuf(bytearray(blob), 0)
        (entry,) = [m for m in model.metadata if m.name == b"TFLITE_METADATA"]
        buf = model.buffers[entry.buffer]
        raw = bytes(buf.data) if buf.data is not None and len(buf.data) else blob[buf.offset : buf.offset + buf.size]
        meta = meta_schema.ModelMetadataT.InitFromPackedBuf(bytearray(raw), 0)
        (graph,) = meta.subgraphMetadata
        norm = graph.inputTensorMetadata[0].processUnits[0].options
        scaled = (np.array([0.0, 255.0]) - norm.mean[0]) / norm.std[0]
        assert scaled == pytest.approx([low, high])
        assert not graph.customMetadata and not getattr(meta, "customMetadata", None)


def test_ssd_anchors_follow_mediapipe_layout():
    anchors = ssd_anchors()
    assert anchors.shape == (C.NUM_BOXES, 2)
    # stride 8: a 16x16 grid, two anchors per cell; then strides 16 merged: 8x8, six per cell
    np.testing.assert_allclose(anchors[:2], [[1 / 32, 1 / 32]] * 2)
    np.testing.assert_allclose(anchors[511], [31 / 32, 31 / 32])
    np.testing.assert_allclose(anchors[512:518], [[1 / 16, 1 / 16]] * 6)
    np.testing.assert_allclose(anchors[-1], [15 / 16, 15 / 16])


def test_the_warp_is_opencvs_fixed_point_bilinear():
    """A crop the frame's own size copies it; half a pixel over, each value is OpenCV's rounded-up mean
    of its two neighbours (not float bilinear rounded to even); outside the frame, the border rules."""
    rng = np.random.default_rng(1)
    frame = torch.from_numpy(rng.integers(0, 256, (1, 8, 8, 3), dtype=np.uint8))
    same = Crops(torch.tensor([[4.0, 4.0]]), torch.tensor([[8.0, 8.0]]), torch.zeros(1))
    np.testing.assert_array_equal(warp(frame, torch.tensor([0]), same, 8, "replicate")[0].numpy(), frame[0].numpy())
    shifted = Crops(torch.tensor([[4.5, 4.0]]), torch.tensor([[8.0, 8.0]]), torch.zeros(1))
    got = warp(frame, torch.tensor([0]), shifted, 8, "replicate")[0].numpy()
    f = frame[0].numpy().astype(int)
    np.testing.assert_array_equal(got[:, :7], (f[:, :7] + f[:, 1:] + 1) >> 1)
    np.testing.assert_array_equal(got[:, 7], f[:, 7])  # replicated edge
    wide = Crops(torch.tensor([[4.0, 4.0]]), torch.tensor([[16.0, 16.0]]), torch.zeros(1))
    zero = warp(frame, torch.tensor([0]), wide, 16, "zero")[0].numpy()
    assert (zero[:4] == 0).all() and (zero[:, :4] == 0).all() and (zero[4:12, 4:12] == f).all()


def test_matches_mediapipe_image_mode_on_the_shared_photos(landmarker, photos, reads_like_mediapipe):
    got = landmarker.detect(photos)  # one call: frames of several sizes, grouped by size
    reference = mediapipe_read(photos)
    assert reads_like_mediapipe(reference, got).head_deg_max <= 0.1
    for ref, res in zip(reference, got):
        np.testing.assert_allclose(res.transformation_matrix, ref.extra["transformation_matrix"], atol=5e-3)
        # z, normalised like x, as MediaPipe returns it (a pixel-scaled copy lives in Expression.landmarks)
        np.testing.assert_allclose(res.landmarks_px()[:, 2], ref.landmarks[:, 2], atol=0.5)


def test_a_frame_reads_the_same_in_a_batch_as_alone(landmarker, photos):
    frames = [photos[0], photos[0][:, ::-1].copy(), photos[1]]  # two of one size (one batch), one of another
    together = landmarker.detect(frames)
    for frame, batched in zip(frames, together):
        (alone,) = landmarker.detect([frame])
        np.testing.assert_allclose(batched.landmarks_px()[:, :2], alone.landmarks_px()[:, :2], atol=1e-3)
        np.testing.assert_allclose(batched.blendshapes, alone.blendshapes, atol=1e-5)
    assert np.abs(together[0].landmarks - together[1].landmarks).max() > 0.01  # the mirrored frame is read as its own


def test_matches_mediapipe_on_renders_of_the_twin(landmarker, twin, reads_like_mediapipe):
    """Every named pose and 30 random commands (the full 500-render figure is in docs/camera.md)."""
    frames = twin_frames(twin, n_random=30, seed=0)
    reads_like_mediapipe(mediapipe_read(frames), landmarker.detect(np.stack(frames)))


def test_the_tracking_crop_is_mediapipes(landmarker, photos):
    """MediaPipe's VIDEO mode reads a second frame from the crop the first frame's landmarks give. Two
    copies of a photo, 1000 s apart so its landmark smoothing passes the new frame through (the first
    timestamp is non-zero: the filter takes 0 for "no previous frame"), read as ``track`` reads them."""
    chosen = photos[:3]
    first = landmarker.detect(chosen)
    tracked = landmarker.track(chosen, first)
    for image, start, result in zip(chosen, first, tracked):
        with FacePerceiver(mode="video", max_faces=1) as video:
            video.perceive(image, 1000.0)
            second = video.perceive(image, 2000.0)
        assert np.abs(second.landmarks[:, :2] - result.landmarks_px()[:, :2]).max() < 0.1
        assert np.abs(second.blendshapes - result.blendshapes).mean() < 0.001
        # and the crop matters: the tracked read is not the detected one
        assert np.abs(result.landmarks_px()[:, :2] - start.landmarks_px()[:, :2]).max() > 0.3


def test_a_frame_without_a_face_is_flagged_and_required_faces_are_an_error(landmarker):
    wall = np.full((120, 160, 3), 200, np.uint8)
    (result,) = landmarker.detect(wall[None])
    assert not result.face_found and result.landmarks is None and result.image_size == (160, 120)
    assert not result.expression(1.5).face_found
    with pytest.raises(PerceptionError, match="no face found in the 160x120 frame"):
        result.require_face()
    with pytest.raises(PerceptionError, match="previous result has no face"):
        landmarker.track(wall[None], [result])


def test_bad_frames_are_one_clear_error(landmarker):
    with pytest.raises(PerceptionError, match=r"uint8 RGB"):
        landmarker.detect([np.zeros((10, 10, 3), np.float32)])
    with pytest.raises(PerceptionError, match=r"frame\[None\]"):
        landmarker.detect(np.zeros((10, 10, 3), np.uint8))


@pytest.mark.parametrize("missing", [C.DETECTOR_MEMBER, C.LANDMARKS_MEMBER])
def test_a_bundle_without_a_network_is_refused_by_name(missing, bundle_without):
    with pytest.raises(LandmarkerModelError, match=f"has no {missing}"):
        TorchFaceLandmarker(bundle_without(missing))


def test_cuda_where_torch_sees_none_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(PerceptionError, match="sees no CUDA device; use device='cpu'"):
        TorchFaceLandmarker(device="cuda")


def test_weights_live_on_the_modules_device_and_never_in_its_state(landmarker):
    """What the CUDA path needs, checked on the CPU: every weight is a float32 buffer that .to(device)
    moves (the fp16 weights were widened), none is saved with a state dict (they stay in the user's bundle),
    and no tensor the pipeline makes while reading is created off the frames' device."""
    tensors = list(landmarker.buffers())
    assert len(tensors) > 300 and not list(landmarker.parameters())
    assert all(t.device == landmarker.device for t in tensors)
    assert {t.dtype for t in tensors if t.is_floating_point()} == {torch.float32}
    assert landmarker.state_dict() == {}

    from torch.overrides import TorchFunctionMode

    factories = {torch.tensor, torch.as_tensor, torch.arange, torch.zeros, torch.ones, torch.full, torch.empty}
    undeviced = []

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in factories and "device" not in kwargs and not (args and isinstance(args[0], torch.Tensor)):
                import sys

                undeviced.append(sys._getframe(1).f_code.co_name)
            return func(*args, **kwargs)

    frame = np.full((64, 64, 3), 90, np.uint8)
    with Watch():
        first = landmarker.detect(frame[None])
        landmarker.track(frame[None], [np.random.default_rng(0).uniform(0.3, 0.7, (478, 3)).astype(np.float32)])
    # frames enter on the host and move to the device in one place; nothing else is made on the host
    assert set(undeviced) <= {"_check_frame"}, undeviced
    assert not first[0].face_found
