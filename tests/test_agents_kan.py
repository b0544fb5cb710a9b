"""facetwin's KAN layers compute what pykan's do, from the same weights, without pykan's (batch, out, in) tensors."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from facetwin.agents.policies.kan import KAN, KANActivation, KANLayer, b_spline_bases, from_pykan, to_pykan
from kan.KANLayer import KANLayer as PykanLayer


def pykan_layer(in_dim=4, out_dim=3, num=5, k=3, seed=0):
    torch.manual_seed(seed)
    layer = PykanLayer(in_dim=in_dim, out_dim=out_dim, num=num, k=k)
    with torch.no_grad():  # non-trivial weights everywhere, one edge masked off
        layer.coef.normal_(0, 0.5)
        layer.scale_sp.uniform_(0.5, 1.5)
        layer.mask[0, 1] = 0.0
    return layer


def samples(n=300, dim=4, seed=1):
    return torch.from_numpy(np.random.default_rng(seed).normal(0, 0.8, (n, dim)).astype(np.float32))


def test_forward_matches_pykan_including_outside_the_grid():
    theirs = pykan_layer()
    ours = KANLayer.from_pykan(theirs)
    x = samples()  # ~1% of points fall outside [-1, 1] + k knots, where only the SiLU term remains
    x[0] = torch.tensor([3.0, -3.0, 0.0, 1.0])
    torch.testing.assert_close(ours(x), theirs(x)[0], atol=1e-5, rtol=1e-5)


def test_grid_update_from_data_matches_pykan():
    theirs, x = pykan_layer(), samples() * 2.5
    ours = KANLayer.from_pykan(theirs)
    theirs.update_grid_from_samples(x)
    ours.update_grid(x)
    torch.testing.assert_close(ours.grid, theirs.grid, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(ours.grid[0], ours.grid[1])  # per-input grids followed each input's data
    torch.testing.assert_close(ours(x), theirs(x)[0], atol=1e-4, rtol=1e-4)


def test_grid_extension_matches_pykan_and_keeps_the_function():
    parent, x = pykan_layer(), samples()
    parent.update_grid_from_samples(x)
    ours = KANLayer.from_pykan(parent)
    child = PykanLayer(in_dim=4, out_dim=3, num=12, k=3)
    child.initialize_grid_from_parent(parent, x)
    fine = ours.refine(12, x)
    assert fine.num == 12 and fine.coef.shape == (4, 3, 15)
    torch.testing.assert_close(fine.grid, child.grid, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fine.coef, child.coef, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(fine(x), ours(x), atol=2e-2, rtol=0)  # a finer grid re-fits the same curves


def test_stack_exports_to_pykan_and_back_without_writing_checkpoints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    ours = KAN([4, 5, 2], num=6)
    with torch.no_grad():
        for layer in ours.layers:
            layer.bias.normal_()
    x = samples()
    ours.update_grid(x)
    theirs = to_pykan(ours)
    torch.testing.assert_close(theirs(x), ours(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(from_pykan(theirs)(x), ours(x), atol=1e-6, rtol=1e-6)
    assert list(tmp_path.iterdir()) == []  # pykan's default ./model was not created
    to_pykan(ours, ckpt_path=tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "history.txt").is_file()  # and it saves where asked


def test_diagonal_activation_is_a_pykan_layer_with_a_diagonal_mask():
    torch.manual_seed(0)
    act = KANActivation(3, num=5, k=3)
    x = samples(dim=3)
    with torch.no_grad():
        act.coef.normal_(0, 0.5)
        act.scale_base.uniform_(-1, 1)
    act.update_grid(x * 1.7)
    theirs = PykanLayer(in_dim=3, out_dim=3, num=5, k=3)
    with torch.no_grad():
        theirs.grid.copy_(act.grid)
        theirs.mask.copy_(torch.eye(3))
        for i in range(3):
            theirs.coef[i, i] = act.coef[i]
            theirs.scale_base[i, i] = act.scale_base[i]
            theirs.scale_sp[i, i] = act.scale_sp[i]
    torch.testing.assert_close(act(x), theirs(x)[0], atol=1e-5, rtol=1e-5)


def test_closed_form_spline_gradient_matches_finite_differences():
    layer = KANLayer(3, 2, num=5, k=3).double()
    x = torch.from_numpy(np.random.default_rng(2).normal(0, 0.9, (12, 3)))
    layer.update_grid(x * 1.3)  # non-uniform knots
    assert torch.autograd.gradcheck(lambda v: b_spline_bases(v, layer.grid, 3), (x.clone().requires_grad_(),))
    assert torch.autograd.gradcheck(layer, (x.clone().requires_grad_(),))


class _Shapes(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.seen.append(tuple(t.shape))
        return out


def test_forward_and_backward_never_build_batch_by_out_by_in():
    layer = KANLayer(4, 3, num=5, k=3)
    x = samples(n=7).requires_grad_()
    with _Shapes() as mode:
        layer(x).sum().backward()
    batch_out_in = {(7, 3, 4), (7, 4, 3)}
    assert mode.seen and not batch_out_in & set(mode.seen)
    with _Shapes() as mode:
        PykanLayer(in_dim=4, out_dim=3)(x.detach())
    assert batch_out_in & set(mode.seen)  # the probe does see pykan's


def _reference(layer, x):
    """pykan's formula written out with the Cox-de Boor bases: silu(x) @ scale_base + bases . (coef * scale_sp)."""
    bases = b_spline_bases(x, layer.grid, layer.k)  # (batch, in, coeff)
    if isinstance(layer, KANActivation):
        return layer.scale_base * torch.nn.functional.silu(x) + layer.scale_sp * (bases * layer.coef).sum(-1)
    spline = torch.einsum("bic,ioc->bo", bases, layer.coef * layer.scale_sp.unsqueeze(-1))
    return torch.nn.functional.silu(x) @ layer.scale_base + spline + layer.bias


