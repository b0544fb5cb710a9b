"""BatchTwin: N faces settled at once give, world by world, what FaceTwin gives one command at a time.

Tolerances (measured values in docs/batch.md): the rollout backend steps the same float64 physics as
FaceTwin, so landmarks agree to rounding; coefficients differ by the torch blendshape network against
LiteRT's run of the same weights. The warp backend steps in float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facetwin.motion.constraints import limit_coupling
from facetwin.motion.poses import NAMED_POSES, named_pose
from facetwin.sim.batch import BatchTwin
from facetwin.sim.twin import SETTLE_CHUNK
from facetwin.spec import CommandError

# backend -> landmarks (px), coefficients, head angles (deg), servo positions (normalised)
TOLERANCE = {
    "rollout": dict(landmarks=1e-6, blendshapes=5e-5, head=1e-6, servos=1e-9),
    "warp": dict(landmarks=1e-3, blendshapes=1e-4, head=1e-3, servos=1e-5),
}
N_RANDOM = {"rollout": 64, "warp": 6}  # Warp's CPU device is slow: a few worlds besides the named poses


def commands(spec, n_random: int, seed: int) -> np.ndarray:
    """Every named pose, then seeded random commands kept within the coupling limits as poses are."""
    rng = np.random.default_rng(seed)
    poses = [named_pose(name, spec) for name in NAMED_POSES]
    random = [np.clip(limit_coupling(c, spec), -1, 1) for c in rng.uniform(-1, 1, (n_random, spec.n))]
    return np.array(poses + random)


def backend_param(name):
    marks = [pytest.mark.slow] if name == "warp" else []
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(scope="module", params=[backend_param("rollout"), backend_param("warp")])
def batch(request, twin):
    if request.param == "warp":
        pytest.importorskip("mujoco_warp", reason="backend='warp' needs the warp extra: pip install 'facetwin[warp]'")
    n = len(NAMED_POSES) + N_RANDOM[request.param]
    with BatchTwin(n, device="cpu", backend=request.param) as bt:
        yield bt


def assert_world_equals_twin(state, i, twin_state, twin, tol):
    np.testing.assert_allclose(state.landmarks[i].cpu().numpy(), twin.landmarks_px(), atol=tol["landmarks"], rtol=0)
    np.testing.assert_allclose(state.blendshapes[i].cpu().numpy(), twin_state.expression.blendshapes, atol=tol["blendshapes"], rtol=0)
    np.testing.assert_allclose(state.head[i].cpu().numpy(), twin.head_pose(), atol=tol["head"], rtol=0)
    np.testing.assert_allclose(state.servo_positions[i].cpu().numpy(), twin_state.servo_positions, atol=tol["servos"], rtol=0)
    assert int(state.settle_steps[i]) == twin_state.settle_steps


def test_every_world_settles_as_facetwin_would_from_the_same_state(batch, twin):
    """Two commands in a row: the second settles from where the first left each face (apply does not reset)."""
    tol = TOLERANCE[batch.backend]
    first, second = (commands(batch.spec, N_RANDOM[batch.backend], seed) for seed in (0, 1))
    batch.reset(readout=False)
    states = batch.apply(first), batch.apply(second)
    for i in range(batch.n):
        twin.reset(readout=False)
        for cmds, state in zip((first, second), states):
            assert_world_equals_twin(state, i, twin.apply(cmds[i]), twin, tol)


def test_reset_is_the_neutral_face_at_rest(batch, twin):
    tol = TOLERANCE[batch.backend]
    batch.apply(commands(batch.spec, N_RANDOM[batch.backend], 2), readout=False)
    state = batch.reset()
    twin_state = twin.reset()
    assert (state.settle_steps == 0).all()
    assert (state.time == 0).all()
    for i in (0, batch.n - 1):
        assert_world_equals_twin(state, i, twin_state, twin, tol)


def test_a_settled_world_stays_where_it_rested(batch):
    """The neutral face at rest settles in one chunk; it does not move while the smile settles."""
    cmds = np.zeros((batch.n, batch.spec.n))
    cmds[1] = named_pose("smile", batch.spec)
    batch.reset(readout=False)
    state = batch.apply(cmds)
    assert int(state.settle_steps[0]) == SETTLE_CHUNK < int(state.settle_steps[1])
    assert float(state.time[0]) == pytest.approx(SETTLE_CHUNK * batch.model.opt.timestep)


def test_a_batch_reads_out_as_a_list_of_expressions(batch, twin):
    tol = TOLERANCE[batch.backend]
    cmds = commands(batch.spec, N_RANDOM[batch.backend], 3)
    batch.reset(readout=False)
    exprs = batch.apply(cmds).expressions()
    assert len(exprs) == batch.n
    twin.reset(readout=False)
    expected = twin.apply(cmds[-1]).expression
    got = exprs[-1]
    assert got.landmarks.shape == (478, 3) and got.landmarks.dtype == np.float32
    assert got.image_size == expected.image_size
    np.testing.assert_allclose(got.vector, expected.vector, atol=max(tol["blendshapes"], tol["head"]))
    assert got.timestamp == pytest.approx(expected.timestamp)


def test_readout_can_be_skipped(batch):
    state = batch.apply(np.zeros((batch.n, batch.spec.n)), readout=False)
    assert state.landmarks is None and state.blendshapes is None
    assert state.servo_positions.shape == (batch.n, batch.spec.n)
    with pytest.raises(RuntimeError, match="readout=False"):
        state.expressions()


def test_fixed_steps_move_each_world_as_facetwin_step_does(batch, twin):
    """The collector's and the envs' rule: hold a command for n physics steps, no settling, then read."""
    tol = TOLERANCE[batch.backend]
    first, second = (commands(batch.spec, N_RANDOM[batch.backend], seed) for seed in (4, 5))
    batch.reset(readout=False)
    states = batch.step(first, 17), batch.step(second, 1)
    for i in (0, 7, batch.n - 1):
        twin.reset(readout=False)
        for cmds, nstep, state in zip((first, second), (17, 1), states):
            twin.set_command(cmds[i])
            twin.step(nstep)
            expected = twin.state(0)
            assert_world_equals_twin(state, i, expected, twin, tol)
            assert float(state.time[i]) == pytest.approx(twin.data.time)


def test_worlds_left_out_neither_move_nor_change_command(batch):
    cmds = commands(batch.spec, N_RANDOM[batch.backend], 6)
    batch.reset(readout=False)
    before = batch.apply(cmds)
    chosen = np.array([1, 4])
    still = np.setdiff1d(np.arange(batch.n), chosen)
    smile = np.tile(named_pose("smile", batch.spec), (2, 1))
    moved = [batch.step(smile, 10, worlds=chosen, readout=False), batch.apply(smile, worlds=chosen, readout=False)]
    moved.append(batch.reset(worlds=chosen))
    for state in moved:
        for name in ("servo_positions", "time", "command"):
            np.testing.assert_array_equal(getattr(state, name)[still].cpu().numpy(), getattr(before, name)[still].cpu().numpy())
    assert not torch.equal(moved[0].servo_positions[chosen], before.servo_positions[chosen])
    assert not torch.equal(moved[1].servo_positions[chosen], moved[0].servo_positions[chosen])
    np.testing.assert_array_equal(moved[2].landmarks[still].cpu().numpy(), before.landmarks[still].cpu().numpy())
    assert (moved[2].time[chosen] == 0).all() and (moved[2].command[chosen] == 0).all()


def test_the_litert_network_reads_coefficients_as_facetwin_does(twin):
    """network="litert": the same LiteRT run on landmarks equal to rounding, so the same coefficients."""
    cmds = commands(twin.spec, 6, 7)
    with BatchTwin(len(cmds), network="litert") as bt:
        state = bt.apply(cmds)
    for i in range(len(cmds)):
        twin.reset(readout=False)
        expected = twin.apply(cmds[i]).expression.blendshapes
        np.testing.assert_allclose(state.blendshapes[i].numpy(), expected, atol=1e-6, rtol=0)


# -- bad input --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    with BatchTwin(2) as bt:
        yield bt


@pytest.mark.parametrize("n", [0, -3, 1.5, True])
def test_n_worlds_must_be_a_positive_integer(n):
    with pytest.raises(ValueError, match="n_worlds"):
        BatchTwin(n)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_cuda_names_the_problem_and_the_fix():
    with pytest.raises(ValueError, match=r"torch.cuda.is_available\(\) is False.*device='cpu'"):
        BatchTwin(4, device="cuda")


@pytest.mark.parametrize("device", ["mps", "not-a-device"])
def test_only_cpu_and_cuda_devices(device):
    with pytest.raises(ValueError, match="cpu"):
        BatchTwin(4, device=device)


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match="rollout, warp"):
        BatchTwin(4, backend="jax")


def test_unknown_network_lists_the_known_ones():
    with pytest.raises(ValueError, match="torch, litert"):
        BatchTwin(4, network="onnx")


def test_commands_are_checked_per_world_as_facetwin_checks_them(small):
    n = small.spec.n
    with pytest.raises(CommandError, match=r"\(2, 25\)"):
        small.apply(np.zeros((3, n)))
    with pytest.raises(CommandError, match=r"\(2, 25\)"):
        small.apply(np.zeros(n))
    out_of_range = np.zeros((2, n))
    out_of_range[1, 0] = 1.5
    with pytest.raises(CommandError, match="world 1: .*out of range"):
        small.apply(out_of_range)
    nan = np.zeros((2, n))
    nan[0, 3] = np.nan
    with pytest.raises(CommandError, match="world 0: .*finite"):
        small.apply(nan)


def test_worlds_are_checked(small):
    with pytest.raises(ValueError, match=r"distinct indices in \[0, 2\)"):
        small.reset(worlds=[2])
    with pytest.raises(ValueError, match="one entry per world"):
        small.reset(worlds=np.array([True]))
    with pytest.raises(CommandError, match=r"\(1, 25\)"):
        small.apply(np.zeros((2, small.spec.n)), worlds=[0])
    with pytest.raises(ValueError, match="nstep"):
        small.step(np.zeros((2, small.spec.n)), 0)


def test_warp_backend_without_mujoco_warp_names_the_extra(monkeypatch):
    import sys

    from facetwin.sim.batch.warp_backend import import_warp

    monkeypatch.setitem(sys.modules, "mujoco_warp", None)  # makes `import mujoco_warp` fail
    with pytest.raises(ImportError, match=r"facetwin\[warp\]"):
        import_warp()
