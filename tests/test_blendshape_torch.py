"""MediaPipe's blendshape network in torch: the same numbers as LiteRT's run of the bundle's model, in
batches, with gradients a forward model can be trained through."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facetwin.blendshape_model import BlendshapeModel
from facetwin.blendshape_torch import TorchBlendshapes, UnsupportedGraph
from facetwin.expression import BLENDSHAPE_INPUT_LANDMARKS, BLENDSHAPE_NAMES
from facetwin.perception import FacePerceiver, open_source

FACES = ("cremad_1001_happy.jpg", "max_surprised.jpg", "cremad_1001_neutral.jpg", "max_angry.jpg")


@pytest.fixture(scope="module")
def nets():
    return TorchBlendshapes.from_bundle(), BlendshapeModel()


@pytest.fixture(scope="module")
def human_landmarks(faces_dir):
    with FacePerceiver(mode="image") as perceiver:
        return np.stack([perceiver.perceive(next(iter(open_source(faces_dir / "images" / name))).rgb).landmarks.copy() for name in FACES])


def test_matches_litert_on_human_faces_in_one_batch(nets, human_landmarks):
    torch_net, litert = nets
    with torch.no_grad():
        got = torch_net.from_landmarks(torch.as_tensor(human_landmarks)).numpy()
    expected = litert.batch(human_landmarks)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert expected[:, BLENDSHAPE_NAMES.index("mouthSmileLeft")].max() > 0.5  # the happy face: not a trivial input


def test_matches_litert_on_the_twin(nets, twin):
    torch_net, litert = nets
    for pose in (np.zeros(twin.spec.n), np.random.default_rng(0).uniform(-0.7, 0.7, twin.spec.n)):
        twin.reset(readout=False)
        landmarks = twin.apply(pose).expression.landmarks
        with torch.no_grad():
            got = torch_net.from_landmarks(torch.as_tensor(landmarks[None])).numpy()[0]
        np.testing.assert_allclose(got, litert(landmarks), atol=1e-4)


def test_gradients_reach_the_landmarks_and_point_the_right_way(nets, human_landmarks):
    """A few gradient steps on the neutral face's landmarks raise the coefficient asked for: the network
    can sit at the end of a differentiable forward model."""
    torch_net, _ = nets
    smile = BLENDSHAPE_NAMES.index("mouthSmileLeft")
    points = torch.as_tensor(human_landmarks[2:3, list(BLENDSHAPE_INPUT_LANDMARKS), :2]).clone().requires_grad_(True)
    with torch.no_grad():
        start = float(torch_net(points)[0, smile])
    opt = torch.optim.Adam([points], lr=0.5)  # half a pixel per step
    for _ in range(30):
        opt.zero_grad()
        (-torch.log(torch_net(points)[0, smile])).backward()
        assert torch.isfinite(points.grad).all()
        opt.step()
    with torch.no_grad():
        assert float(torch_net(points)[0, smile]) > start + 0.2


def test_wrong_input_shape_is_a_clear_error(nets):
    with pytest.raises(ValueError, match=r"\(B, 146, 2\)"):
        nets[0](torch.zeros(2, 478, 2))


def test_a_graph_with_an_op_it_does_not_implement_is_refused_by_name():
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from facetwin import landmarker_bundle

    blob = landmarker_bundle.read_member(landmarker_bundle.resolve(None), landmarker_bundle.BLENDSHAPES_MEMBER)
    model = schema.ModelT.InitFromPackedBuf(bytearray(blob), 0)
    for code in model.operatorCodes:  # the output sigmoid becomes a tanh
        if code.builtinCode == schema.BuiltinOperator.LOGISTIC:
            code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.TANH
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(UnsupportedGraph, match="TANH"):
        TorchBlendshapes(bytes(builder.Output()))
