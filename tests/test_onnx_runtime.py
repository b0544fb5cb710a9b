"""The exported policy runs in onnxruntime, batch of one or many, and answers what PyTorch answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facetwin.agents.policies.loader import default_policy_dir
from facetwin.agents.training.checkpoint import load_run_policy
from facetwin.app.cli import main
from facetwin.expression import EXPRESSION_DIM, N_BLENDSHAPES

ort = pytest.importorskip("onnxruntime", reason="onnxruntime comes with the test extra: pip install -e '.[test]'")


def expressions(n: int, seed: int = 0) -> np.ndarray:
    """Coefficients in [0, 1] (sparse, as faces are) and head angles within +-30 deg, in the policy's input layout."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, EXPRESSION_DIM), np.float32)
    x[:, :N_BLENDSHAPES] = rng.uniform(0, 1, (n, N_BLENDSHAPES)) * (rng.uniform(size=(n, N_BLENDSHAPES)) < 0.3)
    x[:, N_BLENDSHAPES:] = rng.uniform(-30, 30, (n, EXPRESSION_DIM - N_BLENDSHAPES))
    return x


def test_the_shipped_policy_exported_runs_in_onnxruntime_as_in_torch(tmp_path):
    out = tmp_path / "default.onnx"
    assert main(["export", "--onnx", "--out", str(out)]) == 0  # no run given: the shipped policy
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["expression"]
    policy = load_run_policy(default_policy_dir())
    module = policy.model.module.eval()
    for n in (1, 64):  # the batch axis is dynamic
        x = expressions(n, seed=n)
        (got,) = session.run(["commands"], {"expression": x})
        with torch.no_grad():
            want = module(torch.from_numpy(x)).numpy()
        assert got.shape == (n, 25)
        np.testing.assert_allclose(got, want, atol=1e-5)
        np.testing.assert_allclose(got, policy(x), atol=1e-4)  # and the NumPy path that mimic runs
    assert np.ptp(got, axis=0).max() > 0.1  # the answers depend on the expression: a real network was exported
