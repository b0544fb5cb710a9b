"""The writer produces a LeRobot v3.0 folder that plain pyarrow reads back, and refuses bad input."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from facetwin.dataset import DatasetError, DatasetWriter, EpisodeFrames, Feature, check, load_arrays, read_stats
from facetwin.dataset.video import count_frames, write_mp4
from facetwin.expression import EXPRESSION_NAMES, Expression
from facetwin.spec import default_spec


def episode(i: int, t: int = 12, *, renders: bool = False) -> EpisodeFrames:
    rng = np.random.default_rng(i)
    return EpisodeFrames(
        action=rng.uniform(-1, 1, (t, 25)),
        state=rng.uniform(-1, 1, (t, 25)),
        expression=rng.uniform(0, 1, (t, 55)),
        landmarks=rng.uniform(0, 256, (t, 478, 3)),
        renders=rng.integers(0, 255, (t, 32, 48, 3), dtype=np.uint8) if renders else None,
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "faces"
    with DatasetWriter(root, fps=25, chunk_frames=30, render_size=(32, 48)) as w:
        for i in range(5):
            w.add_episode(episode(i, t=10 + i, renders=True))
    return root


def test_layout_and_info_follow_lerobot_v3(dataset):
    info = json.loads((dataset / "meta/info.json").read_text())
    spec = default_spec()
    assert info["codebase_version"] == "v3.0"
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"], info["fps"]) == (5, 60, 1, 25)
    assert info["splits"] == {"train": "0:5"}
    f = info["features"]
    assert f["action"] == {"dtype": "float32", "shape": [25], "names": list(spec.names)}
    assert f["observation.state"]["names"] == list(spec.names)
    assert f["observation.expression"] == {"dtype": "float32", "shape": [55], "names": list(EXPRESSION_NAMES)}
    assert f["observation.landmarks"]["shape"] == [478, 3]
    assert f["observation.images.render"]["dtype"] == "video"
    assert {k: f[k]["dtype"] for k in ("timestamp", "frame_index", "episode_index", "index", "task_index")} == {
        "timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64", "task_index": "int64"
    }
    assert info["facetwin"]["spec_name"] == spec.name and info["facetwin"]["spec_fingerprint"] == spec.fingerprint
    # 60 frames at 30 per file: episodes 0-2 (33 frames) close file 0, episodes 3-4 fill file 1.
    assert sorted(p.relative_to(dataset).as_posix() for p in (dataset / "data").rglob("*.parquet")) == [
        "data/chunk-000/file-000.parquet", "data/chunk-000/file-001.parquet"
    ]
    for rel in ("meta/stats.json", "meta/tasks.parquet", "meta/episodes/chunk-000/file-001.parquet", "README.md"):
        assert (dataset / rel).is_file(), rel
    assert "LeRobot" in (dataset / "README.md").read_text()


def test_pyarrow_reads_frames_with_lerobot_column_types(dataset):
    table = pq.read_table(dataset / "data/chunk-000/file-000.parquet")
    assert table.num_rows == 10 + 11 + 12
    assert table.schema.field("action").type == pa.list_(pa.float32(), 25)
    assert table.schema.field("observation.expression").type == pa.list_(pa.float32(), 55)
    assert table.schema.field("observation.landmarks").type == pa.list_(pa.list_(pa.float32()))
    assert table.schema.field("index").type == pa.int64() and table.schema.field("timestamp").type == pa.float32()
    assert "observation.images.render" not in table.column_names  # videos live in mp4 files
    first = episode(0, t=10)
    np.testing.assert_array_equal(np.array(table.column("action").to_pylist()[:10], np.float32), first.action.astype(np.float32))
    np.testing.assert_array_equal(np.array(table.column("observation.landmarks")[3].as_py(), np.float32), first.landmarks[3].astype(np.float32))
    assert table.column("frame_index").to_pylist()[:11] == list(range(10)) + [0]


def test_episode_meta_points_at_rows_and_videos(dataset):
    files = sorted((dataset / "meta/episodes").rglob("*.parquet"))
    assert [p.name for p in files] == ["file-000.parquet", "file-001.parquet"]  # one per data file
    eps = pa.concat_tables([pq.read_table(p) for p in files]).to_pydict()
    assert eps["meta/episodes/file_index"] == eps["data/file_index"]
    assert eps["episode_index"] == [0, 1, 2, 3, 4]
    assert eps["length"] == [10, 11, 12, 13, 14]
    assert eps["dataset_from_index"] == [0, 10, 21, 33, 46]
    assert eps["dataset_to_index"] == [10, 21, 33, 46, 60]
    assert eps["data/file_index"] == [0, 0, 0, 1, 1]
    assert eps["tasks"][0] == [pq.read_table(dataset / "meta/tasks.parquet").column("task")[0].as_py()]
    assert eps["videos/observation.images.render/from_timestamp"] == pytest.approx([0, 0.4, 0.84, 0, 0.52])
    assert count_frames(dataset / "videos/observation.images.render/chunk-000/file-001.mp4") == 27
    assert len(eps["stats/action/mean"][0]) == 25


def test_load_arrays_and_stats_agree_with_the_input(dataset):
    a = load_arrays(dataset)
    eps = [episode(i, t=10 + i) for i in range(5)]
    np.testing.assert_array_equal(a.action, np.concatenate([e.action for e in eps]).astype(np.float32))
    np.testing.assert_array_equal(a.expression, np.concatenate([e.expression for e in eps]).astype(np.float32))
    assert a.landmarks.shape == (60, 478, 3) and a.landmarks.dtype == np.float32
    assert a.action.dtype == np.float32 and a.episode_index.dtype == np.int64
    np.testing.assert_allclose(a.timestamp[:3], [0, 0.04, 0.08], atol=1e-7)
    assert load_arrays(dataset, landmarks=False).landmarks is None
    stats = read_stats(dataset)
    np.testing.assert_allclose(stats["action"].mean, a.action.astype(np.float64).mean(0), atol=1e-9)
    np.testing.assert_allclose(stats["observation.expression"].std, a.expression.astype(np.float64).std(0), atol=1e-9)
    assert stats["observation.landmarks"].min.shape == (478, 3) and stats["index"].count == 60
    assert stats["observation.images.render"].mean.shape == (3, 1, 1)
    assert check(dataset).ok


def test_tasks_parquet_reads_as_lerobots_pandas_table(dataset):
    pd = pytest.importorskip("pandas")
    tasks = pd.read_parquet(dataset / "meta/tasks.parquet")
    assert tasks.index.name == "task" and list(tasks["task_index"]) == [0]


def test_add_frame_takes_expressions_and_extra_features(tmp_path):
    spec = default_spec()
    with DatasetWriter(tmp_path / "ds", spec, fps=10, extra_features={"observation.target": Feature("float32", (55,), EXPRESSION_NAMES)}) as w:
        for k in range(4):
            expr = Expression(blendshapes=np.full(52, 0.1 * k), head=np.array([1.0, 2.0, 3.0]), landmarks=np.full((478, 3), k, float))
            w.add_frame(np.zeros(25), np.zeros(25), expr, extra={"observation.target": np.full(55, 0.5)})
        assert w.end_episode(task="hold still") == 0
        assert w.next_episode_index == 1
    a = load_arrays(tmp_path / "ds")
    assert a.expression[2, 52:].tolist() == [1.0, 2.0, 3.0] and a.landmarks[3, 0, 0] == 3
    assert a.extra["observation.target"].shape == (4, 55)
    assert check(tmp_path / "ds").ok


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(action=np.full((5, 25), 1.5)), "out of range"),
        (dict(action=np.full((5, 24), 0.0)), "expected shape"),
        (dict(state=np.full((5, 25), np.nan)), "NaN"),
        (dict(landmarks=None), "landmarks"),
    ],
)
def test_bad_episodes_are_refused_with_the_reason(tmp_path, bad, message):
    ep = episode(0, t=5)
    for k, v in bad.items():
        setattr(ep, k, v)
    with DatasetWriter(tmp_path / "ds") as w:
        with pytest.raises(DatasetError, match=message):
            w.add_episode(ep)
        assert w.next_episode_index == 0


def test_existing_dataset_needs_resume_and_the_same_settings(dataset, tmp_path):
    with pytest.raises(DatasetError, match="resume=True"):
        DatasetWriter(dataset, fps=25, chunk_frames=30, render_size=(32, 48))
    with pytest.raises(DatasetError, match="fps"):
        DatasetWriter(dataset, fps=30, resume=True, chunk_frames=30, render_size=(32, 48))
    with pytest.raises(DatasetError, match="features differ"):
        DatasetWriter(dataset, fps=25, resume=True, chunk_frames=30)


def test_one_writer_per_directory(tmp_path):
    with DatasetWriter(tmp_path / "ds") as w:
        w.add_episode(episode(0))
        with pytest.raises(DatasetError, match="another DatasetWriter"):
            DatasetWriter(tmp_path / "ds", resume=True)
    with DatasetWriter(tmp_path / "ds", resume=True) as w:  # released on close
        assert w.next_episode_index == 1


def test_write_mp4_round_trips_frame_count_and_colour(tmp_path):
    frames = np.zeros((6, 32, 32, 3), np.uint8)
    frames[..., 0] = 200  # red in RGB
    path = write_mp4(tmp_path / "clip.mp4", frames, fps=10)
    assert count_frames(path) == 6
    import cv2

    ok, bgr = cv2.VideoCapture(str(path)).read()
    assert ok and bgr[..., 2].mean() > 150 and bgr[..., 0].mean() < 50
