"""Compiled CPU kernels for cubic B-splines on uniform knots: each a single pass over the batch.

The closed form in `kan.UniformGrid` costs about fourteen PyTorch elementwise passes (each a dispatch,
an allocation and a sweep over a (batch, G+k, in) tensor) for the bases and their slopes. At the
policy's sizes that is most of a spline layer's time, so on the CPU numba fuses each of those
sequences into one loop: the bases take a fraction of PyTorch's passes' time, and the input gradient
costs a little more than PyTorch's, since it recomputes the slopes PyTorch keeps, but stores no slope
tensor (timings in docs/experiments.md#spline-kernels). The loops run over the contiguous `in` axis
innermost, which LLVM vectorises. Only cubic splines (k = 3, pykan's default and facetwin's) have
kernels: with the order a runtime value, the inner loops over relu terms and powers stop the
vectorisation and the kernel ran slower than PyTorch. Other orders and CUDA tensors run the PyTorch
closed form.

With u the input in knot intervals and d = u - centre_c, basis c is
    B(d) = (relu(2 - |d|)^3 - 4 relu(1 - |d|)^3) / 6,
and its slope in d is -sign(d) (relu(2 - |d|)^2 - 4 relu(1 - |d|)^2) / 2; the input gradients
recompute it from x rather than keeping a (batch, G+k, in) tensor of slopes from the forward pass.

Arrays come in as NumPy views of contiguous CPU tensors (float32 or float64; numba compiles one
version of each kernel for each dtype and caches it on disk, so only the first use pays for compiling;
docs/experiments.md#spline-kernels has both times).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

# fast-math without its no-NaN / no-inf assumptions, so a NaN input still comes out as NaN
_OPTS = dict(cache=True, fastmath={"nsz", "arcp", "contract", "reassoc"}, nogil=True, error_model="numpy")


@njit(inline="always", **_OPTS)
def _bspline(d):
    """The cubic cardinal B-spline at distance d (in knot intervals) from its centre."""
    s = abs(d)
    r1 = max(2.0 - s, 0.0)
    r2 = max(1.0 - s, 0.0)
    return (r1 * r1 * r1 - 4.0 * r2 * r2 * r2) * (1.0 / 6.0)


@njit(inline="always", **_OPTS)
def _bspline_slope(d):
    """dB/dd: the spline falls away from its centre on both sides."""
    s = abs(d)
    r1 = max(2.0 - s, 0.0)
    r2 = max(1.0 - s, 0.0)
    slope = 0.5 * r1 * r1 - 2.0 * r2 * r2
    return -slope if d >= 0 else slope


@njit(**_OPTS)
def _features(x, inv_h, centre, silu, out):
    """A layer's features: out[b, 0, j] = silu[b, j] and out[b, 1 + c, j] = B_c(x[b, j])."""
    n_b, n_in = x.shape
    for b in range(n_b):
        for j in range(n_in):
            out[b, 0, j] = silu[b, j]
        for c in range(centre.shape[0]):
            for j in range(n_in):
                out[b, 1 + c, j] = _bspline(x[b, j] * inv_h[j] - centre[c, j])


@njit(**_OPTS)
def _spline_input_grad(g_feats, x, inv_h, centre, grad_x):
    """grad_x[b, j] = sum_c g_feats[b, 1 + c, j] dB_c/dx(x[b, j]): the bases' share of the input
    gradient, their slopes recomputed rather than kept from the forward pass (cheaper than the memory
    traffic of a (batch, G+k, in) tensor)."""
    n_b, n_in = x.shape
    for b in range(n_b):
        for j in range(n_in):
            grad_x[b, j] = 0.0
        for c in range(centre.shape[0]):
            for j in range(n_in):
                grad_x[b, j] += g_feats[b, 1 + c, j] * _bspline_slope(x[b, j] * inv_h[j] - centre[c, j])
        for j in range(n_in):
            grad_x[b, j] *= inv_h[j]


@njit(**_OPTS)
def _add_curves(x, inv_h, centre, w, y):
    """y[b, j] += sum_c w[c, j] B_c(x[b, j]): each input's own spline."""
    n_b, n_in = x.shape
    for b in range(n_b):
        for c in range(centre.shape[0]):
            for j in range(n_in):
                y[b, j] += w[c, j] * _bspline(x[b, j] * inv_h[j] - centre[c, j])


@njit(**_OPTS)
def _curves_backward(x, inv_h, centre, w, g, grad_w, want_x, grad_x):
    """`_add_curves`' gradients: in w (G+k, in), summed over the batch, and in x if asked."""
    n_b, n_in = x.shape
    grad_w[:] = 0.0
    for b in range(n_b):
        for c in range(centre.shape[0]):
            for j in range(n_in):
                grad_w[c, j] += g[b, j] * _bspline(x[b, j] * inv_h[j] - centre[c, j])
        if want_x:
            for j in range(n_in):
                grad_x[b, j] = 0.0
            for c in range(centre.shape[0]):
                for j in range(n_in):
                    grad_x[b, j] += g[b, j] * w[c, j] * _bspline_slope(x[b, j] * inv_h[j] - centre[c, j])
            for j in range(n_in):
                grad_x[b, j] *= inv_h[j]


def applies(x: torch.Tensor, k: int) -> bool:
    """Whether these kernels serve a spline of order k on x: cubic, on the CPU, float32 or float64."""
    return k == 3 and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


def _view(t: torch.Tensor) -> np.ndarray:
    """The tensor's memory as a NumPy array, without a copy when it is already contiguous."""
    return t.detach().contiguous().numpy()


def features(x, inv_h, centre, silu):
    """(batch, in) -> [silu | bases] as (batch, 1 + G+k, in). SiLU comes in from PyTorch, whose exp is
    vectorised."""
    out = x.new_empty(x.shape[0], 1 + centre.shape[0], x.shape[1])
    _features(_view(x), _view(inv_h), _view(centre), _view(silu), out.numpy())
    return out


def spline_input_grad(g_feats, x, inv_h, centre):
    """The bases' share of the input gradient (batch, in), from the gradient in `features`' output."""
    grad_x = x.new_empty(x.shape)
    _spline_input_grad(_view(g_feats), _view(x), _view(inv_h), _view(centre), grad_x.numpy())
    return grad_x


def add_curves(y, x, inv_h, centre, w):
    """y += the per-input splines sum_c w[c] B_c(x), w (G+k, in); y (batch, in) contiguous."""
    _add_curves(_view(x), _view(inv_h), _view(centre), _view(w), y.numpy())
    return y


def curves_backward(x, inv_h, centre, w, g, want_x: bool):
    """Gradients of `add_curves`' splines in w (G+k, in) and, if asked, x (batch, in)."""
    grad_w = w.new_empty(w.shape)
    grad_x = x.new_empty(x.shape) if want_x else x.new_empty(1, 1)
    _curves_backward(_view(x), _view(inv_h), _view(centre), _view(w), _view(g), grad_w.numpy(), want_x, grad_x.numpy())
    return grad_w, (grad_x if want_x else None)
