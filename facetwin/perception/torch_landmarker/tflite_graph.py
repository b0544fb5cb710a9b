"""A .tflite graph executed op by op in torch, its batch of one widened to a batch of B.

The flatbuffer is parsed with the schema LiteRT ships, so no layer is re-typed by hand: the weights
are the bundle's own (float16 behind DEQUANTIZE, widened once at load) and the op order is the
graph's. Values keep TFLite's layout (NHWC); convolutions and pooling read them through a
zero-copy NCHW view (channels_last strides), so the layout costs no copies.

Only the ops MediaPipe's face detector, 478-landmark model and blendshape network use are
implemented; any other graph fails at load, naming the op. Tests hold each of the three graphs to
LiteRT's interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}
_ACTIVATIONS = {0: lambda x: x, 1: torch.relu, 3: lambda x: torch.clamp(x, 0.0, 6.0), 4: torch.tanh}
_SAME, _VALID = 0, 1  # tflite Padding enum


class UnsupportedGraph(ValueError):
    """The .tflite uses an op or layout this executor does not implement."""


@dataclass
class _Op:
    name: str
    inputs: list[int]
    outputs: list[int]
    options: object
    run: Callable | None = None  # bound at load: (graph, values) -> tensor


class TfliteGraph(nn.Module):
    """One subgraph of a .tflite flatbuffer as a torch module; ``forward`` returns the graph's outputs.

    Inputs and outputs are in TFLite's layout with the batch axis widened to B. Weights are
    non-persistent buffers, so ``.to(device)`` moves them and no state dict ever holds them.
    """

    def __init__(self, tflite: bytes, *, label: str = "graph"):
        super().__init__()
        from ai_edge_litert import schema_py_generated as schema

        self.label = label
        model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
        if len(model.subgraphs) != 1:
            raise UnsupportedGraph(f"{label}: expected one subgraph, found {len(model.subgraphs)}")
        graph = model.subgraphs[0]
        codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self.inputs = [int(i) for i in graph.inputs]
        self.outputs = [int(i) for i in graph.outputs]
        self.shapes = {i: tuple(int(d) for d in t.shape) if t.shape is not None else () for i, t in enumerate(graph.tensors)}
        self.names = {i: (t.name or b"").decode() for i, t in enumerate(graph.tensors)}
        consts = _constants(model, graph, tflite, label)
        ops: list[_Op] = []
        for k, op in enumerate(graph.operators):
            code = model.operatorCodes[op.opcodeIndex]
            name = codes.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")
            inputs, outputs = [int(i) for i in op.inputs], [int(i) for i in op.outputs]
            if name == "DEQUANTIZE" and inputs[0] in consts:
                consts[outputs[0]] = consts[inputs[0]].astype(np.float32)  # fp16 weights, widened once
                continue
            if name not in _BUILDERS:
                raise UnsupportedGraph(f"{label}: op {k} is {name}, which the torch executor does not implement")
            ops.append(_Op(name, inputs, outputs, op.builtinOptions))
        self._ints: dict[int, list[int]] = {}  # shape/axis/padding constants, kept as Python ints
        self._consts: set[int] = set(consts)
        for i, arr in consts.items():
            if arr.dtype in (np.int32, np.int64):
                self._ints[i] = arr.reshape(-1).tolist()
            else:
                self.register_buffer(f"t{i}", torch.from_numpy(np.ascontiguousarray(arr, np.float32)), persistent=False)
        for op in ops:
            op.run = _BUILDERS[op.name](self, op)
        self._ops = ops
        # intermediates are dropped after their last reader, so a batch holds a few activations at a time
        last_use: dict[int, int] = {}
        for k, op in enumerate(ops):
            for i in op.inputs:
                last_use[i] = k
        keep = set(self.outputs)
        self._drop_after = [[i for i in set(op.inputs) if last_use.get(i) == k and i not in consts and i not in keep]
                            for k, op in enumerate(ops)]

    @property
    def op_names(self) -> list[str]:
        return [op.name for op in self._ops]

    def input_shape(self, k: int = 0) -> tuple[int, ...]:
        return self.shapes[self.inputs[k]]

    def forward(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        if len(inputs) != len(self.inputs):
            raise ValueError(f"{self.label} takes {len(self.inputs)} input(s), got {len(inputs)}")
        values: dict[int, torch.Tensor] = {}
        for i, x in zip(self.inputs, inputs):
            want = self.shapes[i][1:]
            if tuple(x.shape[1:]) != want:
                raise ValueError(f"{self.label} expects input {self.names[i]!r} of shape (B, {', '.join(map(str, want))}), "
                                 f"got {tuple(x.shape)}")
            values[i] = x
        for op, drop in zip(self._ops, self._drop_after):
            values[op.outputs[0]] = op.run(values)
            for i in drop:
                values.pop(i, None)
        return [values[i] for i in self.outputs]

    # -- helpers the op builders share ---------------------------------------------------------
    def value(self, i: int, values: dict[int, torch.Tensor]) -> torch.Tensor:
        return values[i] if i in values else getattr(self, f"t{i}")

    def const(self, i: int) -> torch.Tensor:
        if i not in self._consts or i in self._ints:
            raise UnsupportedGraph(f"{self.label}: tensor {self.names.get(i)!r} must be a constant float tensor")
        return getattr(self, f"t{i}")

    def ints(self, i: int, op: _Op) -> list[int]:
        if i not in self._ints:
            raise UnsupportedGraph(f"{self.label}: {op.name} needs a constant integer input, {self.names.get(i)!r} is not")
        return self._ints[i]

    def buffer_for(self, key: str, tensor: torch.Tensor) -> str:
        """Register a derived weight (e.g. a convolution kernel in torch's layout) and return its name."""
        self.register_buffer(key, tensor.clone(memory_format=torch.preserve_format), persistent=False)  # owns its storage
        return key


def _constants(model, graph, blob: bytes, label: str) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    for i, t in enumerate(graph.tensors):
        buf = model.buffers[t.buffer]
        raw = None
        if buf.data is not None and len(buf.data):
            raw = np.asarray(buf.data, np.uint8).tobytes()
        elif getattr(buf, "offset", 0) and buf.size:
            raw = blob[buf.offset : buf.offset + buf.size]
        if raw is None:
            continue
        if t.type not in _DTYPES:
            raise UnsupportedGraph(f"{label}: tensor {t.name!r} has unsupported type {t.type}")
        shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
        out[i] = np.frombuffer(raw, _DTYPES[t.type]).reshape(shape)
    return out


# -- op builders: each takes (graph, op) at load and returns run(values) -> tensor ----------------

def _act(op: _Op) -> Callable[[torch.Tensor], torch.Tensor]:
    fused = getattr(op.options, "fusedActivationFunction", 0) if op.options is not None else 0
    if fused not in _ACTIVATIONS:
        raise UnsupportedGraph(f"{op.name} with fused activation {fused}")
    return _ACTIVATIONS[fused]


def _binary(fn):
    def build(g: TfliteGraph, op: _Op):
        act, (a, b) = _act(op), op.inputs
        return lambda values: act(fn(g.value(a, values), g.value(b, values)))
    return build


def _unary(fn):
    def build(g: TfliteGraph, op: _Op):
        a = op.inputs[0]
        return lambda values: fn(g.value(a, values))
    return build


def _reduce(fn):
    def build(g: TfliteGraph, op: _Op):
        rank = len(g.shapes[op.inputs[0]])
        axes = [a % rank for a in g.ints(op.inputs[1], op)]
        if 0 in axes:
            raise UnsupportedGraph(f"{op.name} over the batch axis")
        keep, a = bool(getattr(op.options, "keepDims", False)), op.inputs[0]
        return lambda values: fn(g.value(a, values), dim=axes, keepdim=keep)
    return build


def _reshape(g: TfliteGraph, op: _Op):
    shape = list(g.shapes[op.outputs[0]])
    if not shape or shape[0] != 1:
        raise UnsupportedGraph(f"RESHAPE to {shape}: expected a leading batch axis of 1")
    a, rest = op.inputs[0], shape[1:]
    return lambda values: g.value(a, values).reshape([-1, *rest])


def _transpose(g: TfliteGraph, op: _Op):
    perm = g.ints(op.inputs[1], op)
    if perm[0] != 0:
        raise UnsupportedGraph(f"TRANSPOSE {perm} moves the batch axis")
    a = op.inputs[0]
    return lambda values: g.value(a, values).permute(perm)


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite's SAME padding: the output is ceil(size / stride); an odd total puts the extra pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _spatial_padding(g: TfliteGraph, op: _Op, kernel: tuple[int, int], stride: tuple[int, int],
                     dilation: tuple[int, int] = (1, 1)) -> tuple[int, int, int, int] | None:
    """(left, right, top, bottom) for F.pad, or None for VALID."""
    if op.options.padding == _VALID:
        return None
    if op.options.padding != _SAME:
        raise UnsupportedGraph(f"{op.name} with padding mode {op.options.padding}")
    _, h, w, _ = g.shapes[op.inputs[0]]
    top, bottom = _same_padding(h, kernel[0], stride[0], dilation[0])
    left, right = _same_padding(w, kernel[1], stride[1], dilation[1])
    return left, right, top, bottom


