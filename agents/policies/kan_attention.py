r"""The kan-attn policy: a target expression (55) in, S servo commands in [-1, 1] out.

Design (hyper-parameters in `backticks`, their defaults in `kinds.DEFAULT_HPARAMS["kan-attn"]`; d = `d_model`,
the model width; S servos and R = 5 regions come from the face spec)::

    expression (55): 52 blendshape coefficients + head yaw, pitch, roll (deg / 30)
          |
    psi: one learned spline per input (a diagonal KAN layer) -- undoes saturating coefficients
          |                                                     |
    52 coefficient tokens  t_j = psi_j(b_j) * value_j + name_j   head token  t_h = W_h psi(yaw, pitch, roll) + c
          |                                                     |
    [1] region read: each face region's query (eyes, eyelids, brows, mouth) attends over the
        coefficient tokens of its region, by MediaPipe name (`heads` heads, `gate`: sigmoid or softmax)
                                     |                          |
                         4 region tokens  +  the head token as the neck's token  -> R = 5 tokens
                                     |
    [2] servo queries: each of the S servos attends over the R tokens (softmax),
        its logits biased towards its own region (learned, starts at +`own_region_bias`),
        and reads out one scalar drive z_s                               -> S drives
                                     |
    KAN [S -> `kan_hidden` -> S]: B-spline edges + SiLU base (pykan semantics), the coupled nonlinear
    map from drives to commands (jaw and mouth-corner servos share skin); regions meet here and in [2]
    |
    tanh -> S commands in the face spec's order

Why this shape: per-coefficient tokens keep each blendshape's identity (its name embedding) and let
attention pick which of its region's coefficients matter; the parameters sit in the KAN head, where
width measured best (`kinds.DEFAULT_HPARAMS`). Cost decides the rest, because a training step must
stay within a few times an equal-size MLP's on one CPU core: every (query, token) pair is a
handful of elementwise passes per sample, so region queries read only their own region's tokens
(2 x 52 pairs, not 2 x 5 x 52), the servo queries read R tokens, and there is no self-attention layer.
A coefficient token is affine in psi_j(b_j), so its logit against its region's query and its value
are slope/offset tables (no (B, 52, d) tensor is ever built), and queries, keys and values act on the
learned embeddings directly (a key or value projection of a free embedding adds parameters, not
expressiveness). Batch-1 inference runs on a precomputed NumPy copy (`numpy_inference.FastKanAttn`)
that skips PyTorch's per-operator dispatch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from facetwin.expression import BLENDSHAPE_NAMES, N_BLENDSHAPES
from facetwin.spec import REGIONS, FaceSpec

from facetwin.agents.policies.features import input_scale
from facetwin.agents.policies.kan import KAN, KANActivation, _use_fast_path


_sigmoid_backward = torch.ops.aten.sigmoid_backward.default  # looked up once: torch.ops attribute access is slow


def coefficient_regions() -> list[int]:
    """Region index (into REGIONS) of each of the 52 blendshape coefficients, from MediaPipe's names:
    gaze -> eyes, blink/squint/wide -> eyelids, brow* -> brows, the rest (cheek, jaw, mouth, nose,
    tongue) -> mouth. The neck reads the head token instead."""
    def region(name: str) -> str:
        if name.startswith("eyeLook"):
            return "eyes"
        if name.startswith("eye"):
            return "eyelids"
        if name.startswith("brow"):
            return "brows"
        return "mouth"

    return [REGIONS.index(region(name)) for name in BLENDSHAPE_NAMES]


def servo_regions(spec: FaceSpec) -> list[int]:
    """Region index (into facetwin.spec.REGIONS) of each servo, in the spec's order."""
    return [REGIONS.index(s.region) for s in spec.servos]


