"""The policy kinds by name. Torch-free, so the CLI can offer them without loading a network."""

from __future__ import annotations

MODEL_KINDS = ("kan-attn", "kan", "mlp", "linear", "knn")
NEURAL_KINDS = ("kan-attn", "kan", "mlp")  # gradient-trained: only these can be tuned through a forward model
CLOSED_FORM_KINDS = tuple(k for k in MODEL_KINDS if k not in NEURAL_KINDS)
# the kind `facetwin train` fits unless told: the MLP, which read closer to people through the camera than
# the paper's kan-attn of equal size, by more than the seeds' spread (docs/study.md)
DEFAULT_KIND = "mlp"
ONNX_KINDS = (*NEURAL_KINDS, "linear")  # knn looks up its training data: no graph to export


def check_kind(kind: str) -> str:
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown policy kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    return kind
