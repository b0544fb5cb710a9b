"""Aggregation rounds: the twin is queried where the policy goes, and the forward models are refitted there.
Recorded commands stay within +-0.4, so a policy asked for broad targets leaves the data, as it does for people."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from facetwin.agents.forward.aggregation import AggregationSettings, aggregate, closest_reads, twin_query
from facetwin.agents.forward.expression_objective import Confirmed, Coupling, ExpressionSettings, TargetSampler
from facetwin.agents.forward.landmark import LandmarkSettings
from facetwin.agents.training.minibatch import FitSettings
from facetwin.agents.training.config import TrainConfig
from facetwin.agents.training.train import train_from_arrays
from facetwin.app.cli import main
from facetwin.dataset import DatasetWriter, EpisodeFrames
from facetwin.expression import ACTIVE_BLENDSHAPES

pytestmark = pytest.mark.usefixtures("torch_one_thread")
SMALL = LandmarkSettings(hidden=(128, 128), epochs=40, batch_size=64, distil_samples=3000, distil_hidden=(256, 256),
                         distil_epochs=40, distil_batch_size=128)
ROUND = AggregationSettings(rounds=1, targets=150, distil_samples=2000, teacher_epochs=20, distil_epochs=20,
                            policy_epochs=3, lr=2e-3)


@pytest.fixture(scope="module")
def query(twin):
    return twin_query(twin.spec)


@pytest.fixture(scope="module")
def recorded(twin, query):
    rng = np.random.default_rng(0)
    c = Coupling(twin.spec)(torch.as_tensor(rng.uniform(-0.4, 0.4, (600, twin.spec.n)), dtype=torch.float32)).numpy()
    e, lm = query(c)
    return c, e, lm


@pytest.fixture(scope="module")
def expression_run(recorded):
    c, e, lm = recorded
    config = TrainConfig(model="mlp", objective="expression", forward_model="landmark", landmark=SMALL,
                         fit=FitSettings(epochs=20, progress=False), expression=ExpressionSettings(epochs=5, progress=False))
    return train_from_arrays(e, c, config, landmarks=lm)


def _error(model, commands, expressions):
    act = np.array(ACTIVE_BLENDSHAPES)
    with torch.no_grad():
        return float(np.abs(model(torch.as_tensor(commands)).numpy()[:, act] - expressions[:, act]).mean())


def test_a_round_makes_the_forward_model_right_where_the_policy_goes(recorded, expression_run, query, twin):
    c, e, lm = recorded
    result, coupling = expression_run, Coupling(twin.spec)
    forward, teacher, module = result.expression.forward, result.expression.teacher, result.policy.model.module
    # fresh targets, not the round's own: the policy's answers to them are where it will go next
    targets = TargetSampler(e).sample(100, np.random.default_rng(42))
    with torch.no_grad():
        answers = coupling(module(torch.as_tensor(targets))).numpy()
    truth, _ = query(answers)
    before = _error(forward, answers, truth), _error(teacher, answers, truth)
    forward_before = copy.deepcopy(forward)
    rounds = aggregate(result.policy.model, forward, teacher, coupling, query, e, c, lm, e[:0], c[:0], ROUND,
                       ExpressionSettings(progress=False))
    after = _error(forward, answers, truth), _error(teacher, answers, truth)
    assert len(rounds) == 1 and rounds[0].queries == 3 * ROUND.targets  # answer, refined, explored
    # the round measured the student where the policy went, before refitting: worse than on the recorded commands
    assert rounds[0].student_error > _error(forward_before, c[:100], e[:100])
    assert after[0] < 0.85 * before[0] and after[1] < 0.85 * before[1]


def test_every_twin_query_is_counted_in_the_runs_data_budget(recorded, query, tmp_path):
    c, e, lm = recorded
    tiny = LandmarkSettings(hidden=(64,), epochs=2, distil_samples=500, distil_hidden=(64,), distil_epochs=2)
    rounds = AggregationSettings(rounds=2, targets=20, distil_samples=200, teacher_epochs=1, distil_epochs=1, policy_epochs=1)
    config = TrainConfig(model="mlp", objective="expression", forward_model="landmark", landmark=tiny,
                         fit=FitSettings(epochs=1, progress=False), expression=ExpressionSettings(epochs=1, progress=False),
                         aggregation=rounds)
    result = train_from_arrays(e, c, config, landmarks=lm, out_dir=tmp_path / "run", query=query)
    record = json.loads((result.run_dir / "config.json").read_text())["training"]["aggregation"]
    assert [r["queries"] for r in record["rounds"]] == [60, 60]  # 3 per target
    assert record["twin_queries"] == 120 and record["twin_samples"] == len(c) + 120


def test_train_cli_queries_the_twin_by_default_and_states_the_data_budget(recorded, tmp_path, capsys):
    c, e, lm = recorded
    data = tmp_path / "data"
    with DatasetWriter(data, fps=30) as writer:
        for rows in (slice(0, 300), slice(300, 600)):
            writer.add_episode(EpisodeFrames(action=c[rows], state=c[rows], expression=e[rows], landmarks=lm[rows]))
    assert main(["train", "--data", str(data), "--model", "mlp", "--epochs", "1", "--expression-epochs", "1",
                 "--aggregate-targets", "8", "--no-progress", "--out", str(tmp_path / "run")]) == 0
    assert "twin samples in all: 648 (48 of them queried in aggregation)" in capsys.readouterr().out  # 2 rounds x 3 x 8
    # reusing that run's forward models takes them as they are: no further queries unless asked
    assert main(["train", "--data", str(data), "--model", "mlp", "--epochs", "1", "--expression-epochs", "1",
                 "--no-progress", "--forward", str(tmp_path / "run"), "--out", str(tmp_path / "reuse")]) == 0
    assert "aggregation" not in json.loads((tmp_path / "reuse" / "config.json").read_text())["training"]


def test_rounds_without_a_twin_to_query_are_a_clear_error(recorded):
    c, e, lm = recorded
    with pytest.raises(ValueError, match="query the twin"):
        train_from_arrays(e, c, TrainConfig(model="mlp", objective="expression", aggregation=AggregationSettings()),
                          landmarks=lm)


def test_train_cli_refuses_negative_rounds(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--aggregate-rounds", "-1"]) != 0
    assert "--aggregate-rounds" in capsys.readouterr().err


@pytest.fixture(scope="module")
def one_round_of_six(recorded, tmp_path_factory) -> list[str]:
    """`facetwin train` on 300 recorded frames, quick, with one aggregation round of 6 targets."""
    c, e, lm = recorded
    data = tmp_path_factory.mktemp("recorded") / "data"
    with DatasetWriter(data, fps=30) as writer:
        for rows in (slice(0, 150), slice(150, 300)):
            writer.add_episode(EpisodeFrames(action=c[rows], state=c[rows], expression=e[rows], landmarks=lm[rows]))
    return ["train", "--data", str(data), "--model", "mlp", "--epochs", "1", "--expression-epochs", "1",
            "--aggregate-rounds", "1", "--aggregate-targets", "6", "--no-progress"]


def test_train_cli_settles_the_rounds_queries_on_a_batched_twin_when_asked(one_round_of_six, tmp_path, capsys):
    """The answers of a batched query equal one twin's (tests/test_sim_batch_query.py); here the run takes it."""
    common = one_round_of_six
    assert main([*common, "--query-worlds", "5", "--out", str(tmp_path / "batched")]) == 0  # 18 queries: parts of 5
    assert "(18 of them queried in aggregation)" in capsys.readouterr().out
    training = json.loads((tmp_path / "batched" / "config.json").read_text())["training"]
    assert training["aggregation"]["settings"]["query_worlds"] == 5
    assert main([*common, "--query-worlds", "-1", "--out", str(tmp_path / "bad")]) != 0
    assert "--query-worlds" in capsys.readouterr().err