def _with_weights(layer):
    with torch.no_grad():
        layer.coef.normal_(0, 0.5)
        layer.scale_base.uniform_(-1, 1)
        layer.scale_sp.uniform_(0.5, 1.5)
        if getattr(layer, "bias", None) is not None:
            layer.bias.normal_()
    return layer


def test_fast_paths_compute_the_recursions_function_and_gradients():
    """Uniform knots (closed form), data-fitted knots (per-cell polynomials, bin lookup) and knots too
    close for the bin lookup (searched by comparison) all give pykan's curves and their gradients."""
    x = samples(n=200, dim=3) * 1.4  # some points outside the grid, where only SiLU remains
    cases = [("uniform", lambda lay: None), ("fitted", lambda lay: lay.update_grid(x)),
             ("clustered", lambda lay: (setattr(lay, "grid_eps", 0.0), lay.update_grid(x.clamp(min=0))))]
    for make in (lambda: KANLayer(3, 2, num=5, k=3), lambda: KANActivation(3, num=5, k=3)):
        for name, prepare in cases:
            torch.manual_seed(0)
            layer = _with_weights(make())
            prepare(layer)
            if name == "clustered":  # many samples at 0: quantile knots coincide there
                assert layer._grid_cache.get(layer.grid, layer.k)[0].bins is None
            xr = x.clone().requires_grad_()
            params = [xr, layer.coef, layer.scale_base, layer.scale_sp]
            ours, ref = layer(xr), _reference(layer, xr)
            torch.testing.assert_close(ours, ref, atol=2e-5, rtol=1e-5, msg=name)
            weights = torch.randn_like(ref)
            for g_ours, g_ref in zip(torch.autograd.grad((ours * weights).sum(), params),
                                     torch.autograd.grad((ref * weights).sum(), params)):
                torch.testing.assert_close(g_ours, g_ref, atol=1e-4, rtol=1e-4, msg=name)


def test_the_uniform_closed_form_holds_for_every_spline_order():
    """The symmetric truncated-power form of the cardinal B-spline is written for any order k."""
    x = samples(n=200, dim=3) * 1.4
    for k in (0, 1, 2, 3, 4):
        for make in (lambda: KANLayer(3, 2, num=5, k=k), lambda: KANActivation(3, num=5, k=k)):
            torch.manual_seed(k)
            layer = _with_weights(make())
            assert layer._grid_cache.get(layer.grid, layer.k)[1] is not None  # the uniform path runs
            xr = x.clone().requires_grad_()
            params = [xr, layer.coef, layer.scale_base, layer.scale_sp]
            ours, ref = layer(xr), _reference(layer, xr)
            torch.testing.assert_close(ours, ref, atol=2e-5, rtol=1e-5, msg=f"k={k}")
            weights = torch.randn_like(ref)
            for g_ours, g_ref in zip(torch.autograd.grad((ours * weights).sum(), params),
                                     torch.autograd.grad((ref * weights).sum(), params)):
                torch.testing.assert_close(g_ours, g_ref, atol=1e-4, rtol=1e-4, msg=f"k={k}")


