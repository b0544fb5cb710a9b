"""`facetwin mimic` end to end: a video drives the twin (or the emulated servo bus) frame by frame."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from facetwin.app.cli import main
from facetwin.expression import EXPRESSION_DIM
from facetwin.app.live import FaceLossConfig, MimicConfig, run_mimic
from facetwin.app.live.frames import LatestFrames
from facetwin.app.live.targets import TwinTarget
from facetwin.perception import open_source

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FACE = SHARED / "faces" / "images" / "cremad_1001_happy.jpg"
SMILING_VIDEO = SHARED / "faces" / "videos" / "single_face.mp4"  # 72 frames, neutral -> smile
FACE_FRAMES, BLANK_FRAMES, FPS = 8, 30, 30.0
STATS_KEYS = {"latency_ms_p50", "latency_ms_p95", "fps", "frames", "frames_without_face", "dropped_frames", "stages",
              "per_frame", "smile_correlation", "commands_sent"}


def constant_policy(value: float = 0.4):
    """The same command for every face seen: the pipeline takes any callable expression -> commands."""
    return lambda _expression: np.full(25, value)


def save_linear_run(twin, run_dir: Path, samples: int = 200, seed: int = 0) -> Path:
    """A `linear` (ridge) run directory, as `facetwin train --model linear` writes one, fitted on the twin's own
    expressions under commands from the expert motion strategy."""
    from facetwin.agents.policies.kan_attention import servo_regions
    from facetwin.agents.policies.kinds import build_model
    from facetwin.agents.training.checkpoint import config_for, save_run
    from facetwin.motion import make_strategy

    strategy = make_strategy("expert", twin.spec, seed=seed)
    per_episode = 40
    # 2 fps along the expert's trajectories: keyframes and the way between them, few repeats.
    commands = np.concatenate([strategy.episode(i, per_episode, 2.0)
                               for i in range(-(-samples // per_episode))])[:samples].astype(np.float32)
    expressions = np.stack([twin.apply(c).expression.vector for c in commands]).astype(np.float32)
    twin.reset()
    model = build_model("linear", twin.spec.n, servo_regions(twin.spec))
    model.fit(expressions, commands, expressions[:0], commands[:0], None)
    return save_run(run_dir, model, config_for(model, twin.spec))


@pytest.fixture(scope="module")
def face_then_blank(tmp_path_factory) -> Path:
    """A face for FACE_FRAMES frames, then an empty grey wall for BLANK_FRAMES (1 s at 30 fps)."""
    path = tmp_path_factory.mktemp("mimic") / "face_then_blank.mp4"
    face = cv2.imread(str(FACE))
    h, w = face.shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h))
    for k in range(FACE_FRAMES + BLANK_FRAMES):
        out.write(face if k < FACE_FRAMES else np.full_like(face, 128))
    out.release()
    return path


@pytest.fixture
def twin_target(twin):
    twin.reset()
    return TwinTarget(twin)


def test_without_a_face_the_twin_holds_then_eases_to_neutral(face_then_blank, twin_target):
    config = MimicConfig(str(face_then_blank), face_loss=FaceLossConfig(hold_s=0.2, ease_s=0.4))
    stats = run_mimic(config, policy=constant_policy(0.4), target=twin_target).stats
    frames = stats.per_frame
    assert [r.face for r in frames] == [True] * FACE_FRAMES + [False] * BLANK_FRAMES
    assert stats.frames_without_face == BLANK_FRAMES
    level = np.array([np.max(r.command) for r in frames])
    t = np.array([r.timestamp for r in frames]) - frames[FACE_FRAMES - 1].timestamp  # since the face was last seen
    assert np.allclose(level[:FACE_FRAMES], 0.4)
    assert np.allclose(level[FACE_FRAMES:][t[FACE_FRAMES:] <= 0.2], 0.4)  # held
    easing = level[(t > 0.2) & (t < 0.6)]
    assert len(easing) >= 8 and np.all(np.diff(easing) < 0) and 0 < easing.min() < 0.4
    assert np.all(level[t >= 0.6] == 0.0)  # back to neutral, and the twin was told so
    assert np.array_equal(twin_target.twin.command, np.zeros(25))


def test_cli_runs_to_the_end_of_the_video_and_writes_stats(face_then_blank, tmp_path, capsys):
    stats_path = tmp_path / "stats.json"
    code = main(["mimic", "--source", str(face_then_blank), "--policy", "neutral", "--stats", str(stats_path)])
    assert code == 0
    stats = json.loads(stats_path.read_text())
    assert STATS_KEYS <= set(stats)
    assert stats["frames"] == stats["frames_read"] == stats["commands_sent"] == FACE_FRAMES + BLANK_FRAMES
    assert stats["dropped_frames"] == 0 and stats["frames_without_face"] == BLANK_FRAMES
    assert set(stats["stages"]) == {"perception", "policy", "command", "render", "readout"}
    assert stats["stages"]["render"] is None and stats["stages"]["perception"]["p95_ms"] > 0
    assert 0 < stats["latency_ms_p50"] <= stats["latency_ms_p95"]
    assert all(r["twin_smile"] is not None for r in stats["per_frame"])
    assert f"{FACE_FRAMES + BLANK_FRAMES} frames" in capsys.readouterr().out


@pytest.mark.parametrize("make", [lambda p: p.write_bytes(b"not a video at all" * 50), lambda p: None],
                         ids=["corrupt", "missing"])
def test_an_unreadable_source_is_a_one_line_error_before_anything_starts(tmp_path, capsys, make):
    bad = tmp_path / "clip.mp4"
    make(bad)
    start = time.perf_counter()
    code = main(["mimic", "--source", str(bad), "--policy", "neutral", "--stats", str(tmp_path / "s.json")])
    err = capsys.readouterr().err
    assert code == 2 and "facetwin mimic: error:" in err and str(bad) in err
    assert not (tmp_path / "s.json").exists()
    assert time.perf_counter() - start < 2.0  # no twin or landmarker was built first


def test_an_unknown_policy_is_refused_with_the_accepted_forms(face_then_blank, capsys):
    code = main(["mimic", "--source", str(face_then_blank), "--policy", "no/such/run"])
    assert code == 2 and "neutral" in capsys.readouterr().err


def test_realtime_frames_drop_rather_than_queue(face_then_blank):
    """A loop slower than the video's 30 fps sees fewer, fresh frames; the rest are counted as dropped."""
    with open_source(face_then_blank) as source:
        frames = LatestFrames(source)
        taken, ages = [], []
        for timed in frames:
            ages.append(time.perf_counter() - timed.arrived)
            taken.append(timed.frame.index)
            time.sleep(0.1)  # three frame periods of work
        frames.close()
    assert frames.read == FACE_FRAMES + BLANK_FRAMES
    assert frames.dropped == frames.read - len(taken) and len(taken) < frames.read / 2
    assert taken == sorted(taken) and taken[-1] == frames.read - 1  # newest first, the last one not lost
    # at most one frame period old (a queue would make the last frames ~2 s old), with slack for a busy CPU
    assert max(ages) < 1.0 / FPS + 0.06