def test_renders_without_a_face_are_left_out_of_a_round_and_counted(recorded, query, tmp_path):
    c, e, lm = recorded

    def every_third_unread(commands):
        expressions, landmarks = query(commands)
        expressions[::3], landmarks[::3] = np.nan, np.nan  # as the pixel readout marks a render with no face found
        return expressions, landmarks

    rounds = AggregationSettings(rounds=1, targets=12, distil_epochs=1, policy_epochs=1)
    config = TrainConfig(model="mlp", objective="expression", forward_model="direct", aggregation=rounds,
                         fit=FitSettings(epochs=1, progress=False), expression=ExpressionSettings(epochs=1, progress=False))
    result = train_from_arrays(e, c, config, out_dir=tmp_path / "run", query=every_third_unread)
    (only,) = result.aggregation
    assert only.queries == 36 and only.unread == 12
    assert np.isfinite([only.policy_twin_loss, only.refined_twin_loss, only.student_error]).all()
    assert all(torch.isfinite(p).all() for p in result.expression.forward.parameters())  # no NaN reached a refit

    def nothing_read(commands):
        expressions, landmarks = query(commands)
        return np.full_like(expressions, np.nan), np.full_like(landmarks, np.nan)

    with pytest.raises(ValueError, match="found no face in any of the 36 renders"):
        train_from_arrays(e, c, config, query=nothing_read)


def test_the_pixel_query_marks_a_render_without_a_face_unread(monkeypatch):
    from facetwin.expression import Expression
    from facetwin.sim.twin import FaceTwin

    class EveryOtherRenderFaceless:
        def read(self, poses):
            seen = Expression(blendshapes=np.full(52, 0.5, np.float32), head=np.zeros(3, np.float32),
                              landmarks=np.ones((478, 3), np.float32))
            return [seen if i % 2 == 0 else Expression.empty() for i in range(len(poses))]

    monkeypatch.setattr(FaceTwin, "pixel_readout", lambda self, *a, **k: EveryOtherRenderFaceless())
    query = twin_query(readout="pixels")
    commands = np.zeros((4, 25), np.float32)
    expressions, landmarks = query(commands)
    assert expressions.shape == (4, 55) and landmarks.shape == (4, 478, 3)
    assert np.isnan(expressions[1::2]).all() and np.isnan(landmarks[1::2]).all()
    assert np.isfinite(expressions[::2]).all() and np.isfinite(landmarks[::2]).all()