def _nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)  # a view: NHWC memory is NCHW with channels_last strides


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def _conv_common(g: TfliteGraph, op: _Op, weight: torch.Tensor, groups: int, kernel: tuple[int, int]):
    o = op.options
    stride, dilation = (o.strideH, o.strideW), (o.dilationHFactor, o.dilationWFactor)
    pad = _spatial_padding(g, op, kernel, stride, dilation)
    w_name = g.buffer_for(f"w{op.outputs[0]}", weight.contiguous(memory_format=torch.channels_last))
    b_name = None
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b_name = g.buffer_for(f"b{op.outputs[0]}", g.const(op.inputs[2]))
    act, a = _act(op), op.inputs[0]
    symmetric = pad is not None and pad[0] == pad[1] and pad[2] == pad[3]

    def run(values):
        x = _nchw(g.value(a, values))
        padding: tuple[int, int] | int = 0
        if symmetric:
            padding = (pad[2], pad[0])
        elif pad is not None:
            x = F.pad(x, pad)
        bias = getattr(g, b_name) if b_name else None
        y = F.conv2d(x, getattr(g, w_name), bias, stride, padding, dilation, groups)
        return act(_nhwc(y))
    return run


def _conv2d(g: TfliteGraph, op: _Op):
    w = g.const(op.inputs[1])  # (O, KH, KW, I)
    o = op.options
    if w.shape[1:3] == (1, 1) and (o.strideH, o.strideW) == (1, 1) and g.shapes[op.inputs[0]][1] == 1:
        # a 1x1 convolution over a single row (the blendshape net's token mixing) is a linear map over
        # the channel axis; over images, the channels_last convolution kernel is the faster one
        w_name = g.buffer_for(f"w{op.outputs[0]}", w[:, 0, 0, :])
        b_name = g.buffer_for(f"b{op.outputs[0]}", g.const(op.inputs[2])) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        act, a = _act(op), op.inputs[0]
        return lambda values: act(F.linear(g.value(a, values), getattr(g, w_name), getattr(g, b_name) if b_name else None))
    return _conv_common(g, op, w.permute(0, 3, 1, 2), 1, (w.shape[1], w.shape[2]))


