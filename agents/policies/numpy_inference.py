"""NumPy copies of the trained kan-attn and KAN forward passes, for batch-1 inference.

At batch 1 PyTorch spends most of its time dispatching operators; NumPy on the same arithmetic, with
every batch-independent table computed once at construction, is several times quicker. Tests hold the
two paths equal.
"""

from __future__ import annotations


import numpy as np
import torch

from facetwin.expression import N_BLENDSHAPES

from facetwin.agents.policies.kan import KAN, KANActivation, KANLayer
from facetwin.agents.policies.kan_attention import KanAttnPolicy


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


class FastKANLayer:
    def __init__(self, layer: KANLayer):
        _init_bases(self, layer.grid, layer.k)
        with torch.no_grad():
            w = layer.spline_weight().reshape(layer.in_dim, -1, layer.out_dim)  # (in, coeff, out)
        self.spline = _np(w.permute(1, 0, 2).reshape(-1, layer.out_dim))  # (coeff*in, out), basis-major rows
        self.base = _np(layer.scale_base)  # (in, out)
        self.bias = _np(layer.bias) if layer.bias is not None else np.zeros(layer.out_dim, np.float32)

    def bases_of(self, x: np.ndarray) -> np.ndarray:
        """(B, in) -> (coeff, B, in), as kan.basis_major_bases."""
        dist = x[None] - self.knots  # (n_knots, B, in)
        bases = ((dist[:-1] >= 0) & (dist[1:] < 0)).astype(np.float32)
        for p, (left, right) in enumerate(self.recip, start=1):
            bases = dist[: -(p + 1)] * left * bases[:-1] - dist[p + 1 :] * right * bases[1:]
        return bases

    def __call__(self, x: np.ndarray) -> np.ndarray:
        bases = self.bases_of(x)
        flat = bases.transpose(1, 0, 2).reshape(len(x), -1)  # (B, coeff*in)
        silu = x / (1.0 + np.exp(-x))
        return silu @ self.base + flat @ self.spline + self.bias


class FastKANActivation:
    def __init__(self, act: KANActivation):
        self.bases = FastKANLayer.__new__(FastKANLayer)
        _init_bases(self.bases, act.grid, act.k)
        self.coef = _np(act.coef.T[:, None, :])  # (coeff, 1, dim)
        self.scale_base, self.scale_sp = _np(act.scale_base), _np(act.scale_sp)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        spline = (self.bases.bases_of(x) * self.coef).sum(0)
        return self.scale_base * x / (1.0 + np.exp(-x)) + self.scale_sp * spline


class FastKAN:
    def __init__(self, kan: KAN):
        self.layers = [FastKANLayer(layer) for layer in kan.layers]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer(x)
        return x


class FastKanAttn:
    """`KanAttnPolicy.forward` in NumPy: (N, 55) float32 -> (N, S)."""

    def __init__(self, policy: KanAttnPolicy):
        p = policy
        self.h, self.d = p.heads, p.d
        self.dh = self.d // self.h
        with torch.no_grad():
            t = p.tables()
            self.scale = _np(p.scale)
            self.input_act = FastKANActivation(p.input_act)
            self.gate = p.gate
            self.slope, self.offset = _np(t["slope"]), _np(t["offset"])  # (h, 1, 52)
            self.vv, self.vn = _np(t["vv"]), _np(t["vn"])  # (h, 52, (R-1)*dh)
            self.token_mask = _np(p.token_mask)  # (52, R-1)
            self.base = _np(p.region_query[:-1].reshape(-1, 1, self.h, self.dh))
            self.head_w, self.head_b = _np(p.head_proj.weight.T), _np(p.head_proj.bias)
            self.servo_q, self.servo_bias = _np(t["servo_q"]), _np(t["servo_bias"])  # (d, S), (R, 1, S)
            self.readout, self.readout_bias = _np(t["readout"]), _np(p.readout_bias)
        self.kan = FastKAN(p.kan)

    def drives(self, x: np.ndarray) -> np.ndarray:
        n, h, nb = len(x), self.h, N_BLENDSHAPES
        x = self.input_act(x * self.scale)
        b = x[:, :nb]  # (B, 52)
        head = x[:, nb:] @ self.head_w + self.head_b  # (B, d)
        logits = self.offset + self.slope * b  # (h, B, 52)
        if self.gate == "sigmoid":
            a = 1.0 / (1.0 + np.exp(-logits))
        else:  # softmax over each region's own tokens
            e = np.exp(logits - logits.max(-1, keepdims=True))
            a = e / (e @ self.token_mask @ self.token_mask.T)
        read = (a * b) @ self.vv + a @ self.vn  # (h, B, (R-1)*dh)
        read = read.reshape(h, n, -1, self.dh).transpose(2, 1, 0, 3) + self.base  # (R-1, B, h, dh)
        tokens = np.concatenate([read.reshape(-1, n, self.d), head[None]])  # (R, B, d)
        w = _softmax0(tokens @ self.servo_q + self.servo_bias)  # (R, B, S)
        return (w * (tokens @ self.readout)).sum(0) + self.readout_bias

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(self.kan(self.drives(np.asarray(x, np.float32))))


def _init_bases(obj, grid: torch.Tensor, k: int) -> None:
    obj.k = k
    obj.knots = _np(grid.T[:, None, :])  # (n_knots, 1, in)
    obj.recip = []
    kn = obj.knots.astype(np.float64)
    for p in range(1, k + 1):
        left, right = kn[p:-1] - kn[: -(p + 1)], kn[p + 1 :] - kn[1:-p]
        with np.errstate(divide="ignore"):
            obj.recip.append((np.where(left != 0, 1 / left, 0).astype(np.float32),
                              np.where(right != 0, 1 / right, 0).astype(np.float32)))


def _softmax0(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(0, keepdims=True))
    return e / e.sum(0, keepdims=True)
