"""The five policy kinds behind one interface: `fit(x, y, x_val, y_val, settings)`, `predict(x (N,55)) -> (N,S)`.

| kind     | what                                                      | fitted by            |
|----------|-----------------------------------------------------------|----------------------|
| kan-attn | expression-token attention + KAN head (kan_attention.py)  | Adam, early stopping |
| kan      | plain KAN [55 -> hidden -> S]                             | Adam, early stopping |
| mlp      | inverse-model MLP (Eva / EMO style)                       | Adam, early stopping |
| linear   | ridge regression                                          | closed form          |
| knn      | mean command of the nearest training expressions          | stores the data      |

Their names live torch-free in names.py, for the CLI; their default hyper-parameters here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from facetwin.agents.policies.closed_form import NearestNeighbours, Ridge
from facetwin.agents.policies.features import as_expression_batch
from facetwin.agents.training.config import FitSettings
from facetwin.agents.training.minibatch import FitHistory, evaluate, fit_module
from facetwin.agents.policies.networks import KANPolicy, MLPPolicy
from facetwin.agents.policies.kan_attention import KanAttnPolicy
from facetwin.agents.policies.names import MODEL_KINDS, NEURAL_KINDS, check_kind

DEFAULT_HPARAMS: dict[str, dict] = {
    # chosen on frames of ../shared/faces/videos: docs/experiments.md, "Policy size"
    "kan-attn": {"d_model": 32, "heads": 4, "gate": "sigmoid", "own_region_bias": 2.0, "kan_hidden": [128, 128],
                 "kan_num": 5, "kan_k": 3, "grid_eps": 1.0},
    "kan": {"hidden": [32], "kan_num": 5, "kan_k": 3},
    # the study's larger size, the parameter count of kan-attn's defaults, trained on camera labels (docs/study.md)
    "mlp": {"hidden": [448, 448], "dropout": 0.0},
    "linear": {"alpha": 1e-3},
    "knn": {"neighbours": 1},
}


DEFAULT_LR = {"kan-attn": 1e-2, "kan": 3e-3, "mlp": 3e-3}
EXPRESSION_LR = {"kan-attn": 3e-3, "kan": 3e-3, "mlp": 1e-3}  # the expression pass, which starts from a fitted policy


class PolicyModel(ABC):
    kind: str

    def __init__(self, n_servos: int, regions: Sequence[int], hparams: dict):
        self.n_servos, self.regions, self.hparams = n_servos, list(regions), hparams

    @abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
            settings: FitSettings) -> FitHistory: ...

    @abstractmethod
    def predict(self, x) -> np.ndarray: ...

    def fit_expression(self, forward, coupling, x, y, x_val, y_val, settings, mix=None, confirmed=None) -> FitHistory:
        """Fine-tune through a frozen forward model (expression_objective); only gradient-trained kinds can."""
        raise ValueError(f"the expression objective trains neural policies ({', '.join(NEURAL_KINDS)}); {self.kind} "
                         "is fitted in closed form: train it with --objective supervised")

    @abstractmethod
    def tensors(self) -> dict[str, torch.Tensor]:
        """Everything learned, for the safetensors checkpoint."""

    @abstractmethod
    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None: ...


class TorchModel(PolicyModel):
    """A neural policy; CPU inference, with a NumPy fast path where one exists."""

    def __init__(self, kind: str, n_servos: int, regions: Sequence[int], hparams: dict):
        super().__init__(n_servos, regions, hparams)
        self.kind = kind
        self.module = build_module(kind, n_servos, regions, hparams)
        self._fast = None

    def fit(self, x, y, x_val, y_val, settings):
        self._fast = None
        if settings.lr is None:
            settings = replace(settings, lr=DEFAULT_LR[self.kind])
        return fit_module(self.module, x, y, x_val, y_val, settings)

    def fit_expression(self, forward, coupling, x, y, x_val, y_val, settings, mix=None, confirmed=None):
        from facetwin.agents.forward.expression_objective import fit_expression_module

        self._fast = None
        if settings.lr is None:
            settings = replace(settings, lr=EXPRESSION_LR[self.kind])
        return fit_expression_module(self.module, forward, coupling, x, y, x_val, y_val, settings, mix, confirmed)

    def predict(self, x) -> np.ndarray:
        x = as_expression_batch(x)
        if self._fast is None:
            self._fast = _fast_path(self.module)
        if self._fast is not None:
            return self._fast(x).astype(np.float32)
        with torch.inference_mode():
            return self.module(torch.from_numpy(x)).numpy()

    def tensors(self):
        return {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}

    def load_tensors(self, tensors):
        self.module.load_state_dict(tensors)
        self.module.eval()
        self._fast = None


class RidgeModel(PolicyModel):
    kind = "linear"

    def __init__(self, n_servos, regions, hparams):
        super().__init__(n_servos, regions, hparams)
        self.ridge = Ridge(hparams["alpha"])

    def fit(self, x, y, x_val, y_val, settings):
        self.ridge.fit(x, y)
        return _closed_form_history(self, x, y, x_val, y_val)

    def predict(self, x):
        return self.ridge.predict(as_expression_batch(x))

    def tensors(self):
        return {"weight": torch.from_numpy(self.ridge.weight)}

    def load_tensors(self, tensors):
        self.ridge.weight = tensors["weight"].numpy()


class KnnModel(PolicyModel):
    kind = "knn"

    def __init__(self, n_servos, regions, hparams):
        super().__init__(n_servos, regions, hparams)
        self.knn = NearestNeighbours(hparams["neighbours"])

    def fit(self, x, y, x_val, y_val, settings):
        self.knn.fit(x, y)
        return _closed_form_history(self, x, y, x_val, y_val)

    def predict(self, x):
        return self.knn.predict(as_expression_batch(x))

    def tensors(self):
        return {"scaled_expressions": torch.from_numpy(self.knn.x), "commands": torch.from_numpy(self.knn.y)}

    def load_tensors(self, tensors):
        self.knn.x, self.knn.y = tensors["scaled_expressions"].numpy(), tensors["commands"].numpy()


def build_module(kind: str, n_servos: int, regions: Sequence[int], hp: dict) -> nn.Module:
    if kind == "kan-attn":
        return KanAttnPolicy(regions, **hp)
    if kind == "kan":
        return KANPolicy(n_servos, hidden=hp["hidden"], kan_num=hp["kan_num"], kan_k=hp["kan_k"])
    if kind == "mlp":
        return MLPPolicy(n_servos, hidden=hp["hidden"], dropout=hp["dropout"])
    raise ValueError(f"{kind!r} is not a neural policy kind")


def build_model(kind: str, n_servos: int, regions: Sequence[int], hparams: dict | None = None) -> PolicyModel:
    """A fresh model of `kind`; `hparams` override DEFAULT_HPARAMS[kind] key by key."""
    hp = dict(DEFAULT_HPARAMS[check_kind(kind)])
    unknown = set(hparams or {}) - set(hp)
    if unknown:
        raise ValueError(f"{kind} has no hyper-parameter(s) {sorted(unknown)}; known: {sorted(hp)}")
    hp.update(hparams or {})
    if kind == "linear":
        return RidgeModel(n_servos, regions, hp)
    if kind == "knn":
        return KnnModel(n_servos, regions, hp)
    return TorchModel(kind, n_servos, regions, hp)


def _closed_form_history(model: PolicyModel, x, y, x_val, y_val) -> FitHistory:
    train = float(np.mean((model.predict(x) - y) ** 2))
    val = float(np.mean((model.predict(x_val) - y_val) ** 2)) if len(x_val) else float("nan")
    return FitHistory(train_loss=[train], val_loss=[val], best_epoch=0, best_val_loss=val)


def _fast_path(module: nn.Module):
    from facetwin.agents.policies.numpy_inference import FastKAN, FastKanAttn

    if isinstance(module, KanAttnPolicy):
        return FastKanAttn(module)
    if isinstance(module, KANPolicy):
        scale, kan = module.scale.numpy(), FastKAN(module.kan)
        return lambda x: np.tanh(kan(x * scale))
    return None


__all__ = ["MODEL_KINDS", "DEFAULT_HPARAMS", "PolicyModel", "build_model", "FitSettings", "FitHistory", "evaluate"]