def _depthwise(g: TfliteGraph, op: _Op):
    w = g.const(op.inputs[1])  # (1, KH, KW, C * multiplier)
    channels = g.shapes[op.inputs[0]][3]
    if w.shape[3] != channels * op.options.depthMultiplier:
        raise UnsupportedGraph(f"DEPTHWISE_CONV_2D: {w.shape[3]} filters for {channels} channels")
    return _conv_common(g, op, w.permute(3, 0, 1, 2), channels, (w.shape[1], w.shape[2]))


def _max_pool(g: TfliteGraph, op: _Op):
    o = op.options
    kernel, stride = (o.filterHeight, o.filterWidth), (o.strideH, o.strideW)
    pad = _spatial_padding(g, op, kernel, stride)
    act, a = _act(op), op.inputs[0]

    def run(values):
        x = _nchw(g.value(a, values))
        if pad is not None and any(pad):
            x = F.pad(x, pad, value=float("-inf"))  # TFLite's SAME pooling ignores the padding
        return act(_nhwc(F.max_pool2d(x, kernel, stride)))
    return run


def _prelu(g: TfliteGraph, op: _Op):
    slopes, a = g.const(op.inputs[1]), op.inputs[0]
    shape = g.shapes[a]
    if len(shape) == 4 and slopes.numel() == shape[3] and slopes.shape[-1] == shape[3]:
        # one slope per channel: torch's fused kernel over the channels_last view
        w_name = g.buffer_for(f"w{op.outputs[0]}", slopes.reshape(-1))
        return lambda values: _nhwc(F.prelu(_nchw(g.value(a, values)), getattr(g, w_name)))
    alpha = op.inputs[1]
    return lambda values: torch.where(g.value(a, values) >= 0, g.value(a, values), g.value(a, values) * g.value(alpha, values))


