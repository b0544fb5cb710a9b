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


def check_same_settings(root: str | Path, recorded, config) -> None:
    """Refuse to resume a dataset collected with other settings (dataclasses of one type) than `config`."""
    if recorded != config:
        diffs = [f"{k}: dataset {v!r}, now {getattr(config, k)!r}" for k, v in asdict(recorded).items() if v != getattr(config, k)]
        raise DatasetError(f"cannot resume {root} with other collection settings ({'; '.join(diffs)}); resume with the original ones")


def check_same_motion(root: str | Path, relpath: str, strategy: str, motion: dict) -> None:
    """Refuse to resume a dataset whose episodes a strategy played with other settings than `motion` (its
    settings now): the resumed episodes would come from another distribution than the recorded ones."""
    recorded = json.loads((Path(root) / relpath).read_text()).get("motion")
    if recorded != motion:
        diffs = sorted(k for k in motion if (recorded or {}).get(k) != motion[k])
        raise DatasetError(
            f"cannot resume {root}: its episodes were played by the {strategy} strategy with other settings than this "
            f"version's ({', '.join(diffs)}), and a resume would mix two motion distributions; collect into a new folder")
