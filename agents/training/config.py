"""What configures a training run, as one typed value (`TrainConfig`), and the settings of its passes.

Pure data and torch-free: the CLI builds its parser from these defaults without loading PyTorch, so each
default is written here once. Data and live objects (arrays, a given forward model, the twin to query)
are arguments of `train.train_from_arrays`, not configuration. The forward models' own settings
(`direct.ForwardSettings`, `landmark.LandmarkSettings`) stay beside the models they fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from facetwin.agents.policies.names import CLOSED_FORM_KINDS, DEFAULT_KIND, NEURAL_KINDS, check_kind

if TYPE_CHECKING:
    from facetwin.agents.forward.direct import ForwardSettings
    from facetwin.agents.forward.landmark import LandmarkSettings

OBJECTIVES = ("supervised", "expression")
# The expression objective's forward model f(command) -> expression. "direct": the direct student alone, whatever
# the data holds, the default because it read better on camera labels (docs/study.md); "landmark": the
# landmark-structured teacher and its student, fitted where the data has landmarks (the fast-label recipe of
# docs/results.md).
FORWARD_MODELS = ("direct", "landmark")


@dataclass
class FitSettings:
    """The supervised fit (minibatch.fit_module); closed-form kinds ignore it but for the seed."""

    epochs: int = 200
    batch_size: int = 256
    lr: float | None = None  # None: the model kind's default (kinds.DEFAULT_LR)
    weight_decay: float = 0.0
    patience: int = 20  # epochs without a better validation loss before stopping
    seed: int = 0
    device: str | None = None  # None: CUDA when available, else CPU
    progress: bool = True
    grid_update_epochs: tuple[int, ...] = (0, 2, 5)  # KAN grids re-fit to the data before these epochs
    grid_samples: int = 2048


@dataclass
class ExpressionSettings:
    """The expression-space pass (expression_objective), which starts from the supervised fit."""

    epochs: int = 40
    batch_size: int = 256
    lr: float | None = None  # None: the model kind's default (kinds.EXPRESSION_LR)
    anchor: float = 0.0  # weight of the command MSE on real pairs, next to the expression loss
    patience: int = 10
    val_targets: int = 4000
    seed: int = 0
    device: str | None = None
    progress: bool = True
    grid_update_epochs: tuple[int, ...] = (0,)  # KAN grids re-fit to the broad targets before these epochs
    grid_samples: int = 4096


@dataclass
class AggregationSettings:
    """Rounds of querying the twin where the policy goes (forward/aggregation.py)."""

    # two rounds of half the targets did as well as one round of all of them, for the same queries: the
    # second round finds the models closer to the twin where the policy goes (docs/results.md)
    rounds: int = 2
    targets: int = 2500  # per round; three queries a target (policy answer, refined answer, explored answer)
    refine_steps: int = 30
    teacher_epochs: int = 10
    distil_samples: int = 30_000  # broad commands the teacher labels again, next to the queried ones; at most
    distil_per_row: int = 2  # ... this many per recorded row, for small datasets
    distil_epochs: int = 10
    jitter: float = 0.1  # std of the copies of queried commands the teacher labels around them
    # the third query: the policy's answer with each region's commands scaled by exp(N(0, explore)), more or less
    # of what the policy does, where the forward model may not know how the face reads it (0: no third query).
    # Two rounds that explore read better through pixels than four that do not (docs/study.md)
    explore: float = 0.3
    # weight of a command loss pulling the policy, while it is tuned, toward each round's pixel-confirmed answers:
    # per target, whichever of its queries the twin read closest to it (a search of two or three candidates that
    # the readout judged); 0 leaves it out
    confirm: float = 0.0
    policy_epochs: int = 10
    lr: float = 1e-3  # for every refit: each starts from a fitted model
    seed: int = 0
    device: str | None = None
    # 0: one FaceTwin settles each query; N: a BatchTwin of N worlds settles them N at a time (docs/batch.md)
    query_worlds: int = 0


@dataclass(frozen=True)
class TrainConfig:
    """One training run's configuration; each settings field is named after the pass it tunes.

    A settings field left None takes its dataclass's defaults with the fit's seed and device, except
    `aggregation`: None makes no rounds (they need a twin to query).
    """

    model: str = DEFAULT_KIND
    hparams: dict = field(default_factory=dict)  # overrides of kinds.DEFAULT_HPARAMS[model], key by key
    fit: FitSettings = field(default_factory=FitSettings)
    val_fraction: float = 0.1  # held out for validation: whole episodes when an episode index is given
    max_samples: int | None = None  # train on a random subset of this many rows
    objective: str = "supervised"
    expression: ExpressionSettings | None = None
    forward_model: str = "direct"  # one of FORWARD_MODELS
    forward: ForwardSettings | None = None  # the direct forward model, fitted when the data has no landmarks
    landmark: LandmarkSettings | None = None  # the landmark teacher and its student, when it has them
    aggregation: AggregationSettings | None = None

    def __post_init__(self):
        check_kind(self.model)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown training objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if self.forward_model not in FORWARD_MODELS:
            raise ValueError(f"unknown forward model {self.forward_model!r}; choose one of {', '.join(FORWARD_MODELS)}")
        if self.objective == "expression" and self.model in CLOSED_FORM_KINDS:
            raise ValueError(f"the expression objective trains neural policies ({', '.join(NEURAL_KINDS)}); "
                             f"{self.model} is fitted in closed form: train it with objective 'supervised'")

    @property
    def rounds(self) -> int:
        """Aggregation rounds this run makes: only the expression objective has forward models to refit."""
        return self.aggregation.rounds if self.aggregation is not None and self.objective == "expression" else 0


FINETUNE_LR_FACTOR = 0.1  # of the model kind's default rate: move the pretrained weights, do not erase them


@dataclass
class FinetuneSettings:
    epochs: int = 150
    lr: float | None = None  # None: FINETUNE_LR_FACTOR x the kind's default
    patience: int = 20
    batch_size: int = 64
    val_fraction: float = 0.2  # test episodes, never trained on
    stop_fraction: float = 0.15  # of the remaining episodes, for early stopping
    max_train_samples: int | None = None  # cap on fitting rows (equal for both models), for sample-efficiency curves
    seed: int = 0
    device: str | None = None
    progress: bool = False
