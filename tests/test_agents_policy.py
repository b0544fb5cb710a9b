"""The kan-attn policy: face-spec order and range, region structure, and a NumPy fast path equal to PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facetwin.agents.policies.numpy_inference import FastKanAttn
from facetwin.agents.policies.features import HEAD_SCALE_DEG, as_expression_batch
from facetwin.agents.policies.kinds import DEFAULT_HPARAMS, MODEL_KINDS, build_model
from facetwin.agents.policies.networks import MLPPolicy, mlp_hidden_for, parameter_count
from facetwin.agents.policies.kan_attention import KanAttnPolicy, servo_regions
from facetwin.agents.forward.synthetic_face import SyntheticFace
from facetwin.spec import REGIONS, default_spec

SMALL = {**DEFAULT_HPARAMS["kan-attn"], "d_model": 16, "heads": 2, "kan_hidden": []}  # structure, not capacity: small is quick


@pytest.fixture(scope="module")
def expressions():
    return SyntheticFace().sample(64, seed=5)[0]


def test_servo_regions_come_from_the_face_spec():
    spec = default_spec()
    regions = servo_regions(spec)
    assert len(regions) == spec.n == 25
    assert [REGIONS[r] for r in regions] == [s.region for s in spec.servos]
    policy = KanAttnPolicy(regions, **{**SMALL, "own_region_bias": 2.0})
    prior = policy.servo_bias.detach()
    assert torch.equal(prior.argmax(1), torch.tensor(regions))  # each servo starts out reading its own region


@pytest.mark.parametrize("gate", ["sigmoid", "softmax"])
def test_commands_are_in_range_and_the_numpy_path_equals_torch(gate, expressions):
    torch.manual_seed(3)
    policy = KanAttnPolicy(servo_regions(default_spec()), **{**SMALL, "gate": gate}).eval()
    policy.update_grids(torch.from_numpy(expressions))
    with torch.no_grad():
        ref = policy(torch.from_numpy(expressions)).numpy()
    assert ref.shape == (64, 25) and np.abs(ref).max() <= 1.0
    assert ref.std(0).min() > 1e-4  # every servo responds to the expression
    np.testing.assert_allclose(FastKanAttn(policy)(expressions), ref, atol=1e-5)


def test_plain_kan_fast_path_equals_torch(expressions):
    torch.manual_seed(1)
    model = build_model("kan", 25, servo_regions(default_spec()))
    model.module.update_grids(torch.from_numpy(expressions))
    with torch.no_grad():
        ref = model.module.eval()(torch.from_numpy(expressions)).numpy()
    np.testing.assert_allclose(model.predict(expressions), ref, atol=1e-5)


def test_head_angles_are_scaled_and_steer_the_output(expressions):
    torch.manual_seed(0)
    policy = KanAttnPolicy(servo_regions(default_spec()), **SMALL).eval()
    turned = expressions.copy()
    turned[:, 52] += HEAD_SCALE_DEG  # yaw +30 deg
    with torch.no_grad():
        moved = policy(torch.from_numpy(turned)) - policy(torch.from_numpy(expressions))
    assert moved.abs().max() > 1e-3


def test_expression_input_is_validated():
    with pytest.raises(ValueError, match="55 values"):
        as_expression_batch(np.zeros(52))
    with pytest.raises(ValueError, match="NaN"):
        as_expression_batch(np.full(55, np.nan))
    assert as_expression_batch(np.zeros(55)).shape == (1, 55)


def test_equal_size_mlp_for_the_benchmark_matches_the_parameter_count():
    spec = default_spec()
    attn = build_model("kan-attn", spec.n, servo_regions(spec)).module
    width = mlp_hidden_for(parameter_count(attn), spec.n)
    mlp = MLPPolicy(spec.n, hidden=(width, width))
    assert abs(parameter_count(mlp) - parameter_count(attn)) / parameter_count(attn) < 0.02


def test_unknown_hyper_parameters_are_named():
    with pytest.raises(ValueError, match="d_modle"):
        build_model("kan-attn", 25, servo_regions(default_spec()), {"d_modle": 8})
    with pytest.raises(ValueError, match="choose one of kan-attn, kan, mlp, linear, knn"):
        build_model("transformer", 25, servo_regions(default_spec()))
    assert set(DEFAULT_HPARAMS) == set(MODEL_KINDS)


def test_benchmark_reports_latency_and_the_training_step_ratio():
    from facetwin.app.bench.policy import run

    before = torch.get_num_threads()
    report = run(quick=True, device="cpu", batch_size=32)
    assert torch.get_num_threads() == before  # the pinned thread count is restored
    cpu = report["cpu"]
    assert abs(cpu["params"]["mlp"] - cpu["params"]["kan-attn"]) / cpu["params"]["kan-attn"] < 0.02
    assert set(cpu["latency_ms_batch1"]) == {"kan-attn", "mlp", "kan-attn (numpy path, used by policies)"}
    assert all(v > 0 for v in cpu["latency_ms_batch1"].values())
    ratio = cpu["train_step_ms"]["kan-attn"] / cpu["train_step_ms"]["mlp"]
    assert cpu["train_step_ratio_kan_attn_over_mlp"] == round(ratio, 2)
    assert cpu["train_step_ratio_alternating"] > 0
    small = cpu["small_policy"]  # the ratio where fixed per-step costs weigh most, reported next to the default's
    assert small["params"]["kan-attn"] < cpu["params"]["kan-attn"]
    assert abs(small["params"]["mlp"] - small["params"]["kan-attn"]) / small["params"]["kan-attn"] < 0.02
    assert small["train_step_ratio_kan_attn_over_mlp"] == round(small["train_step_ms"]["kan-attn"] / small["train_step_ms"]["mlp"], 2)


def test_training_steps_are_timed_in_runs_whose_first_step_is_not_timed():
    """A training loop repeats one model's step, so what a switch between models costs (caches refilled)
    stays out of the step time; strictly alternating steps would count it every time."""
    import time

    from facetwin.app.bench.policy import _interleaved

    last = []

    def step(name):
        def run():
            time.sleep(0.02 if last and last[-1] != name else 0.001)  # slow right after the other model ran
            last.append(name)
        return run

    fns = {"a": step("a"), "b": step("b")}
    assert _interleaved(fns, 3, lambda: None, block=3)["b"] < 10  # ms
    assert _interleaved(fns, 3, lambda: None)["b"] >= 20


def test_fused_attention_is_its_autograd_reference_with_exact_gradients(expressions):
    from facetwin.agents.policies.kan_attention import _SigmoidDrives

    torch.manual_seed(2)
    policy = KanAttnPolicy(servo_regions(default_spec()), **SMALL).double()
    psi = policy.input_act(torch.from_numpy(expressions[:5]).double() * policy.scale).detach().requires_grad_()
    params = [policy.value_emb, policy.name_emb, policy.head_proj.weight, policy.head_proj.bias, policy.region_query,
              policy.servo_query, policy.servo_bias, policy.readout, policy.readout_bias]

    def fused(v, *ps):
        return _SigmoidDrives.apply(v, *ps, policy)

    torch.testing.assert_close(fused(psi, *params), policy.drives_from_tokens(psi))
    assert torch.autograd.gradcheck(fused, (psi, *params), fast_mode=True)


def test_region_queries_read_their_own_regions_coefficients():
    from facetwin.agents.policies.kan_attention import coefficient_regions
    from facetwin.expression import BLENDSHAPE_NAMES

    regions = dict(zip(BLENDSHAPE_NAMES, (REGIONS[r] for r in coefficient_regions())))
    assert regions["eyeLookUpLeft"] == "eyes" and regions["eyeBlinkRight"] == "eyelids"
    assert regions["browInnerUp"] == "brows" and regions["jawOpen"] == regions["cheekPuff"] == "mouth"
    assert "neck" not in regions.values()  # the neck's token is the head pose
    policy = KanAttnPolicy(servo_regions(default_spec()), **SMALL)
    with torch.no_grad():
        values = policy.tables()["vv"].reshape(policy.heads, 52, len(REGIONS) - 1, -1).abs().sum((0, 3))  # (52, R-1)
    assert torch.equal(values.argmax(1), torch.tensor(coefficient_regions()))
    assert (values > 0).sum(1).eq(1).all()  # and only their own
