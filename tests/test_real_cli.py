"""`facetwin real ...` end to end against an emulated bus on a pty."""

import subprocess
import sys

import numpy as np
import pytest

from facetwin.app.cli import main
from facetwin.dataset import DatasetWriter, EpisodeFrames
from facetwin.motion.poses import named_pose
from facetwin.real.calibration import Calibration
from facetwin.real.emulator import ServoEmulator
from facetwin.spec import default_spec

SPEC = default_spec()


@pytest.fixture
def calibration_file(tmp_path):
    path = tmp_path / "calibration.yaml"
    assert main(["real", "calibrate", "--from-spec", "--calibration", str(path)]) == 0
    return path


def test_calibrate_from_spec_writes_a_loadable_file(calibration_file):
    assert Calibration.load(calibration_file, SPEC) == Calibration.from_spec(SPEC)


def test_pose_smile_raises_both_mouth_corners_within_limits(calibration_file, capsys):
    cal = Calibration.load(calibration_file, SPEC)
    seen = []
    emu = ServoEmulator(calibration=cal, positions_period_s=0.01)
    emu.on_positions = lambda _commands: seen.append(emu.positions())
    with emu:
        rc = main(["real", "pose", "smile", "--port", emu.port, "--calibration", str(calibration_file), "--hold", "0.1"])
        assert rc == 0
        final = emu.positions()
        released = [emu.torque_enabled(i) for i in cal.ids]
    ticks = np.array([[p[i] for i in cal.ids] for p in seen])  # (samples, 25) in spec order
    assert np.all(ticks >= cal.min_ticks) and np.all(ticks <= cal.max_ticks)
    pose = named_pose("smile", SPEC)
    peak = np.array([cal.to_commands(t) for t in ticks])
    for name in ("corner_raise_left", "corner_raise_right"):
        i = SPEC.index(name)
        assert pose[i] > 0
        assert peak[:, i].max() == pytest.approx(pose[i], abs=0.02), name
    untouched = np.abs(pose) < 1e-9
    assert np.all(np.abs(peak[:, untouched]) < 0.01)  # servos the pose does not use stay put
    # then back to neutral, torque off
    assert np.all(np.abs(np.array([final[i] for i in cal.ids]) - cal.neutral_ticks) <= 2)
    assert not any(released)
    assert "corner_raise_left" in capsys.readouterr().out


def test_pose_dry_run_needs_no_port(calibration_file, capsys):
    assert main(["real", "pose", "smile", "--dry-run", "--calibration", str(calibration_file)]) == 0
    out = capsys.readouterr().out
    goal = Calibration.from_spec(SPEC).to_ticks(named_pose("smile", SPEC))[SPEC.index("corner_raise_right")]
    assert f"goal {goal} ticks" in out


def test_pose_without_a_calibration_says_how_to_make_one(tmp_path, capsys):
    rc = main(["real", "pose", "smile", "--port", "/dev/null", "--calibration", str(tmp_path / "none.yaml")])
    assert rc == 2
    assert "facetwin real calibrate" in capsys.readouterr().err


def test_scan_on_the_virtual_bus_lists_every_face_servo(capsys):
    assert main(["real", "scan", "--port", "virtual", "--ids", "1-26"]) == 0
    out = capsys.readouterr().out
    assert "25 servo(s) answered" in out
    assert all(name in out for name in SPEC.names)


@pytest.fixture
def two_episodes(tmp_path):
    """A dataset as `facetwin collect` writes it: episode 0 of 12 frames opening the jaw, episode 1 of 5."""
    n = 12
    actions = np.zeros((n, SPEC.n))
    actions[:, SPEC.index("jaw_open")] = np.linspace(0, 0.5, n)
    root = tmp_path / "dataset"
    with DatasetWriter(root, fps=50, landmarks=False) as writer:
        for episode in (actions, actions[:5]):
            writer.add_episode(EpisodeFrames(episode, episode, np.zeros((len(episode), 55))))
    return root


def test_play_replays_a_dataset_action_column(two_episodes, calibration_file, capsys):
    assert main(["real", "play", str(two_episodes), "--port", "virtual"]) == 0
    out = capsys.readouterr().out
    assert "played 17 frames at 50 fps" in out
    assert main(["real", "play", str(two_episodes), "--dry-run", "--episode", "1", "--calibration", str(calibration_file)]) == 0
    assert "played 5 frames" in capsys.readouterr().out


def test_play_of_a_missing_or_broken_dataset_is_a_one_line_error(two_episodes, tmp_path, capsys):
    missing = tmp_path / "no_such_dataset"
    assert main(["real", "play", str(missing), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err and "facetwin collect" in err
    info = two_episodes / "meta" / "info.json"
    info.write_text("{not json")
    assert main(["real", "play", str(two_episodes), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(info) in err and "facetwin dataset check" in err


def test_emulate_prints_a_pty_path_a_client_can_open():
    proc = subprocess.Popen([sys.executable, "-m", "facetwin.app", "real", "emulate"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/pts/")
        from facetwin.real.bus import ServoBus

        with ServoBus(port, timeout_ms=20) as bus:
            assert [info.servo_id for info in bus.scan(range(20, 27))] == [20, 21, 22, 23, 24, 25]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
