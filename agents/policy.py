r"""The kan-attn policy: a target expression (55) in, 25 servo commands in [-1, 1] out.

Design (d = 16 model width, 2 heads; S = 25 servos; R = 5 regions, from the face spec)::

    expression (55): 52 blendshape coefficients + head yaw, pitch, roll (deg / 30)
          |
    psi: one learned spline per input (a diagonal KAN layer) -- undoes saturating coefficients
          |                                                     |
    52 coefficient tokens  t_j = psi_j(b_j) * value_j + name_j   head token  t_h = W_h psi(yaw, pitch, roll) + c
          \________________________ 53 tokens x d ____________________/
                                     |
    [1] region read: one query per face region (eyes, eyelids, brows, mouth, neck)
        cross-attends the 53 tokens (sigmoid-gated, 2 heads)            -> 5 region tokens
                                     |
    [2] self-attention over [5 region tokens ; head token] (pre-norm, residual):
        regions qualify each other (a smile with or without an open jaw)  -> 6 mixed tokens
                                     |
    [3] servo queries: each of the 25 servos cross-attends the 6 mixed tokens,
        its logits biased towards its own region (learned, starts at +2)
        and reads out one scalar drive z_s                               -> S drives
                                     |
    KAN [S -> S]: B-spline edges + SiLU base (pykan semantics), the coupled nonlinear map
    from drives to commands (jaw and mouth-corner servos share skin)
                                     |
    tanh -> 25 commands in the face spec's order

Why this shape: per-coefficient tokens keep each blendshape's identity (its name embedding) and let
attention pick which coefficients matter to which region. Full self-attention over 53 tokens costs
(B, 53, 53) per layer, tens of times an MLP's training step, so self-attention runs over the region
tokens instead. A coefficient token is affine in psi_j(b_j), so its logits and values against the
fixed region queries are (regions x 52) slope/offset tables: no (B, 53, d) tensor is ever built.
Batch-1 inference runs on a precomputed NumPy copy (`fast.FastKanAttn`) that skips PyTorch's
per-operator dispatch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from facetwin.expression import N_BLENDSHAPES
from facetwin.spec import REGIONS, FaceSpec

from .features import input_scale
from .kan import KAN, KANActivation


def servo_regions(spec: FaceSpec) -> list[int]:
    """Region index (into facetwin.spec.REGIONS) of each servo, in the spec's order."""
    return [REGIONS.index(s.region) for s in spec.servos]


