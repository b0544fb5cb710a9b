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


def check_resume(root: str | Path, relpath: str, config, motion: dict) -> None:
    """Refuse to resume the dataset at root unless its record at relpath holds `config` (the same dataclass
    type) and `motion`, the strategy's settings now: other settings would make other rows, and a changed
    strategy default would mix two motion distributions in one dataset. No record: nothing to check."""
    recorded = read_collection_config(root, relpath, type(config))
    if recorded is None:
        return
    if recorded != config:
        diffs = [f"{k}: dataset {v!r}, now {getattr(config, k)!r}" for k, v in asdict(recorded).items() if v != getattr(config, k)]
        raise DatasetError(f"cannot resume {root} with other collection settings ({'; '.join(diffs)}); resume with the original ones")
    played = json.loads((Path(root) / relpath).read_text()).get("motion")
    if played != motion:
        diffs = sorted(k for k in motion if (played or {}).get(k) != motion[k])
        raise DatasetError(
            f"cannot resume {root}: its episodes were played by the {config.strategy} strategy with other settings than "
            f"this version's ({', '.join(diffs)}), and a resume would mix two motion distributions; collect into a new folder")