class KanAttnPolicy(nn.Module):
    """Attention over expression tokens, per-region servo queries, a KAN to the commands."""

    # no defaults for the hyper-parameters: they live once, in kinds.DEFAULT_HPARAMS["kan-attn"]
    def __init__(
        self,
        regions: Sequence[int],
        *,
        d_model: int,
        heads: int,
        own_region_bias: float,
        kan_hidden: Sequence[int],
        kan_num: int,
        kan_k: int,
        gate: str,
        grid_eps: float,
        kan_grid_eps: float = 1.0,
    ):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        if gate not in ("sigmoid", "softmax"):
            raise ValueError(f"gate must be 'sigmoid' or 'softmax', got {gate!r}")
        self.gate = gate  # how region queries weigh tokens: sigmoid keeps magnitudes, softmax averages
        n_r, n_s, d, n_b = len(REGIONS), len(regions), d_model, N_BLENDSHAPES
        self.n_regions, self.n_servos, self.d, self.heads = n_r, n_s, d, heads
        self.register_buffer("scale", torch.from_numpy(input_scale()))
        self.register_buffer("regions", torch.tensor(list(regions), dtype=torch.long))
        token_region = coefficient_regions()
        self.read_regions = sorted(set(token_region))  # regions with coefficient tokens; the rest read the head
        if len(self.read_regions) != n_r - 1:
            raise ValueError(f"expected one region without blendshape tokens (the neck), got {self.read_regions}")
        if self.read_regions != list(range(n_r - 1)):
            raise ValueError(f"the head token stands for the last region ({REGIONS[-1]}), which must have no blendshapes")
        slot = torch.tensor([self.read_regions.index(r) for r in token_region])
        self.register_buffer("token_region", torch.tensor(token_region), persistent=False)
        self.register_buffer("token_mask", F.one_hot(slot, len(self.read_regions)).float(), persistent=False)
        # psi: each input through its own learned spline. grid_eps: pykan's blend of quantile (0) and
        # uniform (1) knots when grids follow the data; uniform knots serve as well here (docs/experiments.md,
        # "Policy size") and take the closed-form fast path
        self.input_act = KANActivation(n_b + 3, num=kan_num, k=kan_k, grid_range=(0.0, 1.0), grid_eps=grid_eps)
        self.value_emb = nn.Parameter(torch.randn(n_b, d))
        self.name_emb = nn.Parameter(torch.randn(n_b, d) * 0.1)
        self.head_proj = nn.Linear(3, d)
        # 1: one query per face region reads that region's coefficient tokens
        self.region_query = nn.Parameter(torch.randn(n_r, d))
        # 2: one query per servo reads the region tokens, biased to its own region
        self.servo_query = nn.Parameter(torch.randn(n_s, d) * 0.5)
        prior = torch.zeros(n_s, n_r)
        prior[torch.arange(n_s), self.regions] = own_region_bias
        self.servo_bias = nn.Parameter(prior)
        self.readout = nn.Parameter(torch.randn(n_s, d) / math.sqrt(d))
        self.readout_bias = nn.Parameter(torch.zeros(n_s))
        self.kan = KAN([n_s, *kan_hidden, n_s], num=kan_num, k=kan_k, grid_eps=kan_grid_eps)

    def tables(self) -> dict[str, torch.Tensor]:
        """Batch-independent pieces. A coefficient token t_j = b_j value_j + name_j is affine in b_j, so
        its logit against its region's query and its value are too: slope/offset tables, never (B, 52, d)."""
        h, dh, n_b = self.heads, self.d // self.heads, N_BLENDSHAPES
        q = self.region_query[self.token_region] / math.sqrt(dh)  # (52, d): each token's region query
        emb = torch.stack([self.value_emb, self.name_emb])  # (2, 52, d)
        logit = (emb * q).reshape(2, n_b, h, dh).sum(-1).transpose(1, 2).unsqueeze(2)  # (2, h, 1, 52)
        # value of token j for head i: its embedding's head-i slice, in its region's columns only
        values = emb.reshape(2, n_b, h, 1, dh).transpose(1, 2) * self.token_mask[:, :, None]  # (2, h, 52, R-1, dh)
        return {
            "slope": logit[0], "offset": logit[1],  # (h, 1, 52): logit = b_j slope + offset
            "vv": values[0].flatten(2), "vn": values[1].flatten(2),  # (h, 52, (R-1)*dh): value = b_j vv + vn
            "servo_q": self.servo_query.T / math.sqrt(self.d), "readout": self.readout.T,  # (d, S)
            "servo_bias": self.servo_bias.T.unsqueeze(1),  # (R, 1, S)
        }

    def drives(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 55) raw expressions -> (B, S) servo drives, the KAN's input."""
        x = self.input_act(x * self.scale)
        if self.gate == "sigmoid" and _use_fast_path():
            return _SigmoidDrives.apply(x, self.value_emb, self.name_emb, self.head_proj.weight, self.head_proj.bias,
                                        self.region_query, self.servo_query, self.servo_bias, self.readout,
                                        self.readout_bias, self)
        return self.drives_from_tokens(x)

    def drives_from_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """`drives` after psi, in plain autograd ops: the reference `_SigmoidDrives` is held to, the
        softmax gate's path, and what ONNX export traces. Token-major (R, B, ...) layout, so the
        softmax over tokens runs across contiguous slabs."""
        t = self.tables()
        n, h, n_b, n_s = x.shape[0], self.heads, N_BLENDSHAPES, self.n_servos
        b = x[:, :n_b]  # (B, 52)
        head = self.head_proj(x[:, n_b:])  # (B, d)
        # 1: each region's query weighs its coefficient tokens (per head); values summed in two matmuls
        logits = torch.addcmul(t["offset"], t["slope"], b)  # (h, B, 52)
        a = torch.sigmoid(logits) if self.gate == "sigmoid" else self._region_softmax(logits)
        read = torch.baddbmm(torch.bmm(a * b, t["vv"]), a, t["vn"])  # (h, B, (R-1)*dh)
        read = read.view(h, n, -1, self.d // h).permute(2, 1, 0, 3)  # (R-1, B, h, dh)
        base = self.region_query[:-1].reshape(-1, 1, h, self.d // h)
        tokens = torch.cat([(read + base).reshape(-1, n, self.d), head.unsqueeze(0)])  # (R, B, d), heads side by side
        # 2: each servo's query reads the R tokens; a token's read-out for a servo is one scalar
        weights = torch.softmax(torch.matmul(tokens, t["servo_q"]) + t["servo_bias"], 0)  # (R, B, S)
        return (weights * (tokens @ t["readout"])).sum(0) + self.readout_bias  # (B, S)

    def _region_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax over each region's own tokens: (h, B, 52) logits -> weights summing to 1 per region."""
        e = torch.exp(logits - logits.amax(-1, keepdim=True))
        return e / (e @ self.token_mask @ self.token_mask.T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.kan(self.drives(x)))

    @torch.no_grad()
    def update_grids(self, x: torch.Tensor) -> None:
        """Fit both spline grids to what they see for expressions x (pykan's grid update)."""
        self.input_act.update_grid(x * self.scale)
        self.kan.update_grid(self.drives(x))


class _SigmoidDrives(torch.autograd.Function):
    """`KanAttnPolicy.drives_from_tokens` (sigmoid gate) as one autograd node with a hand-written
    backward: about 45 tensor ops for a training step's forward and backward instead of ~180 (views
    included), which is most of what the attention costs at the batch sizes the policy trains at."""

    @staticmethod
    def forward(ctx, x, value_emb, name_emb, head_w, head_b, region_query, servo_query, servo_bias, readout,
                readout_bias, policy: "KanAttnPolicy"):
        n, h, d, n_b = x.shape[0], policy.heads, policy.d, N_BLENDSHAPES
        dh, n_r, mask = d // h, policy.n_regions, policy.token_mask  # mask (52, R-1)
        b, head_in = x[:, :n_b], x[:, n_b:]
        q_tok = (mask @ region_query[:-1]).view(n_b, h, dh) / math.sqrt(dh)  # each token's region query
        # contiguous (h, 1, 52): the (h, B, 52) tensors below inherit this layout, and the batched
        # matmuls copy every head's slice of a head-innermost one
        slope = (value_emb.view(n_b, h, dh) * q_tok).sum(-1).T.contiguous().unsqueeze(1)
        offset = (name_emb.view(n_b, h, dh) * q_tok).sum(-1).T.contiguous().unsqueeze(1)
        a = torch.sigmoid(torch.addcmul(offset, slope, b))  # (h, B, 52)
        ab = a * b
        vv = (value_emb.view(n_b, h, 1, dh).transpose(0, 1) * mask[:, :, None]).flatten(2)  # (h, 52, (R-1)*dh)
        vn = (name_emb.view(n_b, h, 1, dh).transpose(0, 1) * mask[:, :, None]).flatten(2)
        read = torch.baddbmm(torch.bmm(ab, vv), a, vn).view(h, n, n_r - 1, dh).permute(2, 1, 0, 3)
        tokens = x.new_empty(n_r, n, d)
        torch.add(read, region_query[:-1].view(-1, 1, h, dh), out=tokens[:-1].view(n_r - 1, n, h, dh))
        torch.addmm(head_b, head_in, head_w.T, out=tokens[-1])
        n_s = readout.shape[0]
        both = (tokens.view(-1, d) @ torch.cat([servo_query / math.sqrt(d), readout]).T).view(n_r, n, 2 * n_s)
        weights = torch.softmax(both[..., :n_s] + servo_bias.T.unsqueeze(1), 0)  # (R, B, S)
        said = both[..., n_s:]
        ctx.save_for_backward(x, value_emb, name_emb, head_w, servo_query, readout, q_tok, slope, a, ab, vv, vn,
                              tokens, weights, said)
        ctx.policy = policy
        return (weights * said).sum(0) + readout_bias

    @staticmethod
    def backward(ctx, g):
        x, value_emb, name_emb, head_w, servo_query, readout, q_tok, slope, a, ab, vv, vn, tokens, weights, said = \
            ctx.saved_tensors
        p = ctx.policy
        n, h, d, n_b, n_r = x.shape[0], p.heads, p.d, N_BLENDSHAPES, p.n_regions
        dh, mask = d // h, p.token_mask
        b, head_in, flat = x[:, :n_b], x[:, n_b:], tokens.view(-1, d)
        # 2: servo read
        n_s = g.shape[1]
        g_both = torch.cat([torch._softmax_backward_data(said * g, weights, 0, weights.dtype), weights * g], 2)
        g_both = g_both.view(-1, 2 * n_s)  # (R*B, 2S): logits | read-outs
        g_tokens = (g_both @ torch.cat([servo_query / math.sqrt(d), readout])).view(n_r, n, d)
        g_weights = g_both.T @ flat  # (2S, d)
        g_servo_query, g_readout = g_weights[:n_s] / math.sqrt(d), g_weights[n_s:]
        g_servo_bias = g_both[:, :n_s].reshape(n_r, n, n_s).sum(1).T
        g_readout_bias = g.sum(0)
        # head token
        g_head = g_tokens[-1]
        g_head_w, g_head_b, g_head_in = g_head.T @ head_in, g_head.sum(0), g_head @ head_w
        # 1: region read
        g_read = g_tokens[:-1]  # (R-1, B, d)
        g_region_query = torch.cat([g_read.sum(1), g_read.new_zeros(1, d)])
        g_read = g_read.view(n_r - 1, n, h, dh).permute(2, 1, 0, 3).reshape(h, n, -1)  # (h, B, (R-1)*dh)
        g_ab = torch.bmm(g_read, vv.transpose(1, 2))  # (h, B, 52)
        g_a = torch.bmm(g_read, vn.transpose(1, 2)).addcmul_(g_ab, b)

        def g_values(weight):  # (h, B, 52) -> its embedding's gradient (52, d), from its region's columns only
            g_v = torch.bmm(weight.transpose(1, 2), g_read).view(h, n_b, n_r - 1, dh)
            return (g_v * mask.view(1, n_b, n_r - 1, 1)).sum(2).transpose(0, 1).reshape(n_b, d)

        g_value_emb, g_name_emb = g_values(ab), g_values(a)
        g_z = _sigmoid_backward(g_a, a)  # (h, B, 52)
        g_b = g_ab.mul_(a).addcmul_(g_z, slope).sum(0)
        g_slope = (g_z * b).sum(1).T.unsqueeze(-1) / math.sqrt(dh)  # (52, h, 1)
        g_offset = g_z.sum(1).T.unsqueeze(-1) / math.sqrt(dh)
        q_raw = q_tok * math.sqrt(dh)
        g_value_emb += (g_slope * q_raw).reshape(n_b, d)
        g_name_emb += (g_offset * q_raw).reshape(n_b, d)
        g_q_tok = (g_slope * value_emb.view(n_b, h, dh) + g_offset * name_emb.view(n_b, h, dh)).reshape(n_b, d)
        g_region_query[:-1] += mask.T @ g_q_tok
        g_x = torch.cat([g_b, g_head_in], 1)
        return (g_x, g_value_emb, g_name_emb, g_head_w, g_head_b, g_region_query, g_servo_query, g_servo_bias,
                g_readout, g_readout_bias, None)
