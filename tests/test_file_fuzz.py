"""Damaged files: zero-length, truncated and bit-flipped datasets, checkpoints and calibrations.

Every reader answers a damaged file with its one error type (DatasetError, RunError, CalibrationError),
in one line that names the file and says what to do. Where the format carries a checksum (parquet page
CRCs, the calibration's `checksum`), a read that succeeds returns exactly what was written; JSON and
safetensors payloads carry none, so a flip that leaves them valid can load changed (documented in
docs/reliability.md). A full disk mid-commit loses nothing committed, and `--resume` completes the run.
"""

from __future__ import annotations

import errno
import pathlib
import shutil
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facetwin.agents.policies.kan_attention import servo_regions
from facetwin.agents.policies.kinds import build_model
from facetwin.agents.training.checkpoint import RunError, config_for, load_run_policy, save_run
from facetwin.app.cli import main
from facetwin.dataset import DatasetError, DatasetWriter, EpisodeFrames, check, load_arrays, read_stats, read_tasks
from facetwin.real.calibration import Calibration, CalibrationError
from facetwin.spec import default_spec

SPEC = default_spec()
EPISODES = 6
FLIPS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


def episode(i: int) -> EpisodeFrames:
    rng = np.random.default_rng(100 + i)
    t = int(rng.integers(6, 14))
    return EpisodeFrames(action=rng.uniform(-1, 1, (t, SPEC.n)), state=rng.uniform(-1, 1, (t, SPEC.n)),
                         expression=rng.uniform(0, 1, (t, 55)))


def write_dataset(root, episodes=range(EPISODES), resume=False) -> DatasetWriter:
    with DatasetWriter(root, SPEC, fps=10, landmarks=False, chunk_frames=20, resume=resume) as w:
        for i in episodes:
            if i >= w.next_episode_index:
                w.add_episode(episode(i))
    return w


def snapshot(root) -> dict:
    a = load_arrays(root)
    out = {k: getattr(a, k) for k in ("action", "state", "expression", "episode_index", "index", "timestamp")}
    out["stats"] = {k: (s.mean, s.std, s.min, s.max, s.count) for k, s in read_stats(root).items()}
    out["tasks"] = read_tasks(root)
    return out


def same(a: dict, b: dict) -> bool:
    try:
        np.testing.assert_equal(a, b)
        return True
    except AssertionError:
        return False


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "ds"
    write_dataset(root)
    return root, snapshot(root)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("run") / "run"
    model = build_model("mlp", SPEC.n, servo_regions(SPEC), {"hidden": [8]})
    save_run(root, model, config_for(model, SPEC))
    return root


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    path = tmp_path_factory.mktemp("cal") / "calibration.yaml"
    Calibration.from_spec(SPEC).save(path)
    return path


