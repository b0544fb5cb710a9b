"""Vectorised B-spline KAN layers with pykan's semantics (Liu et al. 2024, "KAN").

Each edge i -> j carries  phi_ij(x) = scale_base[i,j] * silu(x) + scale_sp[i,j] * sum_c coef[i,j,c] B_c(x),
with B_c the order-k B-spline bases on a per-input grid of `num` intervals (extended by k knots each
side), and node j sums its edges, plus an optional bias (pykan's `node_bias`). Parameter names and
shapes are pykan's `KANLayer`'s, so weights move between the two unchanged (`from_pykan`, `to_pykan`).

Unlike pykan, the forward pass never builds (batch, out, in) tensors: the bases (coeff, batch, in) are
contracted with the weights in one matmul, as efficient-kan does, and the spline's derivative in x
comes from its closed form rather than autograd through the Cox-de Boor recursion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def extended_grid(knots: torch.Tensor, k: int) -> torch.Tensor:
    """Pad (in, num+1) interior knots with k uniformly spaced knots on each side -> (in, num+2k+1).

    Same spacing rule as pykan's `extend_grid`: the mean interval of the interior knots.
    """
    h = (knots[:, -1:] - knots[:, :1]) / (knots.shape[1] - 1)  # (in, 1)
    steps = torch.arange(1, k + 1, dtype=knots.dtype, device=knots.device)  # (k,)
    left = knots[:, :1] - h * steps.flip(0)  # (in, k)
    right = knots[:, -1:] + h * steps  # (in, k)
    return torch.cat([left, knots, right], dim=1)


def b_spline_bases(x: torch.Tensor, grid: torch.Tensor, k: int) -> torch.Tensor:
    """Cox-de Boor: x (batch, in), grid (in, G+2k+1) -> bases (batch, in, G+k) (pykan's `B_batch` layout)."""
    return basis_major_bases(x, grid, k).permute(1, 2, 0)


def basis_major_bases(x: torch.Tensor, grid: torch.Tensor, k: int) -> torch.Tensor:
    """The same bases laid out (G+k, batch, in), the layout the recursion is fast in.

    A zero-width knot span contributes nothing (pykan turns its 0/0 into 0 with nan_to_num).
    When x needs a gradient, the derivative comes from the closed form (order k-1 bases) instead of
    autograd through the recursion, whose slices cost a zero-filled copy each in the backward pass.
    """
    if x.requires_grad and torch.is_grad_enabled() and k > 0 and not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
        return _BSplineBases.apply(x, grid, k)
    return _bases_upto(x, grid, k)[-1]


def _bases_upto(x: torch.Tensor, grid: torch.Tensor, k: int) -> list[torch.Tensor]:
    """Bases of every order 0..k, each (G+2k-p, batch, in). With the basis axis leading, every operand
    is contiguous along `in`; x[..., None] against the knots would put a stride-0 axis innermost."""
    knots = grid.T.unsqueeze(1)  # (G+2k+1, 1, in)
    dist = x - knots  # (G+2k+1, batch, in): x - t_j
    bases = ((dist[:-1] >= 0) & (dist[1:] < 0)).to(x.dtype)  # (G+2k, batch, in)
    levels = [bases]
    for p in range(1, k + 1):
        left = _safe_reciprocal(knots[p:-1] - knots[: -(p + 1)])  # (G+2k-p, 1, in)
        right = _safe_reciprocal(knots[p + 1 :] - knots[1:-p])
        bases = dist[: -(p + 1)] * left * bases[:-1] - dist[p + 1 :] * right * bases[1:]
        levels.append(bases)  # (G+2k-p, batch, in)
    return levels


class _BSplineBases(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, grid, k):
        with torch.no_grad():
            levels = _bases_upto(x, grid, k)
        ctx.save_for_backward(levels[-2], grid)
        ctx.k = k
        return levels[-1]

    @staticmethod
    def backward(ctx, grad_out):
        lower, grid = ctx.saved_tensors  # lower: order k-1 bases (G+k+1, batch, in)
        k = ctx.k
        knots = grid.T.unsqueeze(1)  # (G+2k+1, 1, in)
        # dB_{i,k}/dx = k B_{i,k-1} / (t_{i+k} - t_i) - k B_{i+1,k-1} / (t_{i+k+1} - t_{i+1})
        left = k * _safe_reciprocal(knots[k:-1] - knots[: -(k + 1)])  # (G+k, 1, in)
        right = k * _safe_reciprocal(knots[k + 1 :] - knots[1:-k])
        slope = lower[:-1] * left - lower[1:] * right  # (G+k, batch, in)
        return (grad_out * slope).sum(0), None, None


def _safe_reciprocal(d: torch.Tensor) -> torch.Tensor:
    return torch.where(d != 0, 1.0 / torch.where(d != 0, d, torch.ones_like(d)), torch.zeros_like(d))


def _knots_from_samples(x_sorted: torch.Tensor, num: int, grid_eps: float) -> torch.Tensor:
    """num+1 knots per column: sample quantiles blended with a uniform grid over the range (pykan)."""
    batch = x_sorted.shape[0]
    ids = [int(batch / num * i) for i in range(num)] + [-1]
    adaptive = x_sorted[ids, :].T  # (in, num+1)
    h = (adaptive[:, -1:] - adaptive[:, :1]) / num
    uniform = adaptive[:, :1] + h * torch.arange(num + 1, dtype=x_sorted.dtype, device=x_sorted.device)
    return grid_eps * uniform + (1 - grid_eps) * adaptive


class KANLayer(nn.Module):
    """One KAN layer: in_dim -> out_dim, a learnable activation on every edge.

    Parameters (pykan names and shapes): grid (in, num+2k+1) buffer, coef (in, out, num+k),
    scale_base (in, out), scale_sp (in, out), bias (out,) = pykan's node_bias.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num: int = 5,
        k: int = 3,
        *,
        noise_scale: float = 0.5,
        scale_base_mu: float = 0.0,
        scale_base_sigma: float = 1.0,
        scale_sp: float = 1.0,
        grid_eps: float = 0.02,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        bias: bool = True,
    ):
        super().__init__()
        if in_dim < 1 or out_dim < 1 or num < 1 or k < 0:
            raise ValueError(f"KANLayer needs in_dim, out_dim, num >= 1 and k >= 0; got {in_dim}, {out_dim}, {num}, {k}")
        self.in_dim, self.out_dim, self.num, self.k = in_dim, out_dim, num, k
        self.grid_eps = grid_eps
        knots = torch.linspace(grid_range[0], grid_range[1], num + 1).expand(in_dim, num + 1)
        self.register_buffer("grid", extended_grid(knots.contiguous(), k))
        # pykan fits noisy curves at the knots; coefficients of that size are equivalent and need no solve.
        self.coef = nn.Parameter((torch.rand(in_dim, out_dim, num + k) - 0.5) * noise_scale / num)
        root = math.sqrt(in_dim)
        self.scale_base = nn.Parameter(
            scale_base_mu / root + scale_base_sigma * (torch.rand(in_dim, out_dim) * 2 - 1) / root
        )
        self.scale_sp = nn.Parameter(torch.full((in_dim, out_dim), scale_sp / root))
        self.bias = nn.Parameter(torch.zeros(out_dim)) if bias else None

    def extra_repr(self) -> str:
        return f"in={self.in_dim}, out={self.out_dim}, num={self.num}, k={self.k}"

    def spline_weight(self) -> torch.Tensor:
        """scale_sp folded into the coefficients: (in * (num+k), out), ready for one matmul."""
        w = self.coef * self.scale_sp.unsqueeze(-1)  # (in, out, coeff)
        return w.transpose(1, 2).reshape(-1, self.out_dim)  # (in*coeff, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x = x.reshape(-1, self.in_dim)  # (batch, in)
        bases = basis_major_bases(x, self.grid, self.k)  # (coeff, batch, in)
        flat = bases.permute(1, 2, 0).reshape(x.shape[0], -1)  # (batch, in*coeff)
        y = F.silu(x) @ self.scale_base + flat @ self.spline_weight()  # (batch, out)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_dim)

    def spline_curves(self, x: torch.Tensor) -> torch.Tensor:
        """The unscaled spline part per edge, (batch, in, out): only for grid refits, never the forward pass."""
        bases = b_spline_bases(x, self.grid, self.k)  # (batch, in, coeff)
        return torch.einsum("bic,ioc->bio", bases, self.coef)

    def _fit_coef(self, x: torch.Tensor, curves: torch.Tensor) -> None:
        """Least-squares coefficients on the current grid reproducing curves (batch, in, out) at x (batch, in)."""
        a = b_spline_bases(x, self.grid, self.k).permute(1, 0, 2)  # (in, batch, coeff)
        b = curves.permute(1, 0, 2)  # (in, batch, out)
        self.coef.data = torch.linalg.lstsq(a, b).solution.permute(0, 2, 1).contiguous()  # (in, out, coeff)

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor) -> None:
        """Move the knots to the data (pykan's `update_grid_from_samples`) keeping the curves.

        Knots sit at sample quantiles blended with a uniform grid over the sample range by `grid_eps`;
        the coefficients are refit by least squares so each edge's function is unchanged where data lie.
        """
        x = x.reshape(-1, self.in_dim)
        x_sorted = torch.sort(x, dim=0).values  # (batch, in)
        curves = self.spline_curves(x_sorted)  # (batch, in, out)
        self.grid.copy_(extended_grid(_knots_from_samples(x_sorted, self.num, self.grid_eps), self.k))
        self._fit_coef(x_sorted, curves)

    @torch.no_grad()
    def refine(self, num: int, x: torch.Tensor) -> "KANLayer":
        """A copy on a finer (or coarser) grid of `num` intervals: pykan's grid extension.

        The new knots interpolate the old interior knots (so a data-adapted grid stays adapted), and the
        coefficients are refit to the old curves at the samples x (batch, in).
        """
        x = torch.sort(x.reshape(-1, self.in_dim), dim=0).values
        new = KANLayer(self.in_dim, self.out_dim, num, self.k, grid_eps=self.grid_eps, bias=self.bias is not None)
        new = new.to(self.grid.device, self.grid.dtype)
        old_knots = self.grid[:, self.k : self.grid.shape[1] - self.k]  # (in, old_num+1)
        pos = torch.linspace(0, self.num, num + 1, dtype=x.dtype, device=x.device)  # fractional old-knot index
        lo = pos.floor().long().clamp(max=self.num - 1)
        frac = pos - lo
        knots = old_knots[:, lo] * (1 - frac) + old_knots[:, lo + 1] * frac  # (in, num+1)
        new.grid.copy_(extended_grid(knots, self.k))
        new._fit_coef(x, self.spline_curves(x))
        new.scale_base.data.copy_(self.scale_base)
        new.scale_sp.data.copy_(self.scale_sp)
        if self.bias is not None:
            new.bias.data.copy_(self.bias)
        return new

    # -- pykan interchange --------------------------------------------------------------------------
    @classmethod
    def from_pykan(cls, layer, bias: torch.Tensor | None = None) -> "KANLayer":
        """Copy a pykan `KANLayer` (its mask folded into scale_base/scale_sp)."""
        mask = layer.mask.detach()
        out = cls(layer.in_dim, layer.out_dim, layer.num, layer.k, grid_eps=layer.grid_eps, bias=True)
        out = out.to(layer.grid.device, layer.grid.dtype)
        with torch.no_grad():
            out.grid.copy_(layer.grid)
            out.coef.copy_(layer.coef)
            out.scale_base.copy_(layer.scale_base * mask)
            out.scale_sp.copy_(layer.scale_sp * mask)
            out.bias.copy_(torch.zeros(layer.out_dim) if bias is None else bias)
        return out

    @torch.no_grad()
    def copy_into_pykan(self, layer) -> None:
        layer.grid.data.copy_(self.grid)
        layer.coef.data.copy_(self.coef)
        layer.scale_base.data.copy_(self.scale_base)
        layer.scale_sp.data.copy_(self.scale_sp)
        layer.mask.data.fill_(1.0)
        layer.grid_eps = self.grid_eps


class KANActivation(nn.Module):
    """Per-feature learnable activations: a KAN layer with only its diagonal edges (dim -> dim).

    y_i = scale_base_i * silu(x_i) + scale_sp_i * sum_c coef_ic B_c(x_i), same spline semantics and grid
    update as `KANLayer` (equal to a pykan KANLayer whose mask keeps only the diagonal).
    """

    def __init__(self, dim: int, num: int = 5, k: int = 3, *, grid_eps: float = 0.02,
                 grid_range: tuple[float, float] = (-1.0, 1.0), noise_scale: float = 0.5):
        super().__init__()
        self.dim, self.num, self.k, self.grid_eps = dim, num, k, grid_eps
        knots = torch.linspace(grid_range[0], grid_range[1], num + 1).expand(dim, num + 1)
        self.register_buffer("grid", extended_grid(knots.contiguous(), k))
        self.coef = nn.Parameter((torch.rand(dim, num + k) - 0.5) * noise_scale / num)
        self.scale_base = nn.Parameter(torch.ones(dim))
        self.scale_sp = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bases = basis_major_bases(x, self.grid, self.k)  # (coeff, batch, dim)
        spline = (bases * self.coef.T.unsqueeze(1)).sum(0)  # (batch, dim)
        return self.scale_base * F.silu(x) + self.scale_sp * spline

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor) -> None:
        """pykan's grid update, per feature: knots to the data, coefficients refit to keep the curves."""
        x_sorted = torch.sort(x, dim=0).values  # (batch, dim)
        curves = (b_spline_bases(x_sorted, self.grid, self.k) * self.coef).sum(-1)  # (batch, dim)
        self.grid.copy_(extended_grid(_knots_from_samples(x_sorted, self.num, self.grid_eps), self.k))
        a = b_spline_bases(x_sorted, self.grid, self.k).permute(1, 0, 2)  # (dim, batch, coeff)
        self.coef.data = torch.linalg.lstsq(a, curves.T.unsqueeze(-1)).solution[..., 0].contiguous()  # (dim, coeff)


class KAN(nn.Module):
    """A stack of KAN layers, widths [n0, n1, ..., nL] (pykan's `width` without multiplication nodes)."""

    def __init__(self, widths: Sequence[int], num: int = 5, k: int = 3, **layer_kwargs):
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"a KAN needs at least input and output widths, got {list(widths)}")
        self.widths = [int(w) for w in widths]
        self.layers = nn.ModuleList(
            KANLayer(a, b, num, k, **layer_kwargs) for a, b in zip(self.widths[:-1], self.widths[1:])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor) -> None:
        """Layer by layer, each on the activations the already-updated layers below it produce."""
        for layer in self.layers:
            layer.update_grid(x)
            x = layer(x)

    @torch.no_grad()
    def refine(self, num: int, x: torch.Tensor) -> None:
        """Extend every layer's grid to `num` intervals in place, keeping the function (pykan `refine`)."""
        for i, layer in enumerate(self.layers):
            self.layers[i] = layer.refine(num, x)
            x = layer(x)


def to_pykan(layers: KAN | Sequence[KANLayer], *, ckpt_path: str | Path | None = None, **kwargs):
    """Build a pykan `MultKAN` computing the same function as `layers`, for pykan's plotting/symbolics.

    pykan saves a checkpoint to ./model on construction unless told not to; here it only saves when
    `ckpt_path` is given. Extra kwargs go to `MultKAN` (e.g. save_act, symbolic_enabled).
    """
    from kan.MultKAN import MultKAN  # optional heavy import: only the interchange needs pykan

    stack = list(layers.layers if isinstance(layers, KAN) else layers)
    widths = [stack[0].in_dim] + [layer.out_dim for layer in stack]
    for a, b in zip(stack[:-1], stack[1:]):
        if a.out_dim != b.in_dim:
            raise ValueError(f"layers do not chain: {a.out_dim} outputs feed {b.in_dim} inputs")
    save = ckpt_path is not None
    model = MultKAN(
        width=list(widths),
        grid=[layer.num for layer in stack],
        k=[layer.k for layer in stack],
        auto_save=save,
        ckpt_path=str(ckpt_path) if save else "./model",
        device=str(stack[0].grid.device),
        **kwargs,
    )
    model = model.to(stack[0].grid.device)
    with torch.no_grad():
        for l, layer in enumerate(stack):
            layer.copy_into_pykan(model.act_fun[l])
            model.node_bias[l].data.copy_(layer.bias if layer.bias is not None else torch.zeros(layer.out_dim))
    return model


def from_pykan(model) -> KAN:
    """A `KAN` copy of a pykan `MultKAN` without multiplication nodes, symbolic branches or affine terms."""
    if any(w[1] for w in model.width):
        raise ValueError("pykan models with multiplication nodes have no KAN-stack equivalent")
    stack = KAN([w[0] for w in model.width], num=1, k=0)
    stack.layers = nn.ModuleList(
        KANLayer.from_pykan(model.act_fun[l], bias=model.node_bias[l].detach()) for l in range(model.depth)
    )
    return stack
