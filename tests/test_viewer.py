"""The rerun timeline: `facetwin mimic --view FILE.rrd` and `facetwin view DATASET --out FILE.rrd` write
recordings whose streams (person, twin, 52 + 52 coefficients, 25 commands) read back frame by frame."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from facetwin.app.cli import main
from facetwin.app.live import viewer
from facetwin.dataset import DatasetWriter, EpisodeFrames
from facetwin.expression import BLENDSHAPE_NAMES
from facetwin.spec import default_spec

pytest.importorskip("rerun", reason="the viewer extra: pip install -e '.[viewer]'")
from rerun.chunk import RrdReader  # noqa: E402

SMILING_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "faces" / "videos" / "single_face.mp4"
FRAMES = 6


def read_recording(path: Path) -> dict[str, dict[str, list]]:
    """entity path -> column -> values, static and per-frame columns together (one chunk per entity here)."""
    out: dict[str, dict[str, list]] = {}
    for chunk in RrdReader(path).stream().to_chunks():
        columns = chunk.to_record_batch().to_pydict()
        entity = out.setdefault(chunk.entity_path.lstrip("/"), {})
        for name, values in columns.items():
            entity.setdefault(name, []).extend(values)
    return out


def decode(blob) -> np.ndarray:
    """A logged picture (one JPEG per row) back to pixels."""
    return cv2.imdecode(np.asarray(blob[0], np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.skipif(not SMILING_VIDEO.is_file(), reason="needs ../shared/faces/videos/single_face.mp4")
def test_mimic_logs_person_twin_coefficients_and_commands_on_one_timeline(tmp_path):
    rrd, stats = tmp_path / "mimic.rrd", tmp_path / "stats.json"
    assert main(["mimic", "--source", str(SMILING_VIDEO), "--policy", "neutral", "--max-frames", str(FRAMES),
                 "--view", str(rrd), "--stats", str(stats)]) == 0
    rec = read_recording(rrd)
    for path, shape in ((viewer.PERSON_IMAGE, (360, 640, 3)), (viewer.TWIN_IMAGE, (360, 360, 3))):
        assert rec[path]["frame"] == list(range(FRAMES))
        pictures = [decode(blob) for blob in rec[path]["EncodedImage:blob"]]
        assert all(p.shape == shape and p.std() > 10 for p in pictures)  # a face, not a blank frame
    for path in (viewer.PERSON_BLENDSHAPES, viewer.TWIN_BLENDSHAPES):
        assert rec[path]["SeriesLines:names"] == [list(BLENDSHAPE_NAMES)]
        values = np.array(rec[path]["Scalars:scalars"])
        assert values.shape == (FRAMES, 52) and values.min() >= 0 and values.max() <= 1
    assert rec[viewer.COMMANDS]["SeriesLines:names"] == [list(default_spec().names)]
    logged = np.array(rec[viewer.COMMANDS]["Scalars:scalars"])
    sent = np.array([f["command"] for f in json.loads(stats.read_text())["per_frame"]])
    np.testing.assert_allclose(logged, sent, atol=1e-4)  # the commands the twin received, frame by frame
    person = np.array(rec[viewer.PERSON_BLENDSHAPES]["Scalars:scalars"])
    assert np.abs(person - np.array(rec[viewer.TWIN_BLENDSHAPES]["Scalars:scalars"])).max() > 0.01  # two faces


def test_view_logs_a_dataset_episode_with_the_twin_rendered_under_its_commands(tmp_path):
    data, rrd = tmp_path / "data", tmp_path / "data.rrd"
    rng = np.random.default_rng(0)
    episodes = []
    with DatasetWriter(data, fps=30, landmarks=False) as writer:
        for _ in range(2):
            commands = rng.uniform(-0.5, 0.5, (8, 25)).astype(np.float32)
            expression = rng.uniform(0, 1, (8, 55)).astype(np.float32)
            writer.add_episode(EpisodeFrames(action=commands, state=commands, expression=expression))
            episodes.append((commands, expression))
    assert main(["view", str(data), "--episode", "1", "--max-frames", "5", "--render", "64", "--out", str(rrd)]) == 0
    rec = read_recording(rrd)
    commands, expression = episodes[1]
    np.testing.assert_allclose(np.array(rec[viewer.COMMANDS]["Scalars:scalars"]), commands[:5], atol=1e-6)
    np.testing.assert_allclose(np.array(rec[viewer.TWIN_BLENDSHAPES]["Scalars:scalars"]), expression[:5, :52], atol=1e-6)
    assert rec[viewer.TWIN_IMAGE]["frame"] == list(range(5))
    assert viewer.PERSON_IMAGE not in rec  # a dataset has no person


def test_viewer_errors_name_the_fix(tmp_path, capsys):
    assert main(["view", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["view", str(tmp_path)]) == 2
    assert "neither a recording (.rrd) nor a dataset" in capsys.readouterr().err
    if SMILING_VIDEO.is_file():
        assert main(["mimic", "--source", str(SMILING_VIDEO), "--policy", "neutral", "--max-frames", "1",
                     "--view", str(tmp_path / "x.mp4")]) == 2
        assert "give a path ending in .rrd" in capsys.readouterr().err
