"""MediaPipe's blendshape network as a differentiable torch module, read from the bundle's own weights.

`face_blendshapes.tflite` (an MLP-Mixer over the 146 input landmarks) is the last stage of every
read-out in facetwin. Running it in torch makes that stage differentiable and batched: a forward
model can predict landmarks (smooth, local functions of the servos) and let the real network turn
them into coefficients, instead of learning the network's nonlinearity again from data.

The graph is executed op by op as the flatbuffer describes it (parsed with the schema LiteRT ships),
so nothing is re-typed by hand; the graph's batch of one becomes a batch of B. Only the ops this
model uses are implemented; another graph fails loudly naming the op. `tests/test_blendshape_torch.py`
holds it to LiteRT's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facetwin import landmarker_bundle
from facetwin.expression import BLENDSHAPE_INPUT_LANDMARKS, N_BLENDSHAPES

_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}
_ACTIVATIONS = {0: lambda x: x, 1: torch.relu, 3: lambda x: torch.clamp(x, 0.0, 6.0), 4: torch.tanh}


@dataclass
class _Op:
    name: str
    inputs: list[int]
    output: int
    options: object


class UnsupportedGraph(ValueError):
    """The .tflite uses an op or layout this executor does not implement."""


class TorchBlendshapes(nn.Module):
    """(B, 146, 2) pixel landmarks (the blendshape subset) -> (B, 52) coefficients, like LiteRT's run."""

    def __init__(self, tflite: bytes):
        super().__init__()
        from ai_edge_litert import schema_py_generated as schema

        model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
        if len(model.subgraphs) != 1:
            raise UnsupportedGraph(f"expected one subgraph, found {len(model.subgraphs)}")
        graph = model.subgraphs[0]
        codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self._input, self._output = int(graph.inputs[0]), int(graph.outputs[0])
        self._shapes = {i: tuple(int(d) for d in t.shape) if t.shape is not None else () for i, t in enumerate(graph.tensors)}
        consts: dict[int, np.ndarray] = {}
        for i, t in enumerate(graph.tensors):
            buf = model.buffers[t.buffer]
            raw = None
            if buf.data is not None and len(buf.data):
                raw = np.asarray(buf.data, np.uint8).tobytes()
            elif getattr(buf, "offset", 0) and buf.size:
                raw = tflite[buf.offset : buf.offset + buf.size]
            if raw is not None:
                if t.type not in _DTYPES:
                    raise UnsupportedGraph(f"tensor {t.name!r} has unsupported type {t.type}")
                consts[i] = np.frombuffer(raw, _DTYPES[t.type]).reshape(self._shapes[i])
        self._ops: list[_Op] = []
        self._ints: dict[int, list[int]] = {}  # shape/axis/index constants, kept as Python ints
        for k, op in enumerate(graph.operators):
            name = codes.get(max(model.operatorCodes[op.opcodeIndex].builtinCode,
                                 model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode), "?")
            if name not in _HANDLERS:
                raise UnsupportedGraph(f"op {k} is {name}, which TorchBlendshapes does not implement")
            self._ops.append(_Op(name, [int(i) for i in op.inputs], int(op.outputs[0]), op.builtinOptions))
        # intermediates are dropped after their last reader, so a batch holds a few activations, not ~180
        last_use: dict[int, int] = {}
        for k, op in enumerate(self._ops):
            for i in op.inputs:
                last_use[i] = k
        self._drop_after = [[i for i in set(op.inputs) if last_use[i] == k and i not in consts and i != self._output]
                            for k, op in enumerate(self._ops)]
        for i, arr in consts.items():
            if arr.dtype in (np.int32, np.int64):
                self._ints[i] = arr.reshape(-1).tolist()
            else:  # weights: float16 in the bundle, dequantised once here
                self.register_buffer(f"t{i}", torch.from_numpy(arr.astype(np.float32)), persistent=False)

    @classmethod
    def from_bundle(cls, bundle: str | Path | None = None) -> "TorchBlendshapes":
        path = landmarker_bundle.resolve(bundle)
        return cls(landmarker_bundle.read_member(path, landmarker_bundle.BLENDSHAPES_MEMBER))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """points: (B, 146, 2) pixel x, y of BLENDSHAPE_INPUT_LANDMARKS (y down). Returns (B, 52)."""
        if points.ndim != 3 or points.shape[1:] != (len(BLENDSHAPE_INPUT_LANDMARKS), 2):
            raise ValueError(f"expected (B, {len(BLENDSHAPE_INPUT_LANDMARKS)}, 2) landmarks, got {tuple(points.shape)}")
        values: dict[int, torch.Tensor] = {self._input: points}
        for op, drop in zip(self._ops, self._drop_after):
            values[op.output] = _HANDLERS[op.name](self, op, values)
            for i in drop:
                values.pop(i, None)
        out = values[self._output]
        return out.reshape(points.shape[0], N_BLENDSHAPES)

    def from_landmarks(self, landmarks: torch.Tensor) -> torch.Tensor:
        """(B, 478, >=2) landmarks -> (B, 52), picking the network's subset."""
        idx = torch.as_tensor(BLENDSHAPE_INPUT_LANDMARKS, device=landmarks.device)
        return self(landmarks[:, idx, :2])

    # -- op helpers ------------------------------------------------------------------------------
    def _value(self, i: int, values: dict[int, torch.Tensor]) -> torch.Tensor:
        if i in values:
            return values[i]
        return getattr(self, f"t{i}")


