"""A policy that learns from camera labels: nearest neighbours in pixel-label space propose, pixels confirm.

Several commands read alike through the camera, so averaging the commands of near labels (what a regression
or a k-mean lookup does) lands between them. Here each of the k training rows whose camera reading is
closest to the target proposes its own command; the twin settles every proposal and the pixel readout
reads them as one batch; the one that reads closest to the target wins. `search` more pixel evaluations then
go to a CMA-ES search from the winner (the pixel oracle's, warm-started by the policy).

Its training data is a `facetwin collect --readout pixels` dataset (a `knn` run trained on one holds every
row); it needs the twin and the camera at inference, as the real face has its camera.
"""

from __future__ import annotations

import numpy as np

from facetwin.agents.evaluation.metrics import expression_error
from facetwin.agents.evaluation.oracle import OracleConfig, feasible, optimise
from facetwin.agents.policies.features import as_expression_batch, input_scale
from facetwin.agents.policies.loader import FacePolicy
from facetwin.expression import N_BLENDSHAPES, Expression


class ConfirmError(ValueError):
    """Labels and commands that cannot make proposals; the message says what to give instead."""


class PixelConfirmed:
    """expression (55,) -> the best-reading of its `k` nearest labelled commands (then `search` pixel evaluations)."""

    def __init__(self, labels: np.ndarray, commands: np.ndarray, twin, readout, k: int = 13, search: int = 0, seed: int = 0):
        labels, commands = np.asarray(labels, np.float32), np.asarray(commands, np.float64)
        if labels.ndim != 2 or commands.ndim != 2 or len(labels) != len(commands) or len(labels) == 0:
            raise ConfirmError(f"labels (N, 55) and commands (N, {twin.spec.n}) must be non-empty with one row each, "
                               f"got {labels.shape} and {commands.shape}")
        if k < 1 or search < 0:
            raise ConfirmError(f"k must be at least 1 and search at least 0, got {k} and {search}")
        self.x, self.y = labels * input_scale(), commands
        self.twin, self.readout, self.k, self.search, self.seed = twin, readout, min(k, len(labels)), search, seed
        self.evaluations = 0  # pixel readouts spent so far

    def proposals(self, expression: np.ndarray) -> np.ndarray:
        """(k, n) commands of the rows whose labels are nearest to `expression`, nearest first."""
        q = as_expression_batch(expression)[0] * input_scale()
        d = ((self.x - q) ** 2).sum(1)
        nearest = np.argpartition(d, self.k - 1)[: self.k] if self.k < len(d) else np.arange(len(d))
        return self.y[nearest[np.argsort(d[nearest])]]

    def __call__(self, expression: np.ndarray) -> np.ndarray:
        v = as_expression_batch(expression)[0]
        target = Expression(v[:N_BLENDSHAPES].astype(np.float64), v[N_BLENDSHAPES:].astype(np.float64))
        commands = np.array([feasible(c, self.twin) for c in self.proposals(v)])
        poses = []
        for c in commands:
            self.twin.reset(readout=False)
            self.twin.apply(c, readout=False)
            poses.append(self.twin.data.qpos.copy())
        seen = self.readout.read(np.array(poses))
        self.evaluations += len(poses)
        scores = [expression_error(target, e).blendshape_mae if e.face_found else np.inf for e in seen]
        best = commands[int(np.argmin(scores))]
        if self.search:
            found = optimise(self.twin, target, {"proposal": best}, OracleConfig(budget=self.search, seed=self.seed),
                             readout=self.readout)
            self.evaluations += found.evaluations
            best = found.command
        return best


def pixel_confirmed_policy(dataset, twin, readout, k: int = 13, search: int = 0) -> FacePolicy:
    """The policy over a pixel-labelled dataset's rows (`facetwin collect --readout pixels`)."""
    from facetwin.dataset import load_arrays

    arrays = load_arrays(dataset)
    if arrays.info.readout != "pixels":
        raise ConfirmError(f"{dataset} was read through the {arrays.info.readout} readout; pixel confirmation looks "
                           "labels up in camera terms: collect one with `facetwin collect --readout pixels`")
    act = PixelConfirmed(arrays.expression, arrays.action, twin, readout, k, search)
    return FacePolicy(f"pixel-confirmed knn (k {k}, search {search})", act, twin.spec.n, "pixel-knn")
