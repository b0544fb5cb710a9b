"""The collection record beside a dataset: how its rows were made, so a resume makes them the same way."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from facetwin.dataset.atomic import write_json
from facetwin.dataset.layout import DatasetError


def write_collection_record(root: str | Path, relpath: str, collector: str, config, **extra) -> None:
    """Store `config` (a dataclass) and any `extra` JSON fields atomically at root/relpath."""
    write_json(Path(root) / relpath, {"collector": collector, "config": asdict(config), **extra})


def read_collection_config(root: str | Path, relpath: str, config_type):
    """The `config_type` a dataset was collected with, or None when it holds no such record."""
    path = Path(root) / relpath
    if not path.is_file():
        return None
    try:
        return config_type(**json.loads(path.read_text())["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path} is malformed ({exc}); it records how the dataset was collected") from exc
