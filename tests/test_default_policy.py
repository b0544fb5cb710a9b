"""The policy shipped with facetwin: small, made for this face, and it mimics without any training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facetwin.agents.policies.loader import PolicyLoadError, default_policy_dir, load_policy
from facetwin.agents.training.checkpoint import CONFIG_FILE, WEIGHTS_FILE, RunConfig
from facetwin.app.cli import main
from facetwin.spec import default_spec

SMILING_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "faces" / "videos" / "single_face.mp4"
MAX_WEIGHTS_BYTES = 2 * 1024 * 1024


def test_the_shipped_policy_is_small_made_for_this_face_and_learnt_from_camera_labels():
    run = default_policy_dir()
    assert sorted(p.name for p in run.iterdir() if p.is_file()) == sorted([CONFIG_FILE, WEIGHTS_FILE])
    assert (run / WEIGHTS_FILE).stat().st_size <= MAX_WEIGHTS_BYTES
    config = RunConfig.read(run)
    assert config.spec_fingerprint == default_spec().fingerprint
    assert config.readout == "pixels"  # the recipe in scripts/train_default_policy.sh
    assert config.training["aggregation"]["twin_queries"] > 0  # the twin read through pixels where the policy goes
    policy = load_policy(None)  # what every command loads when --policy is not given
    assert policy.name == "default" and policy.kind == config.model


# what a run's record keeps of its settings that is not part of the recipe: where and how it ran
HOW_IT_RAN = ("seed", "device", "progress")


def recipe(settings) -> dict:
    """The settings that make the policy, as a run's config.json records them (tuples become lists)."""
    from dataclasses import asdict, is_dataclass

    record = json.loads(json.dumps(asdict(settings) if is_dataclass(settings) else settings))
    return {k: v for k, v in record.items() if k not in HOW_IT_RAN}


def test_the_shipped_policy_is_what_collect_and_train_make_with_their_defaults():
    from facetwin.agents.policies.kinds import DEFAULT_HPARAMS
    from facetwin.agents.training.config import AggregationSettings, ExpressionSettings, FitSettings, TrainConfig
    from facetwin.sim.collector import CollectConfig

    config = RunConfig.read(default_policy_dir())
    training = config.training
    assert config.readout == CollectConfig().readout
    assert config.model == TrainConfig().model and config.hparams == DEFAULT_HPARAMS[config.model]
    assert recipe(training["settings"]) == recipe(FitSettings())
    assert training["objective"] == "expression"  # `--objective auto` for a neural kind
    assert recipe(training["expression"]["settings"]) == recipe(ExpressionSettings())
    assert training["expression"]["forward_model"]["method"] == TrainConfig().forward_model
    assert recipe(training["aggregation"]["settings"]) == recipe(AggregationSettings())


def test_another_robot_face_is_told_to_bring_its_own_policy():
    from facetwin.spec import face_names, load_face

    others = [f for f in face_names() if f != RunConfig.read(default_policy_dir()).recorded_face]
    if not others:
        pytest.skip("only one robot face is packaged")
    with pytest.raises(PolicyLoadError, match=f"not {others[0]!r}; pass --policy RUN_DIR"):
        load_policy(None, load_face(others[0]))


def test_refining_the_shipped_policy_says_it_has_no_forward_model():
    with pytest.raises(PolicyLoadError, match="no forward model"):
        load_policy(None, refine_steps=5)


@pytest.mark.skipif(not SMILING_VIDEO.is_file(), reason="needs ../shared/faces/videos/single_face.mp4")
def test_mimic_without_a_policy_smiles_when_the_person_smiles(tmp_path):
    stats_path = tmp_path / "stats.json"
    assert main(["mimic", "--source", str(SMILING_VIDEO), "--stats", str(stats_path)]) == 0
    stats = json.loads(stats_path.read_text())
    assert stats["policy"] == "default"
    frames = [f for f in stats["per_frame"] if f["face"]]
    person = np.array([f["person_smile"] for f in frames])
    twin = np.array([f["twin_smile"] for f in frames])
    smiling, neutral = person > person.min() + 0.5 * np.ptp(person), person < person.min() + 0.1 * np.ptp(person)
    assert smiling.sum() >= 10 and neutral.sum() >= 10  # the video goes from neutral to a broad smile
    assert twin[smiling].mean() > twin[neutral].mean() + 0.3
    assert stats["smile_correlation"] > 0.8
