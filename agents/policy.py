"""The kan-attn policy: a target expression (55) in, 25 servo commands in [-1, 1] out.

Design (d = model width, 16 by default; S = 25 servos, R = 5 regions from the face spec)::

    expression (55) = 52 blendshape coefficients b_i  +  head yaw, pitch, roll (deg / 30)
          |                                                   |
          v                                                   v
    coefficient tokens  t_i = b_i * value_i + name_i     head token  t_h = W_h (yaw, pitch, roll) + name_h
          \____________________________ 53 tokens x d ______________________/
                                          |
                          self-attention (1 layer, 2 heads, pre-norm, residual)
                            lets coefficients qualify each other (a smile with
                            or without an open jaw drives the corners differently)
                                          |
                       +------------------+---------------------------+
                       |  keys / values of the 53 tokens              |
                       v                                              |
    servo queries q_s = servo_s + region_r(s)   ---->  cross-attention, logits + bias_r(s)[token]
    (one per servo; r(s) = eyes, eyelids,              (a learned per-region prior over tokens:
     brows, mouth or neck, from the face spec)          brow servos look at brow coefficients)
                                          |
                                 context c_s (S x d)
                                          |
                         per-servo read-out  z_s = <w_s, c_s> + a_s       (S)
                                          |
                      KAN [S -> S]: B-spline edges + SiLU base (pykan semantics),
                      the nonlinear, coupled map from servo drives to commands
                                          |
                                 tanh -> commands (25, face-spec order)

Cost stays small because nothing is quadratic in anything larger than the 53 tokens, d is 16, and the
KAN works on 25 scalars, not on token vectors; batch-1 inference runs on a precomputed NumPy path
(`FastKanAttn`) that skips PyTorch's per-operator overhead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facetwin.expression import N_BLENDSHAPES
from facetwin.spec import REGIONS, FaceSpec

from .features import input_scale
from .kan import KAN


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
    ):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        n_r, n_s = len(REGIONS), len(regions)
        self.n_servos, self.d, self.heads = n_s, d_model, heads
        self.register_buffer("scale", torch.from_numpy(input_scale()))
        self.register_buffer("regions", torch.tensor(list(regions), dtype=torch.long))
        d, n_b = d_model, N_BLENDSHAPES
        # expression tokens
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
        against a fixed query and its value are too: slope and offset tables replace (B, 53, d) tensors."""
        h, dh = self.heads, self.d // self.heads
        q = self.region_query.reshape(-1, h, dh).transpose(0, 1) / math.sqrt(dh)  # (h, R, dh)
        kv = self.read_k(self.value_emb).reshape(-1, h, dh).transpose(0, 1)  # (h, 52, dh)
        kn = self.read_k(self.name_emb).reshape(-1, h, dh).transpose(0, 1)
        return {
            "q": q,
            "slope": q @ kv.transpose(1, 2),  # (h, R, 52) logit = b_j * slope + offset
            "offset": q @ kn.transpose(1, 2),
            "vv": self.read_v(self.value_emb).reshape(-1, h, dh).transpose(0, 1),  # (h, 52, dh) value = b_j vv + vn
            "vn": self.read_v(self.name_emb).reshape(-1, h, dh).transpose(0, 1),
            "servo_q": self.servo_query / math.sqrt(self.d),  # (S, d)
        }

    def drives(self, x: torch.Tensor, t: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, 55) raw expressions -> (B, S) servo drives, the KAN's input."""
        t = self.tables() if t is None else t
        n, h, dh = x.shape[0], self.heads, self.d // self.heads
        x = x * self.scale
        b = x[:, None, None, :N_BLENDSHAPES]  # (B, 1, 1, 52)
        head = self.head_proj(x[:, N_BLENDSHAPES:])  # (B, d)
        # 1: regions read the tokens (einsum keeps the head axis as the only matmul batch)
        head_k = self.read_k(head).reshape(n, h, dh)  # (B, h, dh)
        head_logit = torch.einsum("hrd,bhd->bhr", t["q"], head_k)[..., None]  # (B, h, R, 1)
        a = torch.softmax(torch.cat([b * t["slope"] + t["offset"], head_logit], -1), -1)  # (B, h, R, 53)
        a_c = a[..., :N_BLENDSHAPES]  # (B, h, R, 52)
        head_v = self.read_v(head).reshape(n, h, 1, dh)
        read = torch.einsum("bhrj,hjd->bhrd", a_c * b, t["vv"]) + torch.einsum("bhrj,hjd->bhrd", a_c, t["vn"])
        read = read + a[..., N_BLENDSHAPES:] * head_v  # (B, h, R, dh)
        regions = self.region_query + read.transpose(1, 2).reshape(n, -1, self.d)  # (B, R, d)
        # 2: self-attention over [regions; head]; 6 tokens, so elementwise products beat tiny matmuls
        u = torch.cat([regions, head[:, None]], 1)  # (B, R+1, d)
        q, k, v = self.qkv(self.norm(u)).reshape(n, -1, 3, h, dh).unbind(2)  # each (B, R+1, h, dh)
        logits = (q[:, :, None] * k[:, None]).sum(-1) / math.sqrt(dh)  # (B, R+1 query, R+1 key, h)
        a = torch.softmax(logits, 2)
        mixed = (a[..., None] * v[:, None]).sum(2)  # (B, R+1, h, dh)
        u = u + self.attn_out(mixed.reshape(u.shape))  # (B, R+1, d)
        # 3: servos read the mixed tokens; each servo's read-out of a token is one scalar
        logits = torch.einsum("sd,bud->bsu", t["servo_q"], self.servo_k(u)) + self.servo_bias  # (B, S, R+1)
        said = torch.einsum("bud,sd->bsu", u, self.readout)  # (B, S, R+1): token u read out for servo s
        return (torch.softmax(logits, -1) * said).sum(-1) + self.readout_bias  # (B, S)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.kan(self.drives(x)))

    def kan_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """What the KAN head sees for expressions x: used to fit its grid to the data."""
        return self.drives(x)