class KanAttnPolicy(nn.Module):
    """Attention over expression tokens, per-region servo queries, a KAN to the commands."""

    def __init__(
        self,
        regions: Sequence[int],
        d_model: int = 16,
        heads: int = 2,
        own_region_bias: float = 2.0,
        kan_hidden: Sequence[int] = (),
        kan_num: int = 5,
        kan_k: int = 3,
        gate: str = "sigmoid",
    ):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        if gate not in ("sigmoid", "softmax"):
            raise ValueError(f"gate must be 'sigmoid' or 'softmax', got {gate!r}")
        self.gate = gate  # how region queries weigh tokens: sigmoid keeps magnitudes, softmax averages
        n_r, n_s = len(REGIONS), len(regions)
        self.n_regions = n_r
        self.n_servos, self.d, self.heads = n_s, d_model, heads
        self.register_buffer("scale", torch.from_numpy(input_scale()))
        self.register_buffer("regions", torch.tensor(list(regions), dtype=torch.long))
        d, n_b = d_model, N_BLENDSHAPES
        # expression tokens, each input first through its own learned spline (undoes saturation)
        self.input_act = KANActivation(n_b + 3, num=kan_num, k=kan_k, grid_range=(0.0, 1.0))
        self.value_emb = nn.Parameter(torch.randn(n_b, d))
        self.name_emb = nn.Parameter(torch.randn(n_b, d) * 0.1)
        self.head_proj = nn.Linear(3, d)
        # 1: one query per face region reads the 53 tokens
        self.region_query = nn.Parameter(torch.randn(n_r, d))
        self.read_k = nn.Linear(d, d, bias=False)
        self.read_v = nn.Linear(d, d, bias=False)
        # 2: self-attention over the region tokens and the head token
        self.norm = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.attn_out = nn.Linear(d, d)
        # 3: one query per servo reads the mixed tokens, starting out biased to its own region
        self.servo_query = nn.Parameter(torch.randn(n_s, d) * 0.5)
        prior = torch.zeros(n_s, n_r + 1)
        prior[torch.arange(n_s), self.regions] = own_region_bias
        self.servo_bias = nn.Parameter(prior)
        self.servo_k = nn.Linear(d, d, bias=False)
        self.readout = nn.Parameter(torch.randn(n_s, d) / math.sqrt(d))
        self.readout_bias = nn.Parameter(torch.zeros(n_s))
        self.kan = KAN([n_s, *kan_hidden, n_s], num=kan_num, k=kan_k)

    def tables(self) -> dict[str, torch.Tensor]:
        """Batch-independent pieces. A coefficient token is affine in its coefficient b_j, so its logit
        against a fixed query and its value are too: slope/offset tables replace (B, 53, d) tensors."""
        h, dh = self.heads, self.d // self.heads
        q = self.region_query.reshape(-1, h, dh) / math.sqrt(dh)  # (R, h, dh)
        kv = self.read_k(self.value_emb).reshape(-1, 1, h, dh)  # (52, 1, h, dh)
        kn = self.read_k(self.name_emb).reshape(-1, 1, h, dh)
        return {
            "q": q,
            "slope": (kv * q).sum(-1).transpose(1, 2)[:, None],  # (52, 1, h, R): logit = b_j * slope + offset
            "offset": (kn * q).sum(-1).transpose(1, 2)[:, None],
            "vv": self.read_v(self.value_emb),  # (52, d): value = b_j vv_j + vn_j, heads side by side
            "vn": self.read_v(self.name_emb),
            "same_head": torch.eye(h, device=q.device).reshape(1, h, 1, h, 1),  # keeps weight head == value head
            "heads": torch.repeat_interleave(torch.eye(h, device=q.device), dh, dim=0),  # (d, h) sums a head
        }

    def drives(self, x: torch.Tensor, t: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, 55) raw expressions -> (B, S) servo drives, the KAN's input.

        Tensors are token-major (tokens, B, ...): softmax and sums over a handful of tokens then run
        across contiguous slices instead of reducing a tiny innermost axis.
        """
        t = self.tables() if t is None else t
        n, h, dh, n_b = x.shape[0], self.heads, self.d // self.heads, N_BLENDSHAPES
        x = self.input_act(x * self.scale)
        b = x[:, :n_b].T[:, :, None, None]  # (52, B, 1, 1)
        head = self.head_proj(x[:, n_b:])  # (B, d)
        # 1: each region's query reads the 53 tokens
        head_logit = (self.read_k(head).reshape(n, 1, h, dh) * t["q"]).sum(-1)  # (B, R, h)
        logits = torch.cat([b * t["slope"] + t["offset"], head_logit.transpose(1, 2)[None]])  # (53, B, h, R)
        a = torch.sigmoid(logits) if self.gate == "sigmoid" else _softmax0(logits)
        a_c = a[:n_b]  # (52, B, h, R)
        # values summed over tokens for every (weight head, value head) pair in one matmul each, then
        # the matching heads kept: cheaper than regrouping (52, B, h, R) per head, which costs a full copy
        both = (a_c * b).reshape(n_b, -1).T @ t["vv"] + a_c.reshape(n_b, -1).T @ t["vn"]  # (B*h*R, d)
        read = (both.reshape(n, h, -1, h, dh) * t["same_head"]).sum(3).transpose(1, 2)  # (B, R, h, dh)
        read = read + a[n_b].transpose(1, 2)[..., None] * self.read_v(head).reshape(n, 1, h, dh)  # head token's value
        regions = self.region_query + read.reshape(n, -1, self.d)  # (B, R, d)
        # 2: self-attention over [regions; head], token-major
        u = torch.cat([regions.transpose(0, 1), head[None]])  # (R+1, B, d)
        q, k, v = self.qkv(self.norm(u)).chunk(3, -1)  # each (R+1, B, d)
        logits = (q[:, None] * k[None]) @ t["heads"] / math.sqrt(dh)  # (R+1 query, R+1 key, B, h)
        a = _softmax0(logits.transpose(0, 1)).transpose(0, 1)  # normalised over keys
        mixed = ((a @ t["heads"].T) * v[None]).sum(1)  # (R+1, B, d)
        u = u + self.attn_out(mixed)
        # 3: each servo's query reads the mixed tokens; a token's read-out for a servo is one scalar
        logits = self.servo_k(u) @ (self.servo_query.T / math.sqrt(self.d)) + self.servo_bias.T[:, None]  # (R+1, B, S)
        said = u @ self.readout.T  # (R+1, B, S)
        return (_softmax0(logits) * said).sum(0) + self.readout_bias  # (B, S)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.kan(self.drives(x)))

    @torch.no_grad()
    def update_grids(self, x: torch.Tensor) -> None:
        """Fit both spline grids to what they see for expressions x (pykan's grid update)."""
        self.input_act.update_grid(x * self.scale)
        self.kan.update_grid(self.drives(x))


def _softmax0(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the leading axis."""
    e = torch.exp(logits - logits.amax(0, keepdim=True))
    return e / e.sum(0, keepdim=True)
