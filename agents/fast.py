"""NumPy copies of the trained kan-attn and KAN forward passes, for batch-1 inference.

At batch 1 PyTorch spends most of its time dispatching operators; NumPy on the same arithmetic, with
every batch-independent table computed once at construction, is several times quicker. Tests hold the
two paths equal.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from facetwin.expression import N_BLENDSHAPES

from .kan import KAN, KANActivation, KANLayer
from .policy import KanAttnPolicy


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
            self.slope, self.offset = _np(t["slope"]), _np(t["offset"])  # (52, 1, h, R)
            self.vv, self.vn = _np(t["vv"]), _np(t["vn"])  # (52, d)
            self.same_head = _np(t["same_head"])
            self.q = _np(t["q"])  # (R, h, dh)
            self.head_w, self.head_b = _np(p.head_proj.weight.T), _np(p.head_proj.bias)
            self.read_k, self.read_v = _np(p.read_k.weight.T), _np(p.read_v.weight.T)
            self.region_query = _np(p.region_query)
            self.ln_w, self.ln_b, self.ln_eps = _np(p.norm.weight), _np(p.norm.bias), p.norm.eps
            self.qkv_w, self.qkv_b = _np(p.qkv.weight.T), _np(p.qkv.bias)
            self.out_w, self.out_b = _np(p.attn_out.weight.T), _np(p.attn_out.bias)
            # servo logits: servo_k(u) @ servo_query.T / sqrt(d) folds into one (d, S) matrix
            self.servo_logit = _np(p.servo_k.weight.T @ p.servo_query.T / math.sqrt(self.d))
            self.servo_bias = _np(p.servo_bias.T[:, None])  # (R+1, 1, S)
            self.readout, self.readout_bias = _np(p.readout.T), _np(p.readout_bias)
        self.kan = FastKAN(p.kan)

    def drives(self, x: np.ndarray) -> np.ndarray:
        n, h, dh, nb = len(x), self.h, self.dh, N_BLENDSHAPES
        x = self.input_act(x * self.scale)
        b = x[:, :nb].T[:, :, None, None]  # (52, B, 1, 1)
        head = x[:, nb:] @ self.head_w + self.head_b  # (B, d)
        head_logit = ((head @ self.read_k).reshape(n, 1, h, dh) * self.q).sum(-1)  # (B, R, h)
        logits = np.concatenate([b * self.slope + self.offset, head_logit.transpose(0, 2, 1)[None]])  # (53, B, h, R)
        a = 1.0 / (1.0 + np.exp(-logits)) if self.gate == "sigmoid" else _softmax0(logits)
        a_c = a[:nb]  # (52, B, h, R)
        both = (a_c * b).reshape(nb, -1).T @ self.vv + a_c.reshape(nb, -1).T @ self.vn  # (B*h*R, d)
        read = (both.reshape(n, h, -1, h, dh) * self.same_head).sum(3).transpose(0, 2, 1, 3)  # (B, R, h, dh)
        head_v = (head @ self.read_v).reshape(n, 1, h, dh)
        read = read + a[nb].transpose(0, 2, 1)[..., None] * head_v
        regions = self.region_query + read.reshape(n, -1, self.d)  # (B, R, d)
        u = np.concatenate([regions.transpose(1, 0, 2), head[None]])  # (R+1, B, d)
        mu = u.mean(-1, keepdims=True)
        var = ((u - mu) ** 2).mean(-1, keepdims=True)
        qkv = ((u - mu) / np.sqrt(var + self.ln_eps) * self.ln_w + self.ln_b) @ self.qkv_w + self.qkv_b
        q, k, v = np.split(qkv, 3, axis=-1)  # (R+1, B, d)
        prod = (q[:, None] * k[None]).reshape(*q.shape[:1], k.shape[0], n, h, dh)
        a = _softmax0(prod.sum(-1).transpose(1, 0, 2, 3) / math.sqrt(dh)).transpose(1, 0, 2, 3)  # (Rq, Rk, B, h)
        mixed = (a[..., None] * v[None].reshape(1, k.shape[0], n, h, dh)).sum(1).reshape(u.shape)  # (R+1, B, d)
        u = u + mixed @ self.out_w + self.out_b
        a = _softmax0(u @ self.servo_logit + self.servo_bias)  # (R+1, B, S)
        return (a * (u @ self.readout)).sum(0) + self.readout_bias

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