def test_the_twin_smiles_when_the_person_smiles(twin, tmp_path):
    """A ridge policy of the twin, named on the command line as its run directory, makes the twin smile."""
    run = save_linear_run(twin, tmp_path / "linear", samples=200)
    stats = run_mimic(MimicConfig(str(SMILING_VIDEO), policy=str(run)), target=TwinTarget(twin)).stats
    assert stats.policy == str(run)
    person = np.array([r.person_smile for r in stats.per_frame])
    mimic = np.array([r.twin_smile for r in stats.per_frame])
    smiling = slice(30, 68)  # the clip: neutral, a smile from frame ~20, relaxing in the last frames
    assert person[:10].max() < 0.1 and person[smiling].min() > 0.5
    assert mimic[smiling].mean() > mimic[:10].mean() + 0.3
    assert stats.smile_correlation > 0.8


def test_virtual_bus_receives_one_safe_command_per_frame(face_then_blank):
    """Each processed frame reaches the emulated servos as one goal write, inside the calibrated limits."""
    from facetwin.real import control_table as ct
    from facetwin.real.protocol import Packet
    from facetwin.real.safety import SafetyConfig
    from facetwin.app.live.targets import open_target

    target = open_target("virtual")
    emulator, calibration = target.emulator, target.robot.calibration
    goals: list[dict[int, int]] = []
    handle = emulator._handle

    def observe(p: Packet) -> None:  # listens on the emulated wire; every packet is still handled
        # The robot's watchdog may glide home while the loop starts up: those goals are not the loop's.
        if p.code == ct.Instruction.SYNC_WRITE and p.params[0] == ct.GOAL_BLOCK_ADDRESS and target.robot.state == "active":
            size, body = p.params[1], p.params[2:]
            offset = ct.GOAL_POSITION.address - ct.GOAL_BLOCK_ADDRESS
            goals.append({body[k]: ct.decode_value(ct.GOAL_POSITION, body[k + 1 + offset: k + 3 + offset])
                          for k in range(0, len(body), size + 1)})
        handle(p)

    emulator._handle = observe
    try:
        config = MimicConfig(str(face_then_blank), target="virtual", max_frames=20)
        stats = run_mimic(config, policy=constant_policy(0.9), target=target).stats
        time.sleep(0.05)  # the emulator thread handles the last packet
        sent = list(goals)
    finally:
        target.close()
    assert stats.frames == 20 and stats.commands_sent == 20 and len(sent) == 20
    ids = list(calibration.ids)
    ticks = np.array([[g[i] for i in ids] for g in sent])
    assert np.all(ticks >= calibration.min_ticks) and np.all(ticks <= calibration.max_ticks)
    commands = np.array([calibration.to_commands(row) for row in ticks])
    steps = np.abs(np.diff(np.vstack([np.zeros(25), commands]), axis=0))
    assert steps.max() <= SafetyConfig().max_step + 0.01  # the slew limit held, even for a 0.9 jump
    assert commands[-1].max() > 0.5  # and the face did get there


def test_a_training_run_directory_is_loaded_through_facetwin_agents(tmp_path):
    from facetwin.agents.policies.kan_attention import servo_regions
    from facetwin.agents.policies.kinds import build_model
    from facetwin.agents.policies.loader import load_policy
    from facetwin.agents.training.checkpoint import config_for, save_run
    from facetwin.spec import default_spec

    spec = default_spec()
    model = build_model("kan-attn", spec.n, servo_regions(spec))
    run = save_run(tmp_path / "run", model, config_for(model, spec))
    policy = load_policy(str(run), spec)
    command = policy(np.full(EXPRESSION_DIM, 0.3, np.float32))
    assert policy.kind == "kan-attn" and command.shape == (25,) and np.all(np.abs(command) <= 1.0)


def test_a_ridge_npz_file_is_refused_with_where_its_model_went(face_then_blank, tmp_path, capsys):
    old = tmp_path / "ridge.npz"
    np.savez(old, weights=np.zeros((EXPRESSION_DIM + 1, 25)))
    code = main(["mimic", "--source", str(face_then_blank), "--policy", str(old)])
    err = capsys.readouterr().err
    assert code == 2 and str(old) in err and "facetwin train --model linear" in err
