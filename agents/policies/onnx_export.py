"""ONNX export of a trained run: `expression (N, 55) float32 -> commands (N, 25) float32`.

The neural kinds export their module; `linear` exports as a matrix product and clip. `knn` keeps its
whole training set and has no ONNX form. Export uses PyTorch's TorchScript-based exporter
(`dynamo=False`), which needs no onnxscript; the file is checked with `onnx.checker`.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from facetwin.expression import EXPRESSION_NAMES

from facetwin.agents.training.checkpoint import Policy, RunError, load_run_policy
from facetwin.agents.policies.features import input_scale
from facetwin.agents.policies.kinds import RidgeModel, TorchModel
from facetwin.agents.policies.names import ONNX_KINDS

OPSET = 17


class _RidgeModule(nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.register_buffer("scale", torch.from_numpy(input_scale()))
        self.register_buffer("weight", torch.from_numpy(weight[:-1]))
        self.register_buffer("bias", torch.from_numpy(weight[-1]))

    def forward(self, x):
        return torch.clamp(x * self.scale @ self.weight + self.bias, -1.0, 1.0)


def exportable_module(policy: Policy) -> nn.Module:
    if isinstance(policy.model, TorchModel):
        return policy.model.module.eval()
    if isinstance(policy.model, RidgeModel):
        return _RidgeModule(policy.model.ridge.weight).eval()
    raise RunError(f"a {policy.kind} policy has no ONNX form (it looks up its training data); export one of {', '.join(ONNX_KINDS)}")


def export_onnx(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write `<run_dir>/policy.onnx` (or `out`); returns the path. Metadata names the face spec and layout."""
    import onnx

    policy = load_run_policy(run_dir)
    out = Path(out) if out is not None else Path(run_dir) / "policy.onnx"
    module = exportable_module(policy)
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is chosen on purpose (no onnxscript)
        torch.onnx.export(module, (torch.zeros(1, len(EXPRESSION_NAMES)),), buf, dynamo=False, opset_version=OPSET,
                          input_names=["expression"], output_names=["commands"],
                          dynamic_axes={"expression": {0: "batch"}, "commands": {0: "batch"}})
    model = onnx.load_from_string(buf.getvalue())
    meta = {"facetwin_policy": policy.kind, "face_spec": policy.spec.name,
            "face_spec_fingerprint": policy.spec.fingerprint, "servo_names": ",".join(policy.spec.names),
            "expression_names": ",".join(EXPRESSION_NAMES)}
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out