def _pad(g: TfliteGraph, op: _Op):
    pads = g.ints(op.inputs[1], op)  # (rank, 2) before/after per axis, row-major
    rank = len(pads) // 2
    if pads[0] or pads[1]:
        raise UnsupportedGraph("PAD along the batch axis")
    torch_pad: list[int] = []
    for axis in reversed(range(1, rank)):  # F.pad lists the last axis first
        torch_pad += [pads[2 * axis], pads[2 * axis + 1]]
    a = op.inputs[0]
    return lambda values: F.pad(g.value(a, values), torch_pad)


def _concatenation(g: TfliteGraph, op: _Op):
    rank = len(g.shapes[op.outputs[0]])
    axis = op.options.axis % rank
    if axis == 0:
        raise UnsupportedGraph("CONCATENATION along the batch axis")
    act, ins = _act(op), list(op.inputs)

    def run(values):
        parts = [g.value(i, values) for i in ins]
        batch = max(p.shape[0] for p in parts)
        parts = [p.expand(batch, *p.shape[1:]) if p.shape[0] != batch else p for p in parts]
        return act(torch.cat(parts, axis))
    return run


def _strided_slice(g: TfliteGraph, op: _Op):
    begin, end, strides = (g.ints(i, op) for i in op.inputs[1:4])
    o = op.options
    if o.ellipsisMask or o.newAxisMask:
        raise UnsupportedGraph("STRIDED_SLICE with ellipsis or new-axis masks")
    index: list = []
    for axis in range(len(begin)):
        if axis == 0:  # the graph's batch of one: keep the whole batch
            index.append(slice(None))
        elif o.shrinkAxisMask >> axis & 1:
            index.append(begin[axis])
        else:
            start = None if o.beginMask >> axis & 1 else begin[axis]
            stop = None if o.endMask >> axis & 1 else end[axis]
            index.append(slice(start, stop, strides[axis]))
    key, a = tuple(index), op.inputs[0]
    return lambda values: g.value(a, values)[key]


_BUILDERS = {
    "ADD": _binary(torch.add),
    "SUB": _binary(torch.sub),
    "MUL": _binary(torch.mul),
    "DIV": _binary(torch.div),
    "SQUARED_DIFFERENCE": _binary(lambda a, b: (a - b) ** 2),
    "NEG": _unary(torch.neg),
    "SQRT": _unary(torch.sqrt),
    "RSQRT": _unary(torch.rsqrt),
    "LOGISTIC": _unary(torch.sigmoid),
    "RELU": _unary(torch.relu),
    "MEAN": _reduce(torch.mean),
    "SUM": _reduce(torch.sum),
    "RESHAPE": _reshape,
    "TRANSPOSE": _transpose,
    "CONV_2D": _conv2d,
    "DEPTHWISE_CONV_2D": _depthwise,
    "MAX_POOL_2D": _max_pool,
    "PRELU": _prelu,
    "PAD": _pad,
    "CONCATENATION": _concatenation,
    "STRIDED_SLICE": _strided_slice,
}
