"""The expert strategy: deterministic, smooth, symmetric, coupled-safe primitive combinations."""

import re

import numpy as np
import pytest

from facetwin.motion.constraints import mirror_pairs
from facetwin.motion.expert import REJECTION_RULES, ExpertConfig, ExpertStrategy, rejected_by
from facetwin.motion.primitives import PRIMITIVES, Activation, lid_follow
from facetwin.spec import default_spec

SPEC = default_spec()
FPS = 30
I = SPEC.index
LID_PRIMITIVES = {"blink", "wink_left", "wink_right", "squint", "eye_wide"}


@pytest.fixture(scope="module")
def expert():
    return ExpertStrategy(SPEC, seed=7)


@pytest.fixture(scope="module")
def frames(expert):
    return np.concatenate([expert.episode(i, 300, FPS) for i in range(12)])


@pytest.fixture(scope="module")
def keyframes(expert):
    return [kf for i in range(20) for kf in expert.plan(i, 60.0)]


def test_episodes_are_deterministic_per_seed_and_episode(expert):
    again = ExpertStrategy(SPEC, seed=7)
    assert np.array_equal(expert.episode(3, 120, FPS), again.episode(3, 120, FPS))
    assert not np.array_equal(expert.episode(3, 120, FPS), expert.episode(4, 120, FPS))
    assert not np.array_equal(expert.episode(3, 120, FPS), ExpertStrategy(SPEC, seed=8).episode(3, 120, FPS))
    # a resumed or longer collection replays the same motion
    assert np.array_equal(expert.episode(5, 300, FPS)[:100], expert.episode(5, 100, FPS))


def test_episodes_start_neutral_and_stay_in_range_and_coupling(expert, frames, keyframes):
    assert not expert.episode(0, 10, FPS)[0].any()
    assert frames.shape == (12 * 300, SPEC.n)
    assert np.abs(frames).max() <= 1.0
    assert not any(SPEC.coupling_violations(f) for f in frames)
    # the limit is reached (corners scaled down), not avoided by never smiling with an open jaw
    k = np.array([kf.command for kf in keyframes])
    assert not any(SPEC.coupling_violations(c) for c in k)
    corner = np.abs(k[:, [I("corner_raise_left"), I("corner_raise_right")]]).max(1)
    assert (corner + np.maximum(k[:, I("jaw_open")], 0)).max() == pytest.approx(1.5)


def test_eyes_move_together_and_converge_within_bounds(frames):
    cfg = ExpertConfig()
    vergence = frames[:, I("eye_right_yaw")] - frames[:, I("eye_left_yaw")]
    assert vergence.min() >= -1e-12 and vergence.max() <= cfg.max_vergence + 1e-12
    assert np.allclose(frames[:, I("eye_right_pitch")], frames[:, I("eye_left_pitch")])
    assert np.abs(frames[:, I("eye_left_yaw")]).max() > 0.5  # gaze does move


def test_lids_follow_gaze_pitch(keyframes):
    plain = [kf for kf in keyframes if not {a.primitive for a in kf.activations} & LID_PRIMITIVES]
    pitch = np.array([kf.command[I("eye_left_pitch")] for kf in plain])
    lid = np.array([kf.command[I("eyelid_left")] for kf in plain])
    assert np.abs(pitch).max() > 0.5
    # what remains after the gaze-following part is only the lid's own noise
    assert np.abs(lid - lid_follow(pitch)).max() < 5 * ExpertConfig().noise_std
    assert np.corrcoef(pitch, lid)[0, 1] < -0.9


def test_symmetric_within_bounds_except_explicit_asymmetric_primitives(expert, keyframes):
    cfg = expert.config
    gaze = {I("eye_right_yaw"), I("eye_left_yaw"), I("eye_right_pitch"), I("eye_left_pitch")}
    pairs = [p for p in mirror_pairs(SPEC) if not set(p) & gaze]
    for kf in keyframes:
        winked = {a.primitive for a in kf.activations} & {"wink_left", "wink_right"}
        for r, l in pairs:
            if winked and SPEC.names[r] == "eyelid_right":
                continue
            assert abs(kf.command[r] - kf.command[l]) <= cfg.max_asymmetry + 1e-12
    lids = [kf.command[I("eyelid_right")] - kf.command[I("eyelid_left")] for kf in keyframes]
    assert np.abs(lids).max() > 0.5  # winks do happen
    symmetric = ExpertStrategy(SPEC, seed=1, config=ExpertConfig(asymmetric_prob=0.0))
    f = np.concatenate([symmetric.episode(i, 300, FPS) for i in range(6)])
    assert max(np.abs(f[:, r] - f[:, l]).max() for r, l in pairs) <= cfg.max_asymmetry + 1e-12


