"""The bounded soak (facetwin.real.soak), CI-sized: every fault kind injected, surfaced as its typed error,
torque released, no goal outside the calibration; and a soak whose safety layer is broken is caught."""

from __future__ import annotations

import pytest

from facetwin.real import control_table as ct
from facetwin.real import robot as robot_module
from facetwin.real.bus import ServoBus
from facetwin.real.emulator import ServoEmulator
from facetwin.real.safety import SafetyStop
from facetwin.real.soak import FAULT_KINDS, SoakConfig, run_soak

CI = SoakConfig(round_trips=200, seed=0, fault_rate=0.04, drop_probability=0.005, corrupt_probability=0.005, timeout_ms=10)


@pytest.fixture(scope="module")
def report():
    return run_soak(CI)


def test_every_fault_kind_was_injected_and_surfaced_as_its_typed_error(report):
    assert all(report["faults_injected"][k] >= 1 for k in FAULT_KINDS), report["faults_injected"]
    assert report["faults_surfaced"] == report["faults_injected"]


def test_no_invariant_was_violated(report):
    assert report["violations"] == 0, report["examples"]
    assert set(report["invariants"]) >= {"goals_outside_limits", "torque_on_after_stop", "torque_on_after_close",
                                         "faults_not_surfaced", "wrong_error", "untyped_errors"}


def test_random_bus_noise_was_absorbed_by_retries(report):
    t = report["transient"]
    assert t["replies_dropped"] > 0 and t["replies_corrupted"] > 0 and t["retries"] > 0
    assert t["stops"] == 0  # at 0.5 % noise, 1 + 3 attempts never all fail here
    assert report["nan_commands_refused"] >= 1


def test_report_has_latency_percentiles_in_order(report):
    rt = report["round_trip"]
    assert 0 < rt["p50_ms"] <= rt["p95_ms"] <= rt["p99_ms"] <= rt["max_ms"]
    assert report["completed"] > 0.8 * report["round_trips"]


def test_a_safety_layer_that_keeps_torque_on_is_caught(monkeypatch):
    """The soak's checks have teeth: with a fault stop that forgets to release torque, it reports it."""

    def stop_without_release(bus, ids, reason, faults=None, missing=()):
        return SafetyStop(reason, faults, missing)

    monkeypatch.setattr(robot_module, "emergency_stop", stop_without_release)
    broken = run_soak(SoakConfig(round_trips=40, seed=1, fault_rate=0.1, drop_probability=0.0, corrupt_probability=0.0,
                                 timeout_ms=50, retries=0))
    assert broken["invariants"]["torque_on_after_stop"] > 0 and broken["violations"] > 0


def test_the_emulator_counts_a_goal_beyond_its_limits():
    """What `goals_outside_limits` rests on: a host that skips the clamp is seen by the servo."""
    with ServoEmulator() as emu, ServoBus(emu.port, timeout_ms=10) as bus:  # no goal_limits: the bus clamps to 0..4095 only
        neutral = emu.positions()[21]
        bus.write(21, ct.GOAL_POSITION, 4000)
        assert emu.goals_outside_limits == 1 and emu.servos.last_goal_outside[:2] == (21, 4000)
        bus.write(21, ct.GOAL_POSITION, neutral)
        assert emu.goals_outside_limits == 1


def test_bench_real_soak_adds_the_soak_section(tmp_path):
    from facetwin.app.cli import main

    assert main(["bench", "real", "--quick", "--soak", "60", "--out", str(tmp_path)]) == 0
    import json

    real = json.loads((tmp_path / "results.json").read_text())["groups"]["real"]
    assert real["soak"]["round_trips"] == 60 and real["soak"]["violations"] == 0
    assert {"p50_ms", "p95_ms", "p99_ms"} <= set(real["soak"]["round_trip"])
    assert "soak.round_trip.p99_ms" in (tmp_path / "results.md").read_text()