def test_an_exploring_round_also_queries_each_answer_scaled_region_by_region(recorded, query, twin):
    c, e, lm = recorded
    seen = []

    def recording(commands):
        seen.append(commands.copy())
        return query(commands)

    rounds = AggregationSettings(rounds=1, targets=10, distil_epochs=1, policy_epochs=1, explore=0.3)
    config = TrainConfig(model="mlp", objective="expression", forward_model="direct", aggregation=rounds,
                         fit=FitSettings(epochs=1, progress=False), expression=ExpressionSettings(epochs=1, progress=False))
    result = train_from_arrays(e, c, config, query=recording)
    assert result.aggregation[0].queries == 30
    answers, _, explored = np.split(seen[0], 3)
    assert np.abs(explored).max() <= 1.0 and not np.allclose(explored, answers)
    # one gain per target and region: the ratio to the answer is the same across the region's servos
    regions = [s.region for s in twin.spec.servos]
    for region in ("brows", "eyes", "neck"):
        cols = [i for i, r in enumerate(regions) if r == region]
        ratio = explored[:, cols] / answers[:, cols]
        clear = (np.abs(explored[:, cols]) < 0.999).all(1) & (np.abs(answers[:, cols]) > 1e-3).all(1)
        assert clear.sum() >= 3
        np.testing.assert_allclose(ratio[clear], ratio[clear][:, :1].repeat(len(cols), 1), rtol=1e-4)


def test_train_cli_explores_by_default_leaves_it_out_at_zero_and_refuses_a_negative_spread(one_round_of_six, tmp_path,
                                                                                          capsys):
    common = one_round_of_six
    assert main([*common, "--out", str(tmp_path / "explore")]) == 0
    assert "(18 of them queried in aggregation)" in capsys.readouterr().out  # 3 per target
    training = json.loads((tmp_path / "explore" / "config.json").read_text())["training"]
    assert training["aggregation"]["settings"]["explore"] == AggregationSettings().explore > 0
    assert main([*common, "--aggregate-explore", "0", "--out", str(tmp_path / "plain")]) == 0
    assert "(12 of them queried in aggregation)" in capsys.readouterr().out  # answer and refined answer only
    assert main([*common, "--aggregate-explore", "-0.1", "--out", str(tmp_path / "bad")]) != 0
    assert "--aggregate-explore" in capsys.readouterr().err


def test_each_target_is_confirmed_by_whichever_query_the_twin_read_closest_to_it():
    act = np.array(ACTIVE_BLENDSHAPES)
    targets = np.zeros((3, 55), np.float32)
    targets[:, act[0]] = [0.2, 0.5, 0.9]
    queried = np.arange(2 * 3 * 4, dtype=np.float32).reshape(6, 4)  # block 0 (answers) rows 0-2, block 1 rows 3-5
    read = np.zeros((6, 55), np.float32)
    read[:, act[0]] = [0.2, 0.1, 0.0, 0.9, 0.45, np.nan]  # target 0: its answer; target 1: the second query
    read[5] = np.nan  # target 2's second render showed no face; its answer still counts
    kept, chosen = closest_reads(targets, queried, read, act)
    np.testing.assert_array_equal(kept, targets)
    np.testing.assert_array_equal(chosen, queried[[0, 4, 2]])
    read[2] = np.nan  # a target with no reading at all is left out
    kept, chosen = closest_reads(targets, queried, read, act)
    np.testing.assert_array_equal(kept, targets[:2])
    np.testing.assert_array_equal(chosen, queried[[0, 4]])


def test_confirmed_answers_pull_the_policy_toward_them_in_the_expression_pass(recorded, expression_run, twin):
    c, e, _ = recorded
    forward = expression_run.expression.forward
    targets = TargetSampler(e).sample(200, np.random.default_rng(3))
    commands = c[:200]  # answers the policy would not give on its own
    gaps = []
    for confirmed in (None, Confirmed(targets, commands, weight=10.0)):
        model = copy.deepcopy(expression_run.policy.model)
        model.fit_expression(forward, Coupling(twin.spec), e, c, e[:0], c[:0],
                             ExpressionSettings(epochs=5, progress=False), confirmed=confirmed)
        gaps.append(float(((model.predict(targets) - commands) ** 2).mean()))
    assert gaps[1] < 0.8 * gaps[0]


def test_train_cli_confirms_only_when_asked(one_round_of_six, tmp_path, capsys):
    common = one_round_of_six
    assert main([*common, "--aggregate-confirm", "1.0", "--out", str(tmp_path / "confirm")]) == 0
    training = json.loads((tmp_path / "confirm" / "config.json").read_text())["training"]
    assert training["aggregation"]["settings"]["confirm"] == 1.0
    assert AggregationSettings().confirm == 0.0  # off unless asked for
    assert main([*common, "--aggregate-confirm", "-1", "--out", str(tmp_path / "bad")]) != 0
    assert "--aggregate-confirm" in capsys.readouterr().err
