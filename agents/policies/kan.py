"""Vectorised B-spline KAN layers with pykan's semantics (Liu et al. 2024, "KAN").

Each edge i -> j carries  phi_ij(x) = scale_base[i,j] * silu(x) + scale_sp[i,j] * sum_c coef[i,j,c] B_c(x),
with B_c the order-k B-spline bases on a per-input grid of `num` intervals (extended by k knots each
side), and node j sums its edges, plus an optional bias (pykan's `node_bias`). Parameter names and
shapes are pykan's `KANLayer`'s, so weights move between the two unchanged (`from_pykan`, `to_pykan`).

Unlike pykan, the forward pass never builds (batch, out, in) tensors: the bases (coeff, batch, in) are
contracted with the weights in one matmul, as efficient-kan does, and the spline's derivative in x
comes from its closed form rather than autograd through the Cox-de Boor recursion.

Training runs on fast paths, each one autograd node with a hand-written backward, because at the
policy's sizes per-operator overhead, not arithmetic, sets the step time:
- uniform knots (pykan's initial grid, grid updates with grid_eps=1): every basis is the same cardinal
  B-spline, shifted, so all of them follow in closed form (`UniformGrid`, `_UniformLayer`,
  `_UniformActivation`); for cubic splines on the CPU, compiled single-pass kernels
  (`spline_kernels`) replace the closed form's dozen PyTorch passes;
- any knots (grids fitted to data): the bases as per-cell polynomials computed once per grid
  (`CellPieces`), found by a binned cell lookup (`_BinLookup`), for `_CellLayer` and `_CellActivation`.
The Cox-de Boor recursion (`b_spline_bases`) stays the reference, the grid refits' tool and what
tracing (ONNX export) records; tests hold the fast paths to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from facetwin.agents.policies import spline_kernels


_silu_backward = torch.ops.aten.silu_backward.default  # looked up once: torch.ops attribute access is slow


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


class UniformGrid:
    """The uniform-knot fast path: on equally spaced knots (pykan's initial grid, a grid updated with
    grid_eps=1, any refinement of those) basis c is one cardinal B-spline shifted to its knots, a
    function of the distance d = u - c - (k+1)/2 from its centre (u: x in knot intervals from t_0).
    Its symmetric truncated-power form,

        B(d) = sum_j (-1)^j C(k+1, j) / k! * relu((k+1)/2 - |d| - j)^k,   j < (k+1)/2

    (two terms for cubic splines), gives all G+k bases of a batch in a handful of elementwise passes
    over a dense (batch, G+k, in) tensor: no cell search, no scatter, and the layer is one matmul each
    way (`_UniformLayer`). Outside the extended grid every term is 0, as pykan's bases are.
    """

    def __init__(self, grid: torch.Tensor, k: int):
        self.k = k
        self.n_basis = grid.shape[1] - 1 - k  # G + k
        self.inv_h = ((grid.shape[1] - 1) / (grid[:, -1] - grid[:, 0])).contiguous()  # (in,)
        c = torch.arange(self.n_basis, dtype=grid.dtype, device=grid.device)
        self.centre = (grid[:, :1] * self.inv_h[:, None] + c + (k + 1) / 2).T.contiguous()  # (G+k, in), in u
        self.terms = [((k + 1) / 2 - j, (-1) ** j * math.comb(k + 1, j) / math.factorial(k))
                      for j in range(math.ceil((k + 1) / 2))]  # (reach, weight) of each relu term

    def bases(self, x: torch.Tensor, slopes: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (batch, in) -> the bases (batch, G+k, in) and, if asked, their slopes in x up to the factor
        -inv_h (`input_grad` applies it). Basis-major within a sample, so every elementwise pass runs
        along the contiguous `in` axis; the slopes share the bases' relu terms."""
        d = (x * self.inv_h).unsqueeze(1) - self.centre  # each basis' centre to x, in knot intervals
        if self.k == 0:  # the indicator of [t_c, t_c+1), half-open as pykan's
            return ((d >= -0.5) & (d < 0.5)).to(d.dtype), (torch.zeros_like(d) if slopes else None)
        s = d.abs()
        out = slope = None
        for reach, weight in self.terms:
            r = torch.clamp_(reach - s, min=0)
            if slopes:  # d/d|d| of weight * r^k, sign from d below
                rk1 = r.pow(self.k - 1) if self.k > 1 else (r > 0).to(d.dtype)
                slope = rk1.mul_(weight * self.k) if slope is None else slope.add_(rk1, alpha=weight * self.k)
            r = r.pow_(self.k)
            out = r.mul_(weight) if out is None else out.add_(r, alpha=weight)
        return out, (torch.copysign(slope, d) if slopes else None)

    def input_grad(self, g_bases: torch.Tensor, slopes: torch.Tensor) -> torch.Tensor:
        """The gradient in x (batch, in) from the gradient in the bases (batch, G+k, in)."""
        return (g_bases * slopes).sum(1).mul_(-self.inv_h)  # B falls as |d| grows: dB/dx = -sign(d) |B'| inv_h

    def features(self, x: torch.Tensor, slopes: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A layer's features [silu(x) | the bases] (batch, 1+G+k, in), and the bases' slopes if asked.
        Cubic splines on the CPU take the compiled single-pass kernel (`spline_kernels`), whose input
        gradient recomputes the slopes: None for those."""
        if spline_kernels.applies(x, self.k):
            return spline_kernels.features(x, self.inv_h, self.centre, F.silu(x)), None
        bases, slope = self.bases(x, slopes)
        return torch.cat([F.silu(x).unsqueeze(1), bases], 1), slope

    def features_input_grad(self, g_feats: torch.Tensor, slopes: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        """The gradient in x from the gradient in `features(x)`."""
        if slopes is None:
            grad = spline_kernels.spline_input_grad(g_feats, x, self.inv_h, self.centre)
        else:
            grad = self.input_grad(g_feats[:, 1:], slopes)
        return grad.add_(_silu_backward(g_feats[:, 0], x))


class _UniformLayer(torch.autograd.Function):
    """KANLayer.forward on a uniform grid: [silu(x) | bases(x)] @ [scale_base; coef * scale_sp] + bias,
    the features (batch, (1+G+k)*in) in closed form, one matmul each way."""

    @staticmethod
    def forward(ctx, x, coef, scale_base, scale_sp, bias, grid: UniformGrid):
        n, n_out = x.shape[0], coef.shape[1]
        feats, slopes = grid.features(x, slopes=ctx.needs_input_grad[0])
        flat = feats.view(n, -1)
        w = torch.cat([scale_base.unsqueeze(0), (coef * scale_sp.unsqueeze(-1)).permute(2, 0, 1)]).view(-1, n_out)
        y = flat @ w if bias is None else torch.addmm(bias, flat, w)
        ctx.save_for_backward(x, slopes, flat, w, coef, scale_sp)
        ctx.grid = grid
        return y

    @staticmethod
    def backward(ctx, g):
        x, slopes, flat, w, coef, scale_sp = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad_x = grad_coef = grad_base = grad_sp = grad_bias = None
        if needs[1] or needs[2] or needs[3]:
            g_w = (flat.T @ g).view(-1, *coef.shape[:2])  # (1+G+k, in, out)
            grad_base = g_w[0]
            spline = g_w[1:].permute(1, 2, 0)  # (in, out, G+k): of coef * scale_sp
            grad_coef = spline * scale_sp.unsqueeze(-1)
            grad_sp = (spline * coef).sum(-1)
        if needs[4]:
            grad_bias = g.sum(0)
        if needs[0]:
            grad_x = ctx.grid.features_input_grad((g @ w.T).view(x.shape[0], -1, x.shape[1]), slopes, x)
        return grad_x, grad_coef, grad_base, grad_sp, grad_bias, None


class _UniformActivation(torch.autograd.Function):
    """KANActivation.forward on a uniform grid: each input's own curve from its closed-form bases."""

    @staticmethod
    def forward(ctx, x, coef, scale_base, scale_sp, grid: UniformGrid):
        w = (coef * scale_sp.unsqueeze(-1)).T.contiguous()  # (G+k, in)
        silu = F.silu(x)
        ctx.grid = grid
        if spline_kernels.applies(x, grid.k):  # one pass, and no (batch, G+k, in) tensor kept
            ctx.save_for_backward(x, w, coef, scale_base, scale_sp, silu)
            return spline_kernels.add_curves(silu * scale_base, x, grid.inv_h, grid.centre, w)
        bases, slopes = grid.bases(x, slopes=ctx.needs_input_grad[0])  # (batch, G+k, in)
        ctx.save_for_backward(x, w, coef, scale_base, scale_sp, silu, bases, slopes)
        return torch.addcmul((bases * w).sum(1), silu, scale_base)

    @staticmethod
    def backward(ctx, g):
        x, w, coef, scale_base, scale_sp, silu, *torch_path = ctx.saved_tensors
        grid, needs = ctx.grid, ctx.needs_input_grad
        grad_x = grad_coef = grad_base = grad_sp = None
        if not torch_path:
            g_w, grad_x = spline_kernels.curves_backward(x, grid.inv_h, grid.centre, w, g, needs[0])
            g_w = g_w.T  # (in, G+k): of coef * scale_sp
        else:
            bases, slopes = torch_path
            g_w = (bases * g.unsqueeze(1)).sum(0).T
            if needs[0]:
                grad_x = grid.input_grad(g.unsqueeze(1) * w, slopes)
        if needs[0]:
            grad_x += _silu_backward(g * scale_base, x)
        if needs[1] or needs[3]:
            grad_coef = g_w * scale_sp.unsqueeze(-1)
            grad_sp = (g_w * coef).sum(-1)
        if needs[2]:
            grad_base = (g * silu).sum(0)
        return grad_x, grad_coef, grad_base, grad_sp, None


def _parameter_grads(needs, g, flat, silu, coef, scale_sp):
    """Gradients of a cell-path layer's coefficients, base and spline scales and bias, from its (batch,
    (G+k)*in) bases."""
    n_in, n_out = coef.shape[0], coef.shape[1]
    grad_coef = grad_base = grad_sp = grad_bias = None
    if needs[1] or needs[3]:
        gw = (flat.T @ g).view(-1, n_in, n_out).permute(1, 2, 0)  # (in, out, G+k)
        grad_coef = gw * scale_sp.unsqueeze(-1)
        grad_sp = (gw * coef).sum(-1)
    if needs[2]:
        grad_base = silu.T @ g
    if needs[4]:
        grad_bias = g.sum(0)
    return grad_coef, grad_base, grad_sp, grad_bias


def uniform_grid(grid: torch.Tensor, k: int, tol: float = 1e-4) -> UniformGrid | None:
    """A `UniformGrid` when every input's knots are equally spaced (to `tol` of the spacing), else None."""
    if grid.shape[1] < 2:
        return None
    gaps = grid[:, 1:] - grid[:, :-1]
    mean = gaps.mean(1, keepdim=True)
    if not bool(((gaps - mean).abs() <= tol * mean.abs()).all() and (mean > 0).all()):
        return None
    return UniformGrid(grid, k)


class CellPieces:
    """The B-spline bases as polynomials per knot cell, for any knots (uniform or adapted to data).

    In cell c of an input's grid (t_c <= x < t_c+1) only k+1 bases are nonzero, each a polynomial of
    degree k in the cell position f = (x - t_c) / (t_c+1 - t_c). Their coefficients (`table`, computed
    once per grid by the Cox-de Boor recursion at k+1 points per cell) turn a forward pass into a cell
    lookup, one gather and a Horner evaluation, and the x-derivative is the differentiated polynomial.
    Cells are numbered 1..G+2k; 0 and G+2k+1 are the outside, where every basis is zero (pykan's bases
    vanish outside the extended grid too). Local basis m of cell c is basis c-1-k+m, i.e. position
    c+m of the basis axis padded by k+1 zeros each side (width G+3k+2).

    Gathered tensors are laid out (rows, batch*in): every elementwise op runs along a contiguous axis.
    """

    def __init__(self, grid: torch.Tensor, k: int, max_bins: int = 4096):
        self.k, self.n_in = k, grid.shape[0]
        self.cells = grid.shape[1] + 1  # G+2k real cells and two outside ones
        self.width = grid.shape[1] + k + 1  # padded basis axis, G+3k+2
        with torch.no_grad():
            g = grid.detach().double()
            t, h = g[:, :-1], g[:, 1:] - g[:, :-1]  # (in, G+2k)
            samples = (torch.arange(k + 1, dtype=g.dtype, device=g.device) + 0.5) / (k + 1)
            xs = (t.unsqueeze(-1) + h.unsqueeze(-1) * samples).reshape(self.n_in, -1)  # (in, cells*(k+1))
            bases = F.pad(_bases_upto(xs.T, g, k)[-1], (0, 0, 0, 0, k, k))  # (G+3k, samples, in): padded by k
            n = t.shape[1]
            pos = torch.arange(n, device=g.device)[:, None] + torch.arange(k + 1, device=g.device)  # (cell, m)
            vals = bases.reshape(bases.shape[0], n, k + 1, self.n_in)[pos, torch.arange(n)[:, None]]  # (cell, m, sample, in)
            vander = samples.unsqueeze(-1) ** torch.arange(k + 1, dtype=g.dtype, device=g.device)  # (sample, power)
            poly = torch.linalg.solve(vander, vals.permute(0, 3, 2, 1))  # (cell, in, power, m)
            poly = poly * (h.T > 0)[:, :, None, None]  # zero-width cells hold no points
            inv_h = torch.where(h > 0, 1 / torch.where(h > 0, h, 1.0), 0.0)
            pad = lambda a: F.pad(a, (1, 1))  # noqa: E731  outside cells, all zero
            self.poly = pad(poly.permute(2, 3, 1, 0)).to(grid.dtype)  # (power, m, in, cells)
            self.t = pad(t).to(grid.dtype)  # (in, cells)
            self.inv_h = pad(inv_h).to(grid.dtype)
            self.basis_table = torch.cat([self.poly.reshape(-1, self.n_in * self.cells),
                                          self.t.reshape(1, -1), self.inv_h.reshape(1, -1)])
            # curve_map[i]: coefficients of input i (G+k) -> its curve's per-cell polynomials (power, cell)
            curve = poly.new_zeros(self.n_in, self.width, k + 1, self.cells)
            for m in range(k + 1):
                for c in range(self.cells):
                    if c + m < self.width:
                        curve[:, c + m, :, c] += self.poly[:, m, :, c].T.to(poly.dtype)
            self.curve_map = curve[:, k + 1 : self.width - k - 1].reshape(self.n_in, -1, (k + 1) * self.cells)
            self.curve_map = self.curve_map.to(grid.dtype).contiguous()
            self.cell_frame = torch.stack([self.t, self.inv_h])  # (2, in, cells)
            self.knots = grid.detach().T.unsqueeze(1).contiguous()  # (G+2k+1, 1, in)
            self.bins = _BinLookup.build(g, self.cells, max_bins, grid.dtype) if max_bins else None
            self.row_base = self.cells * torch.arange(self.n_in, device=grid.device)  # (in,)
            self.offsets = torch.arange(k + 1, device=grid.device)[:, None]  # (k+1, 1)

    def locate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (batch, in) -> cell (batch*in,) numbered 0..G+2k+1, and its row in the (rows, in*cells) tables."""
        if self.bins is not None:
            row = self.bins.rows(x)
            return (row.view(x.shape) - self.row_base).reshape(-1), row
        cell = (x >= self.knots).sum(0).reshape(-1)  # knots at or below x: the cell, 0 outside left
        return cell, (cell.view(x.shape) + self.row_base).reshape(-1)

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """`locate`'s rows only."""
        return self.bins.rows(x) if self.bins is not None else self.locate(x)[1]

    def frac(self, x: torch.Tensor, picked: torch.Tensor) -> torch.Tensor:
        """Position in the cell (batch*in,) from the gathered (.., t, inv_h) rows."""
        return (x.reshape(-1) - picked[-2]) * picked[-1]

    @staticmethod
    def horner(coef: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """sum_p coef[p] f^p for coef (powers, rows..., n) and f (n,)."""
        out = coef[-1]
        for p in range(len(coef) - 2, -1, -1):
            out = torch.addcmul(coef[p], out, f)
        return out

    def slope_coef(self, coef: torch.Tensor) -> torch.Tensor:
        powers = torch.arange(1, self.k + 1, dtype=coef.dtype, device=coef.device)
        return coef[1:] * powers.reshape(-1, *([1] * (coef.dim() - 1)))


class _BinLookup:
    """Finds each point's knot cell without comparing it to every knot: the grid's range is cut into
    equal bins, narrower than the closest two knots, so at most one knot lies inside a bin and the
    cell is the bin's count of knots below it plus one comparison. Grid updates blend quantiles with a
    uniform grid (grid_eps > 0), which keeps knots apart; grids whose knots nearly coincide get no
    lookup (`build` returns None) and are searched by comparison.
    """

    def __init__(self, lo, inv_w, n_bins, base, inside):
        self.lo, self.inv_w, self.n_bins, self.base, self.inside = lo, inv_w, n_bins, base, inside
        self.first = 1 + (n_bins + 2) * torch.arange(len(lo), device=lo.device)  # each input's bin -1, shifted

    @classmethod
    def build(cls, grid: torch.Tensor, cells: int, max_bins: int, dtype: torch.dtype) -> "_BinLookup | None":
        """grid (in, n_knots) float64 -> the lookup in `dtype`, or None when the knots are too close for it."""
        n_in, n_knots = grid.shape
        lo, hi = grid[:, 0], grid[:, -1]
        gaps = (grid[:, 1:] - grid[:, :-1]).min(1).values
        if not bool(((hi > lo) & (gaps > 0)).all()):
            return None
        n_bins = int(torch.ceil(((hi - lo) / gaps).max()).item()) * 2 + 1
        if n_bins > max_bins:
            return None
        steps = torch.arange(n_bins + 1, dtype=grid.dtype, device=grid.device) / n_bins
        edges = lo[:, None] + (hi - lo)[:, None] * steps  # (in, bins+1)
        below = torch.searchsorted(grid, edges[:, :-1].contiguous(), right=True)  # knots at or below each bin's left edge
        above = torch.searchsorted(grid, edges[:, 1:].contiguous(), right=False)  # knots below its right edge
        if bool((above - below > 1).any()):
            return None
        inside = torch.where(above > below, grid.gather(1, below.clamp(max=n_knots - 1)), torch.inf)
        # bins -1 (left of the grid) and n_bins (at or right of its last knot) frame the table
        row = torch.arange(n_in, device=grid.device)[:, None] * cells
        base = torch.cat([row, below + row, row + n_knots], 1)  # (in, bins+2): row of the cell at the bin's left edge
        inside = F.pad(inside, (1, 1), value=torch.inf)
        return cls(lo.to(dtype), (n_bins / (hi - lo)).to(dtype), n_bins,
                   base.reshape(-1), inside.reshape(-1).to(dtype))

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, in) -> row (batch*in,) of each point's cell in the (rows, in*cells) tables."""
        b = torch.floor((x - self.lo) * self.inv_w).clamp_(-1, self.n_bins).long()
        b = (b + self.first).reshape(-1)
        return self.base.index_select(0, b) + (x.reshape(-1) >= self.inside.index_select(0, b))


class _CellActivation(torch.autograd.Function):
    """KANActivation.forward from per-cell polynomials: each input's curve as polynomials per cell
    (one small matmul with the constant `curve_map`), then one gather of each point's polynomial."""

    @staticmethod
    def forward(ctx, x, coef, scale_base, scale_sp, pieces: CellPieces):
        k, n_in, cells = pieces.k, pieces.n_in, pieces.cells
        poly = torch.bmm((coef * scale_sp.unsqueeze(-1)).unsqueeze(1), pieces.curve_map)  # (in, 1, power*cells)
        table = torch.cat([poly.view(n_in, k + 1, cells).transpose(0, 1), pieces.cell_frame]).view(k + 3, -1)
        row = pieces.rows(x)
        picked = table.index_select(1, row)  # (power..., t, inv_h) x (batch*in)
        f = (x.reshape(-1) - picked[-2]).mul_(picked[-1])
        silu = F.silu(x)
        ctx.save_for_backward(x, row, picked, f, silu, coef, scale_base, scale_sp)
        ctx.pieces = pieces
        return torch.addcmul(pieces.horner(picked[: k + 1], f).view(x.shape), silu, scale_base)

    @staticmethod
    def backward(ctx, g):
        x, row, picked, f, silu, coef, scale_base, scale_sp = ctx.saved_tensors
        pieces = ctx.pieces
        k, n_in, cells = pieces.k, pieces.n_in, pieces.cells
        grad_x = grad_coef = grad_base = grad_sp = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[3]:
            powers = g.new_empty(k + 1, f.shape[0])  # g f^p: the gradient of each gathered polynomial row
            powers[0] = g.reshape(-1)
            for p in range(1, k + 1):
                torch.mul(powers[p - 1], f, out=powers[p])
            g_poly = g.new_zeros(k + 1, n_in * cells).index_add_(1, row, powers)
            g_poly = g_poly.view(k + 1, n_in, cells).transpose(0, 1).reshape(n_in, 1, -1)
            g_coef = torch.bmm(g_poly, pieces.curve_map.transpose(1, 2)).view(n_in, -1)  # of coef * scale_sp
            grad_coef = g_coef * scale_sp.unsqueeze(-1)
            grad_sp = (g_coef * coef).sum(-1)
        if ctx.needs_input_grad[2]:
            grad_base = (g * silu).sum(0)
        if ctx.needs_input_grad[0]:
            grad_x = _silu_backward(g * scale_base, x)
            if k:
                slope = picked[k] * k  # d/df of the cell polynomial, by Horner
                for p in range(k - 1, 0, -1):
                    slope = torch.addcmul(picked[p] * p, slope, f)
                grad_x.addcmul_(g, slope.mul_(picked[-1]).view(x.shape))
        return grad_x, grad_coef, grad_base, grad_sp, None


class _CellLayer(torch.autograd.Function):
    """KANLayer.forward from per-cell polynomials: each point's k+1 local bases, scattered into the
    dense (batch, in*(G+k)) basis matrix, one matmul each way."""

    @staticmethod
    def forward(ctx, x, coef, scale_base, scale_sp, bias, pieces: CellPieces):
        n, n_in, n_out, k = x.shape[0], coef.shape[0], coef.shape[1], pieces.k
        cell, row = pieces.locate(x)
        picked = pieces.basis_table.index_select(1, row)  # ((k+1)^2 + 2, batch*in)
        f = pieces.frac(x, picked)
        local = pieces.horner(picked[:-2].view(k + 1, k + 1, -1), f)  # (m, batch*in)
        idx = (cell + pieces.offsets).view(k + 1, n, n_in)
        full = x.new_zeros(pieces.width, n, n_in).scatter_(0, idx, local.view(k + 1, n, n_in))
        flat = full[k + 1 : pieces.width - k - 1].permute(1, 0, 2).reshape(n, -1)  # (batch, (G+k)*in)
        w = (coef * scale_sp.unsqueeze(-1)).permute(2, 0, 1).reshape(-1, n_out)  # ((G+k)*in, out)
        silu = F.silu(x)
        y = torch.addmm(silu @ scale_base, flat, w)
        if bias is not None:
            y += bias
        ctx.save_for_backward(x, idx, picked, f, flat, silu, w, coef, scale_base, scale_sp)
        ctx.pieces = pieces
        return y

    @staticmethod
    def backward(ctx, g):
        x, idx, picked, f, flat, silu, w, coef, scale_base, scale_sp = ctx.saved_tensors
        pieces = ctx.pieces
        n, n_in, k = x.shape[0], coef.shape[0], pieces.k
        grad_x = None
        grad_coef, grad_base, grad_sp, grad_bias = _parameter_grads(ctx.needs_input_grad, g, flat, silu, coef, scale_sp)
        if ctx.needs_input_grad[0]:
            g_full = g.new_zeros(pieces.width, n, n_in)
            g_full[k + 1 : pieces.width - k - 1] = (g @ w.T).reshape(n, -1, n_in).permute(1, 0, 2)
            g_local = g_full.gather(0, idx).view(k + 1, -1)  # (m, batch*in)
            if k:
                slope = pieces.horner(pieces.slope_coef(picked[:-2].view(k + 1, k + 1, -1)), f) * picked[-1]
                grad_x = (g_local * slope).sum(0).view(x.shape)
            else:
                grad_x = torch.zeros_like(x)
            grad_x += _silu_backward(g @ scale_base.T, x)
        return grad_x, grad_coef, grad_base, grad_sp, grad_bias, None


class _GridCache:
    """What a grid buffer's fast paths need, rebuilt only when the buffer changes (update_grid,
    load_state_dict, .to()): building it costs a device sync and a few dozen small ops."""

    def __init__(self):
        self.grid: torch.Tensor | None = None  # held, so its identity cannot pass to a new tensor
        self.key = None
        self.value: tuple[CellPieces, UniformGrid | None] | None = None

    def get(self, grid: torch.Tensor, k: int) -> tuple[CellPieces, UniformGrid | None]:
        key = (grid._version, k)  # in-place changes (copy_, load_state_dict) bump the version
        if grid is not self.grid or key != self.key:
            self.grid, self.key = grid, key
            self.value = (CellPieces(grid, k), uniform_grid(grid.detach(), k))
        return self.value


def _use_fast_path() -> bool:
    # tracing (ONNX export) records the general recursion, which needs no data-dependent indexing
    return not (torch.jit.is_tracing() or torch.compiler.is_compiling())


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


def _knots_from_samples(x_sorted: torch.Tensor, num: int, grid_eps: float, grid: torch.Tensor, k: int) -> torch.Tensor:
    """num+1 knots per column: sample quantiles blended with a uniform grid over the range (pykan).

    A column whose samples are all equal (a coefficient the data never moves) keeps its knots from
    `grid` (in, num+2k+1): pykan would collapse them onto the one value, a degenerate grid that
    also takes the layer off its closed-form uniform path."""
    batch = x_sorted.shape[0]
    ids = [int(batch / num * i) for i in range(num)] + [-1]
    adaptive = x_sorted[ids, :].T  # (in, num+1)
    h = (adaptive[:, -1:] - adaptive[:, :1]) / num
    uniform = adaptive[:, :1] + h * torch.arange(num + 1, dtype=x_sorted.dtype, device=x_sorted.device)
    knots = grid_eps * uniform + (1 - grid_eps) * adaptive
    return torch.where(h > 0, knots, grid[:, k : grid.shape[1] - k])


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
        self._grid_cache = _GridCache()

    def extra_repr(self) -> str:
        return f"in={self.in_dim}, out={self.out_dim}, num={self.num}, k={self.k}"

    def spline_weight(self) -> torch.Tensor:
        """scale_sp folded into the coefficients: (in * (num+k), out), ready for one matmul."""
        w = self.coef * self.scale_sp.unsqueeze(-1)  # (in, out, coeff)
        return w.transpose(1, 2).reshape(-1, self.out_dim)  # (in*coeff, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x = x.reshape(-1, self.in_dim)  # (batch, in)
        if _use_fast_path():
            pieces, uniform = self._grid_cache.get(self.grid, self.k)
            if uniform is not None:  # equal spacing: bases in closed form, no cell search
                y = _UniformLayer.apply(x, self.coef, self.scale_base, self.scale_sp, self.bias, uniform)
            else:
                y = _CellLayer.apply(x, self.coef, self.scale_base, self.scale_sp, self.bias, pieces)
            return y.reshape(*lead, self.out_dim)
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
        self.grid.copy_(extended_grid(_knots_from_samples(x_sorted, self.num, self.grid_eps, self.grid, self.k), self.k))
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
        self._grid_cache = _GridCache()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _use_fast_path():
            pieces, uniform = self._grid_cache.get(self.grid, self.k)
            if uniform is not None:
                return _UniformActivation.apply(x, self.coef, self.scale_base, self.scale_sp, uniform)
            return _CellActivation.apply(x, self.coef, self.scale_base, self.scale_sp, pieces)
        bases = basis_major_bases(x, self.grid, self.k)  # (coeff, batch, dim)
        spline = (bases * self.coef.T.unsqueeze(1)).sum(0)  # (batch, dim)
        return self.scale_base * F.silu(x) + self.scale_sp * spline

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor) -> None:
        """pykan's grid update, per feature: knots to the data, coefficients refit to keep the curves."""
        x_sorted = torch.sort(x, dim=0).values  # (batch, dim)
        curves = (b_spline_bases(x_sorted, self.grid, self.k) * self.coef).sum(-1)  # (batch, dim)
        self.grid.copy_(extended_grid(_knots_from_samples(x_sorted, self.num, self.grid_eps, self.grid, self.k), self.k))
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
