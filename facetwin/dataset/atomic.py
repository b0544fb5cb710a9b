"""Crash-safe file writes: a reader never sees half a file.

Every file goes to a temporary sibling first, is flushed to disk, then renamed over its target
(rename within one directory is atomic on POSIX). A process killed mid-write leaves at most a
temporary file, which `remove_temporaries` clears on the next resume; a write that fails (a full disk)
removes its own temporary file and leaves the target as it was. Parquet pages carry CRC-32 checksums,
which the readers verify (`layout.read_parquet`), so a flipped bit in a committed file is an error,
not a changed number.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TMP_MARK = ".tmp-"


def temporary_path(target: Path) -> Path:
    """A hidden sibling of `target` that keeps its suffix (OpenCV picks the mp4 container by suffix)."""
    return target.with_name(f".{target.stem}{TMP_MARK}{os.getpid()}{target.suffix}")


def is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and TMP_MARK in path.name


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    # The rename itself lives in the directory entry; without this a power cut can undo it.
    try:
        fsync_path(path)
    except OSError:  # some filesystems refuse fsync on directories; the rename is still atomic
        pass


def commit(tmp: Path, target: Path) -> None:
    """Make a finished temporary file durable and move it into place."""
    fsync_path(tmp)
    os.replace(tmp, target)
    fsync_dir(target.parent)


def write_bytes(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(target)
    try:
        tmp.write_bytes(data)
        commit(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: Path, obj) -> None:
    write_text(target, json.dumps(obj, indent=4, ensure_ascii=False) + "\n")


def write_parquet(target: Path, table: pa.Table) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(target)
    try:
        pq.write_table(table, tmp, compression="snappy", write_page_checksum=True)
        commit(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_temporaries(root: Path) -> list[Path]:
    """Delete leftovers of interrupted writes under `root`; returns what was removed."""
    removed = []
    for p in sorted(root.rglob(f".*{TMP_MARK}*")):
        if p.is_file():
            p.unlink()
            removed.append(p)
    return removed
