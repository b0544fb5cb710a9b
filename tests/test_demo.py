"""`facetwin demo`, the README's main job: `facetwin collect && facetwin train` with their defaults, then the
twin's poses and the policy against people, read through pixels."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from facetwin.agents.training.checkpoint import RunConfig
from facetwin.agents.training.config import TrainConfig
from facetwin.app.cli import build_parser
from facetwin.app.commands.demo import steps


def test_the_demo_trains_with_the_commands_own_defaults():
    args = build_parser().parse_args(["demo", "--out", "runs/x"])
    plan = {argv[0]: argv for _, argv, _ in steps(args)}
    assert "--readout" not in plan["collect"]  # collect's default: camera labels
    options = [a for a in plan["train"] if a.startswith("--")]
    assert options == ["--data", "--model", "--out"] and args.model == TrainConfig().model
    assert "--pixels" in plan["eval"]


def test_the_demo_collects_as_much_as_the_shipped_policys_recipe():
    script = (Path(__file__).resolve().parents[1] / "scripts" / "train_default_policy.sh").read_text()
    episodes = re.search(r"^EPISODES=(\d+)$", script, re.M).group(1)
    frames = re.search(r"--frames-per-episode (\d+)", script).group(1)
    collect = {argv[0]: argv for _, argv, _ in steps(build_parser().parse_args(["demo"]))}["collect"]
    given = dict(zip(collect[1::2], collect[2::2]))
    assert (given["--episodes"], given["--frames-per-episode"]) == (episodes, frames)


def test_a_quick_demo_runs_end_to_end_on_camera_labels(tmp_path, faces_dir):
    # its own interpreter, as a user runs it: training starts torch's OpenMP threads, which a later fork in this
    # process (gymnasium's AsyncVectorEnv) would inherit half-locked
    out = tmp_path / "demo"
    argv = ["demo", "--quick", "--out", str(out), "--faces", str(faces_dir / "images")]
    done = subprocess.run([sys.executable, "-m", "facetwin.app.cli", *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    run = RunConfig.read(out / TrainConfig().model)
    assert run.readout == "pixels" and run.training["aggregation"]["twin_queries"] > 0
    report = json.loads((out / "eval.json").read_text())
    assert report["readout"] == "pixels" and report["n_faces"] >= 10
    assert report["blendshape_mae"] < report["neutral_blendshape_mae"]  # even a minutes-long run beats doing nothing
    assert (out / "poses.png").is_file() and (out / "eval_sheet.png").is_file()
