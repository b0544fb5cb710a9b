"""`facetwin real mimic`: a person's video drives the (emulated) servos through the safety layer."""

import json

from facetwin.app.cli import main


def test_real_mimic_sends_one_command_per_frame_to_the_bus(tmp_path, faces_dir):
    stats = tmp_path / "stats.json"
    argv = ["real", "mimic", "--port", "virtual", "--source", str(faces_dir / "videos" / "single_face.mp4"),
            "--policy", "neutral", "--max-frames", "6", "--stats", str(stats)]
    assert main(argv) == 0
    data = json.loads(stats.read_text())
    assert data["target"] == "virtual" and data["frames"] == 6 and data["commands_sent"] == 6