def _act(op: _Op, x: torch.Tensor) -> torch.Tensor:
    fused = getattr(op.options, "fusedActivationFunction", 0) if op.options is not None else 0
    if fused not in _ACTIVATIONS:
        raise UnsupportedGraph(f"{op.name} with fused activation {fused}")
    return _ACTIVATIONS[fused](x)


def _binary(fn):
    def run(net: TorchBlendshapes, op: _Op, values):
        return _act(op, fn(net._value(op.inputs[0], values), net._value(op.inputs[1], values)))
    return run


def _unary(fn):
    return lambda net, op, values: fn(net._value(op.inputs[0], values))


def _axes(net: TorchBlendshapes, op: _Op, rank: int) -> list[int]:
    axes = [a % rank for a in net._ints[op.inputs[1]]]
    if 0 in axes:
        raise UnsupportedGraph(f"{op.name} over the batch axis")
    return axes


def _reduce(fn):
    def run(net: TorchBlendshapes, op: _Op, values):
        x = net._value(op.inputs[0], values)
        keep = bool(getattr(op.options, "keepDims", False))
        return fn(x, dim=_axes(net, op, x.ndim), keepdim=keep)
    return run


def _dequantize(net: TorchBlendshapes, op: _Op, values):
    return net._value(op.inputs[0], values)  # float16 weights were widened at load time


def _reshape(net: TorchBlendshapes, op: _Op, values):
    x = net._value(op.inputs[0], values)
    shape = list(net._shapes[op.output])
    if not shape or shape[0] != 1:
        raise UnsupportedGraph(f"RESHAPE to {shape}: expected a leading batch axis of 1")
    return x.reshape([x.shape[0], *shape[1:]])


def _transpose(net: TorchBlendshapes, op: _Op, values):
    perm = net._ints[op.inputs[1]]
    if perm[0] != 0:
        raise UnsupportedGraph(f"TRANSPOSE {perm} moves the batch axis")
    return net._value(op.inputs[0], values).permute(perm)


def _conv2d(net: TorchBlendshapes, op: _Op, values):
    x, w = net._value(op.inputs[0], values), net._value(op.inputs[1], values)
    if w.shape[1:3] != (1, 1):
        raise UnsupportedGraph(f"CONV_2D with a {tuple(w.shape[1:3])} kernel (only 1x1 is implemented)")
    bias = net._value(op.inputs[2], values) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    # a 1x1 NHWC convolution is a linear map over the channel axis
    return _act(op, nn.functional.linear(x, w[:, 0, 0, :], bias))


def _concatenation(net: TorchBlendshapes, op: _Op, values):
    parts = [net._value(i, values) for i in op.inputs]
    batch = max(p.shape[0] for p in parts)
    parts = [p.expand(batch, *p.shape[1:]) if p.shape[0] != batch else p for p in parts]
    rank = parts[0].ndim
    axis = op.options.axis % rank
    if axis == 0:
        raise UnsupportedGraph("CONCATENATION along the batch axis")
    return _act(op, torch.cat(parts, axis))


def _strided_slice(net: TorchBlendshapes, op: _Op, values):
    x = net._value(op.inputs[0], values)
    begin, end, strides = (net._ints[i] for i in op.inputs[1:4])
    o = op.options
    if o.ellipsisMask or o.newAxisMask:
        raise UnsupportedGraph("STRIDED_SLICE with ellipsis or new-axis masks")
    index: list = []
    for axis in range(len(begin)):
        if axis == 0:  # the graph's batch of one: keep the whole batch
            index.append(slice(None))
            continue
        if o.shrinkAxisMask >> axis & 1:
            index.append(begin[axis])
            continue
        start = None if o.beginMask >> axis & 1 else begin[axis]
        stop = None if o.endMask >> axis & 1 else end[axis]
        index.append(slice(start, stop, strides[axis]))
    return x[tuple(index)]


_HANDLERS = {
    "ADD": _binary(torch.add),
    "SUB": _binary(torch.sub),
    "MUL": _binary(torch.mul),
    "DIV": _binary(torch.div),
    "SQUARED_DIFFERENCE": _binary(lambda a, b: (a - b) ** 2),
    "NEG": _unary(torch.neg),
    "SQRT": _unary(torch.sqrt),
    "RSQRT": _unary(torch.rsqrt),
    "LOGISTIC": _unary(torch.sigmoid),
    "MEAN": _reduce(torch.mean),
    "SUM": _reduce(torch.sum),
    "DEQUANTIZE": _dequantize,
    "RESHAPE": _reshape,
    "TRANSPOSE": _transpose,
    "CONV_2D": _conv2d,
    "CONCATENATION": _concatenation,
    "STRIDED_SLICE": _strided_slice,
}