class damaged:
    """Context manager: the file cut to `size` bytes or with bit `flip` inverted, restored afterwards."""

    def __init__(self, path, *, size: int | None = None, flip: int | None = None):
        self.path, self.size, self.flip = path, size, flip

    def __enter__(self):
        self.original = self.path.read_bytes()
        data = bytearray(self.original)
        if self.size is not None:
            data = data[: self.size]
        if self.flip is not None:
            data[self.flip // 8] ^= 1 << (self.flip % 8)
        self.path.write_bytes(bytes(data))
        return self

    def __exit__(self, *exc):
        self.path.write_bytes(self.original)


def assert_one_line_naming(exc: Exception, path: pathlib.Path) -> None:
    msg = str(exc)
    assert "\n" not in msg, msg
    assert path.name in msg or (path.parent.parent.name == "episodes" and "meta/episodes" in msg), msg
    assert "`facetwin" in msg or "--resume" in msg, f"no fix named: {msg}"


def cuts(n: int) -> list[int]:
    """Zero length and proper truncations (a file cut only in its trailing newline is not cut)."""
    return sorted({0, 1, n // 4, n // 2, 3 * n // 4, n - 2})


DATASET_FILES = ["meta/info.json", "meta/stats.json", "meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet",
                 "data/chunk-000/file-001.parquet"]


read_dataset = snapshot  # every reader: info, episodes, data files, stats, tasks


# -- datasets --------------------------------------------------------------------------------------
@pytest.mark.parametrize("rel", DATASET_FILES)
def test_truncated_or_empty_dataset_files_raise_one_line_naming_the_file_and_fix(dataset, rel):
    root, _ = dataset
    path = root / rel
    for size in cuts(len(path.read_bytes().rstrip())):
        with damaged(path, size=size), pytest.raises(DatasetError) as info:
            read_dataset(root)
        assert_one_line_naming(info.value, path)


@pytest.mark.parametrize("rel", DATASET_FILES)
@FLIPS
@given(where=st.integers(0, 2**40))
def test_bit_flipped_dataset_files_raise_or_read_back_unchanged_where_checksummed(dataset, rel, where):
    root, reference = dataset
    path = root / rel
    with damaged(path, flip=where % (8 * path.stat().st_size)):
        try:
            got = read_dataset(root)
        except DatasetError as exc:
            assert_one_line_naming(exc, path)
            return
    if path.suffix == ".parquet":  # page CRCs: a flip that reads must be one that changed nothing read
        assert same(got, reference)


def test_flips_in_parquet_pages_are_errors_not_changed_numbers(dataset):
    """Page CRCs at work: flips across the first half of each file (its pages; the footer is at the end)."""
    root, reference = dataset
    for path in sorted(root.rglob("*.parquet")):
        size, errors = path.stat().st_size, 0
        for pos in range(4, size // 2, max(1, size // 60)):
            with damaged(path, flip=8 * pos + 4):
                try:
                    assert same(read_dataset(root), reference), f"{path.name}: a flip at byte {pos} changed the data"
                except DatasetError:
                    errors += 1
        assert errors > 0, path


def test_dataset_check_lists_a_damaged_file_as_a_problem(dataset):
    root, _ = dataset
    path = root / "data/chunk-000/file-000.parquet"
    with damaged(path, size=100):
        report = check(root)
    assert not report.ok and any(path.name in p for p in report.problems)


def test_cli_prints_one_line_and_exits_2_for_a_damaged_dataset(dataset, capsys):
    root, _ = dataset
    for rel in ("meta/info.json", "meta/episodes/chunk-000/file-000.parquet"):
        with damaged(root / rel, size=7):
            assert main(["dataset", "info", str(root)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and rel.split("/")[-1] in err, err


# -- checkpoints -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_truncated_or_empty_checkpoint_files_raise_one_line_naming_the_file_and_fix(run_dir, name):
    path = run_dir / name
    for size in cuts(len(path.read_bytes().rstrip())):
        with damaged(path, size=size), pytest.raises(RunError) as info:
            load_run_policy(run_dir, SPEC)
        assert_one_line_naming(info.value, path)
        assert f"facetwin train --out {run_dir}" in str(info.value)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
@FLIPS
@given(where=st.integers(0, 2**40))
def test_bit_flipped_checkpoint_files_raise_run_error_or_load(run_dir, name, where):
    path = run_dir / name
    with damaged(path, flip=where % (8 * path.stat().st_size)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                policy = load_run_policy(run_dir, SPEC)
        except RunError as exc:
            assert "\n" not in str(exc) and (path.name in str(exc) or "run " in str(exc)), str(exc)
            return
    out = policy(np.zeros(55, np.float32))
    assert out.shape == (SPEC.n,)  # loaded: whatever the weights now say, a command vector comes out


def test_cli_prints_one_line_and_exits_2_for_a_damaged_checkpoint(run_dir, capsys):
    with damaged(run_dir / "config.json", size=40):
        assert main(["export", str(run_dir), "--onnx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config.json" in err and "facetwin train --out" in err, err


def test_saving_over_a_run_on_a_full_disk_keeps_the_previous_checkpoint(run_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    model = build_model("mlp", SPEC.n, servo_regions(SPEC), {"hidden": [8]})
    real_write = pathlib.Path.write_bytes

    def full(self, data):
        real_write(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    import safetensors.torch as st_torch

    monkeypatch.setattr("facetwin.agents.training.checkpoint.save_file",
                        lambda tensors, path: full(pathlib.Path(path), st_torch.save(tensors)))
    with pytest.raises(OSError):
        save_run(run, model, config_for(model, SPEC))
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # no torn file, no temporary left
    load_run_policy(run, SPEC)


# -- calibration -----------------------------------------------------------------------------------
def test_truncated_or_empty_calibration_raises_one_line_naming_the_file_and_fix(calibration):
    for size in cuts(len(calibration.read_bytes().rstrip())) + list(range(40, 400, 37)):
        with damaged(calibration, size=size), pytest.raises(CalibrationError) as info:
            Calibration.load(calibration, SPEC)
        assert_one_line_naming(info.value, calibration)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(where=st.integers(0, 2**40))
def test_bit_flipped_calibration_raises_or_loads_exactly_what_was_written(calibration, where):
    """The limits that protect the skin: a flipped digit in a tick is caught by the checksum, not obeyed."""
    reference = Calibration.load(calibration, SPEC)
    with damaged(calibration, flip=where % (8 * calibration.stat().st_size)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = Calibration.load(calibration, SPEC)
        except CalibrationError as exc:
            assert_one_line_naming(exc, calibration)
            return
    assert got.servos == reference.servos


def test_a_calibration_edited_on_purpose_loads_once_its_checksum_line_is_gone(calibration, tmp_path):
    s = Calibration.load(calibration, SPEC).servos[0]
    tighter = s.min_ticks + 10  # one servo's lower limit raised by hand
    text = calibration.read_text().replace(f"min_ticks: {s.min_ticks}", f"min_ticks: {tighter}", 1)
    edited = tmp_path / "edited.yaml"
    edited.write_text(text)
    with pytest.raises(CalibrationError, match="checksum"):
        Calibration.load(edited, SPEC)
    edited.write_text("\n".join(line for line in text.splitlines() if not line.startswith("checksum:")))
    assert Calibration.load(edited, SPEC).servos[0].min_ticks == tighter


def test_cli_prints_one_line_and_exits_2_for_a_damaged_calibration(calibration, capsys):
    with damaged(calibration, size=300):
        assert main(["real", "pose", "smile", "--dry-run", "--calibration", str(calibration)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and calibration.name in err and "facetwin real calibrate" in err, err


# -- a full disk mid-run, then --resume ------------------------------------------------------------
COMMIT_FILES = ["data/", "meta/episodes/", "tasks", "stats", "info"]  # in commit order; temporaries are .NAME.tmp-PID.EXT


@pytest.mark.parametrize("fails", COMMIT_FILES)
def test_disk_full_mid_commit_loses_nothing_committed_and_resume_completes(tmp_path, dataset, monkeypatch, fails):
    """ENOSPC on the second commit (half the bytes written, then the error), at each of its five files."""
    from facetwin.dataset import atomic

    root = tmp_path / "ds"
    seen: list[str] = []
    real_bytes, real_parquet = pathlib.Path.write_bytes, atomic.pq.write_table

    def fail_on_second(target: str) -> bool:
        rel = pathlib.Path(target).relative_to(root).as_posix()
        seen.append(rel)
        return sum(fails in s for s in seen) == 2 and fails in rel

    def write_bytes(self, data):
        if root in self.parents and fail_on_second(str(self)):
            real_bytes(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_bytes(self, data)

    def write_table(table, where, **kw):
        if fail_on_second(str(where)):
            real_bytes(pathlib.Path(where), b"PAR1" + b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device", str(where))
        return real_parquet(table, where, **kw)

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    monkeypatch.setattr(atomic.pq, "write_table", write_table)
    with pytest.raises(DatasetError) as info:
        write_dataset(root)
    msg = str(info.value)
    assert "\n" not in msg and "No space left" in msg and "--resume" in msg, msg
    monkeypatch.undo()

    committed = load_arrays(root)
    n = committed.info.total_episodes
    assert 0 < n < EPISODES and f"the {n} committed before them are intact" in msg
    rows = np.isin(dataset[1]["episode_index"], np.arange(n))
    np.testing.assert_array_equal(committed.action, dataset[1]["action"][rows])  # every committed row intact
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name]  # the failed write took its temporary with it

    write_dataset(root, resume=True)  # free space, --resume
    assert same(snapshot(root), dataset[1])
    report = check(root)
    assert report.ok and not report.warnings, (report.problems, report.warnings)


def test_collect_cli_on_a_full_disk_exits_2_in_one_line_and_resume_gives_the_uninterrupted_rows(tmp_path, monkeypatch, capsys):
    from facetwin.dataset import atomic

    argv = ["collect", "--episodes", "4", "--frames-per-episode", "5", "--readout", "fast", "--chunk-frames", "5", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "whole")]) == 0
    out = tmp_path / "full"
    real_parquet, data_writes = atomic.pq.write_table, []

    def write_table(table, where, **kw):
        if "/data/" in str(where):
            data_writes.append(where)
            if len(data_writes) == 3:  # the third episode's commit finds the disk full
                raise OSError(errno.ENOSPC, "No space left on device", str(where))
        return real_parquet(table, where, **kw)

    monkeypatch.setattr(atomic.pq, "write_table", write_table)
    capsys.readouterr()
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "--resume" in err and "Traceback" not in err, err
    monkeypatch.undo()
    assert load_arrays(out).info.total_episodes == 2
    assert main([*argv, "--out", str(out), "--resume"]) == 0
    got, want = load_arrays(out), load_arrays(tmp_path / "whole")
    for key in ("action", "state", "expression", "landmarks", "episode_index", "index"):
        np.testing.assert_array_equal(getattr(got, key), getattr(want, key), err_msg=key)
    assert check(out).ok