def test_an_input_the_data_never_moves_keeps_its_knots():
    """A constant column (MediaPipe's _neutral score is always 0) gives no range to put knots on: its grid
    stays, and the layer keeps its uniform closed-form path."""
    x = samples(n=64, dim=3)
    x[:, 1] = 0.3
    for layer in (_with_weights(KANLayer(3, 2, grid_eps=1.0)), _with_weights(KANActivation(3, grid_eps=1.0))):
        before = layer.grid[1].clone()
        layer.update_grid(x)
        assert torch.equal(layer.grid[1], before) and not torch.equal(layer.grid[0], before)
        assert layer._grid_cache.get(layer.grid, layer.k)[1] is not None
        torch.testing.assert_close(layer(x), _reference(layer, x), atol=2e-5, rtol=1e-5)


def test_fast_path_gradients_match_finite_differences():
    from torch.func import functional_call

    x = torch.from_numpy(np.random.default_rng(3).normal(0, 0.9, (9, 3)))
    for layer in (KANLayer(3, 2, num=4, k=3), KANActivation(3, num=4, k=2)):
        layer = _with_weights(layer).double()
        for fitted in (False, True):
            if fitted:
                layer.update_grid(x * 1.2)
            names = [n for n, _ in layer.named_parameters()]

            def f(v, *ps):
                return functional_call(layer, dict(zip(names, ps)), (v,))

            inputs = (x.clone().requires_grad_(), *(p.detach().clone().requires_grad_() for p in layer.parameters()))
            assert torch.autograd.gradcheck(f, inputs)


def test_fast_paths_follow_grids_changed_after_a_forward_pass():
    x = samples(n=64, dim=3)
    fitted = _with_weights(KANLayer(3, 2))
    fitted.update_grid(x * 2)
    fresh = KANLayer(3, 2)
    fresh(x)  # caches the initial grid's tables
    fresh.load_state_dict(fitted.state_dict())
    torch.testing.assert_close(fresh(x), _reference(fitted, x), atol=2e-5, rtol=1e-5)
    fresh.double().update_grid(x.double())
    fresh.float()
    torch.testing.assert_close(fresh(x), _reference(fresh, x), atol=2e-5, rtol=1e-5)


def test_cubic_splines_on_the_cpu_run_compiled_kernels_that_match_the_pytorch_closed_form(monkeypatch):
    """The compiled kernels and the PyTorch closed form (what CUDA runs) give the same values and
    gradients, and the kernels are what a CPU forward pass actually uses for k = 3."""
    from facetwin.agents.policies import spline_kernels

    assert spline_kernels.applies(torch.zeros(2, 3), 3) and not spline_kernels.applies(torch.zeros(2, 3), 2)
    calls = []
    for name in ("features", "spline_input_grad", "add_curves", "curves_backward"):
        real = getattr(spline_kernels, name)
        monkeypatch.setattr(spline_kernels, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    x = samples(n=300, dim=3) * 1.4  # some points outside the grid
    for make in (lambda: KANLayer(3, 2, num=5, k=3), lambda: KANActivation(3, num=5, k=3)):
        torch.manual_seed(0)
        layer = _with_weights(make())
        results = []
        for kernels in (True, False):
            monkeypatch.setattr(spline_kernels, "applies", lambda t, k, _on=kernels: _on)
            xr = x.clone().requires_grad_()
            out = layer(xr)
            grads = torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(),
                                        [xr, layer.coef, layer.scale_base, layer.scale_sp])
            results.append((out, *grads))
        for ours, ref in zip(*results):
            torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    assert {"features", "spline_input_grad", "add_curves", "curves_backward"} <= set(calls)
