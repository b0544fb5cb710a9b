"""Calibration: commands map to ticks exactly as the spec maps them to degrees for the twin, always clamped."""

import numpy as np
import pytest
import yaml

from facetwin.real.bus import ServoBus
from facetwin.real.calibrate import CalibrationAborted, calibrate_interactively, summarise
from facetwin.real.calibration import Calibration, CalibrationError, ServoCalibration
from facetwin.real.emulator import ServoEmulator
from facetwin.spec import default_spec

SPEC = default_spec()
TICKS_PER_DEG = SPEC.ticks_per_rev / 360.0


def commands(n=200, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, SPEC.n))


def test_from_spec_ticks_follow_the_spec_formula_exactly():
    cal = Calibration.from_spec(SPEC)
    direction = np.array([s.direction for s in SPEC.servos])
    neutral_deg = np.array([s.neutral_deg for s in SPEC.servos])
    for c in list(commands()) + [np.ones(SPEC.n), -np.ones(SPEC.n), np.zeros(SPEC.n)]:
        expected = 2048 + direction * (neutral_deg - 90 + SPEC.offsets_deg(c)) * TICKS_PER_DEG
        np.testing.assert_array_equal(cal.to_ticks(c), np.rint(expected))


def test_positive_commands_turn_each_servo_its_mounting_direction():
    cal = Calibration.from_spec(SPEC)
    i = SPEC.index("corner_raise_left")  # direction -1 in the spec
    c = np.zeros(SPEC.n)
    c[i] = 1.0
    assert cal.to_ticks(c)[i] == 2048 - round(SPEC.servos[i].range_deg[1] * TICKS_PER_DEG)


def test_command_to_ticks_to_command_round_trips_within_half_a_tick():
    cal = Calibration.from_spec(SPEC)
    lo = np.array([s.range_deg[0] for s in SPEC.servos])
    hi = np.array([s.range_deg[1] for s in SPEC.servos])
    for c in commands():
        back = cal.to_commands(cal.to_ticks(c))
        half_tick = 0.5 / TICKS_PER_DEG / np.where(c >= 0, hi, -lo)  # half a tick in command units
        assert np.all(np.abs(back - c) <= half_tick + 1e-12)


def test_commands_beyond_the_range_are_clamped_to_the_calibrated_limits():
    cal = Calibration.from_spec(SPEC)
    np.testing.assert_array_equal(cal.to_ticks(np.full(SPEC.n, 7.0)), cal.to_ticks(np.ones(SPEC.n)))
    np.testing.assert_array_equal(cal.to_ticks(np.full(SPEC.n, -7.0)), cal.to_ticks(-np.ones(SPEC.n)))
    with pytest.raises(ValueError, match="NaN"):
        cal.to_ticks(np.full(SPEC.n, np.nan))


def test_tighter_measured_limits_clamp_commands_and_readings():
    base = Calibration.from_spec(SPEC)
    i = SPEC.index("jaw_open")
    s = base.servos[i]
    cal = base.with_servo(ServoCalibration(s.name, s.bus_id, s.neutral_ticks, s.min_ticks, s.neutral_ticks + 100, s.direction))
    c = np.zeros(SPEC.n)
    c[i] = 1.0
    assert cal.to_ticks(c)[i] == s.neutral_ticks + 100
    ticks = cal.neutral_ticks.copy()
    ticks[i] = 4000  # a reading beyond the limit
    reached = cal.to_commands(ticks)[i]
    assert reached == pytest.approx(100 / (SPEC.servo('jaw_open').range_deg[1] * TICKS_PER_DEG))
    assert cal.reach()[i, 1] == pytest.approx(reached)
    assert any(line.startswith("jaw_open") for line in summarise(cal))
    assert summarise(base) == []


def test_save_and_load_round_trip(tmp_path):
    cal = Calibration.from_spec(SPEC)
    path = cal.save(tmp_path / "robot.yaml")
    assert Calibration.load(path, SPEC) == cal
    raw = yaml.safe_load(path.read_text())
    assert list(raw["servos"]) == list(SPEC.names)


def test_load_errors_name_the_problem_and_the_fix(tmp_path):
    with pytest.raises(CalibrationError, match="facetwin real calibrate"):
        Calibration.load(tmp_path / "missing.yaml", SPEC)
    raw = Calibration.from_spec(SPEC).to_dict()
    del raw["servos"]["jaw_open"]
    (tmp_path / "short.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(CalibrationError, match="missing: \\['jaw_open'\\]"):
        Calibration.load(tmp_path / "short.yaml", SPEC)
    raw = Calibration.from_spec(SPEC).to_dict()
    raw["servos"]["neck_yaw"]["min_ticks"] = 3000
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(CalibrationError, match="neck_yaw"):
        Calibration.load(tmp_path / "bad.yaml", SPEC)


def test_interactive_calibration_records_jogged_neutral_and_limits():
    base = Calibration.from_spec(SPEC)
    s = base.servos[SPEC.index("brow_inner_right")]  # direction +1: + jogs to higher ticks
    answers = iter(["+", "+", "n", "j 200", "b", "j -300", "a", "q"])
    with ServoEmulator() as emu, ServoBus(emu.port, timeout_ms=10) as bus:
        cal = calibrate_interactively(bus, base, names=[s.name], read_line=lambda _: next(answers), write=lambda _: None)
        assert not emu.torque_enabled(s.bus_id)  # left limp after calibration
    new = cal.servos[SPEC.index(s.name)]
    assert (new.neutral_ticks, new.max_ticks, new.min_ticks) == (s.neutral_ticks + 20, s.neutral_ticks + 220, s.neutral_ticks - 80)
    assert cal.source == "interactive"
    assert [x for x in cal.servos if x.name != s.name] == [x for x in base.servos if x.name != s.name]


def test_interactive_calibration_abort_saves_nothing():
    answers = iter(["+", "x"])
    with ServoEmulator() as emu, ServoBus(emu.port, timeout_ms=10) as bus:
        with pytest.raises(CalibrationAborted):
            calibrate_interactively(bus, Calibration.from_spec(SPEC), names=["neck_yaw"],
                                    read_line=lambda _: next(answers), write=lambda _: None)
