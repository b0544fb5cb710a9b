"""`facetwin bench`: results, report and plots from one entry point, and regressions flagged."""

import json

from facetwin.app.cli import main
from facetwin.app.commands.bench import direction, machine_info, plot, regressions


def test_a_group_run_leaves_json_and_markdown_with_the_machine_named(tmp_path):
    assert main(["bench", "real", "--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["groups"]["real"]["round_trip_p50_ms"] > 0
    assert results["machine"]["cpu_count"] >= 1
    assert "| real | round_trip_p50_ms |" in (tmp_path / "results.md").read_text()


def test_unknown_groups_are_refused(tmp_path, capsys):
    assert main(["bench", "gpu", "--out", str(tmp_path)]) == 2
    assert "choose from sim" in capsys.readouterr().err


def test_metric_names_say_which_way_is_better():
    assert direction("settled_samples_per_s") == 1
    assert direction("round_trip_p95_ms") == -1
    assert direction("targets.renders_per_s_512") == 0
    assert direction("servos") == 0


def test_a_slower_run_is_flagged_against_its_baseline(tmp_path):
    base = {"groups": {"sim": {"renders_per_s_512": 40.0, "latency_ms": 10.0}}}
    now = {"groups": {"sim": {"renders_per_s_512": 20.0, "latency_ms": 10.5}}}
    flagged = regressions(now, base)
    assert len(flagged) == 1 and flagged[0].startswith("sim.renders_per_s_512: 40 -> 20")
    assert main(["bench", "real", "--quick", "--out", str(tmp_path / "a")]) == 0
    baseline = tmp_path / "a" / "results.json"
    data = json.loads(baseline.read_text())
    data["groups"]["real"]["round_trip_p50_ms"] /= 100  # pretend the baseline was 100x faster
    baseline.write_text(json.dumps(data))
    assert main(["bench", "real", "--quick", "--out", str(tmp_path / "b"), "--baseline", str(baseline)]) == 3


def test_plots_are_written_for_throughputs_ratios_and_policies(tmp_path):
    results = {
        "machine": machine_info(),
        "groups": {
            "collect": {"samples_per_s_2_workers": 1400.0, "ratio_2_over_1_workers": 1.9},
            "eval": {"policies": {"neutral": {"blendshape_mae": 0.12, "per_region": {"brows": 0.3, "mouth": 0.1}}}},
        },
    }
    written = {p.name for p in plot(results, tmp_path)}
    assert written == {"throughput.png", "ratios.png", "regions.png"}