def test_asymmetric_primitives_are_rare(keyframes):
    asym = [kf for kf in keyframes if any(PRIMITIVES[a.primitive].asymmetric for a in kf.activations)]
    assert 0.04 < len(asym) / len(keyframes) < 0.16  # asymmetric_prob = 0.1 of the non-neutral keyframes
    assert all(sum(PRIMITIVES[a.primitive].asymmetric for a in kf.activations) <= 1 for kf in keyframes)


def test_keyframes_combine_one_to_three_primitives_and_never_break_a_rejection_rule(keyframes):
    assert len(keyframes) > 1000
    counts = {len(kf.activations) for kf in keyframes}
    assert counts == {0, 1, 2, 3}
    assert not any(rejected_by(kf.activations) for kf in keyframes)
    drawn = {a.primitive for kf in keyframes for a in kf.activations}
    assert drawn == set(PRIMITIVES)
    # the pucker+smile rule is about intensity: mild combinations still occur
    mild = [kf for kf in keyframes if {"pucker", "smile"} <= {a.primitive for a in kf.activations}]
    assert mild and all(min(a.intensity for a in kf.activations if a.primitive in ("pucker", "smile")) < 0.6
                        for kf in mild)


def test_a_share_of_activations_plays_at_the_end_of_their_travel(keyframes):
    levels = np.array([a.intensity for kf in keyframes for a in kf.activations])
    low, high = ExpertConfig().intensity
    assert ((levels >= low) & (levels <= high)).all()
    assert abs((levels == high).mean() - ExpertConfig().full_prob) < 0.05
    uniform = ExpertStrategy(SPEC, seed=7, config=ExpertConfig(full_prob=0.0))
    assert not any(a.intensity == high for i in range(20) for kf in uniform.plan(i, 60.0) for a in kf.activations)


def test_rejection_rules_fire_as_documented():
    assert rejected_by((Activation("smile", 0.3), Activation("frown", 0.3)))
    assert rejected_by((Activation("blink", 0.3), Activation("eye_wide", 0.9)))
    assert rejected_by((Activation("brow_raise", 0.3), Activation("brow_furrow", 0.3)))
    assert rejected_by((Activation("pucker", 0.7), Activation("smile", 0.8)))
    assert not rejected_by((Activation("pucker", 0.4), Activation("smile", 0.8)))
    assert not rejected_by((Activation("smile", 1.0), Activation("jaw_open", 1.0)))


def test_docstring_table_lists_every_rule():
    rows = re.findall(r"^\s+(\w+)\s+(\w+)\s+(any|>= [\d.]+)\s+(.+?)\s*$", ExpertStrategy.__doc__, re.M)
    table = {(a, b, 0.0 if lvl == "any" else float(lvl[3:]), why) for a, b, lvl, why in rows}
    assert table == {(r.a, r.b, r.min_intensity, r.why) for r in REJECTION_RULES}


def test_moves_respect_the_servo_speed_limit(expert, frames):
    lo = np.array([s.range_deg[0] for s in SPEC.servos])
    hi = np.array([s.range_deg[1] for s in SPEC.servos])
    deg = np.where(frames >= 0, frames * hi, -frames * lo)
    steps = np.abs(np.diff(deg.reshape(12, 300, SPEC.n), axis=1))
    assert steps.max() <= expert.config.max_speed_deg_s / FPS + 1e-9


def test_config_and_index_errors_are_named():
    with pytest.raises(ValueError, match="min_primitives"):
        ExpertConfig(min_primitives=0)
    with pytest.raises(ValueError, match="probability"):
        ExpertConfig(asymmetric_prob=1.5)
    with pytest.raises(ValueError, match="full_prob must be a probability"):
        ExpertConfig(full_prob=-0.1)
    with pytest.raises(ValueError, match="episode_index"):
        ExpertStrategy(SPEC, 0).episode(-1, 10, FPS)


def test_a_seeded_generator_also_gives_reproducible_episodes():
    a = ExpertStrategy(SPEC, np.random.default_rng(3)).episode(0, 50, FPS)
    b = ExpertStrategy(SPEC, np.random.default_rng(3)).episode(0, 50, FPS)
    assert np.array_equal(a, b)
