"""facetwin datasets: LeRobotDataset v3.0 folders written and read with pyarrow alone.

    with DatasetWriter(root, spec, fps=30, resume=True) as w:
        for ep in range(w.next_episode_index, n_episodes):
            w.add_episode(produce(seed=ep))          # EpisodeFrames
    arrays = load_arrays(root)                       # .action (N,25), .expression (N,55), .episode_index
    report = check(root)                             # CheckReport; .ok, .problems
"""

from facetwin.dataset.check import CheckReport, FeatureRange, check
from facetwin.dataset.layout import DatasetError, DatasetInfo, EpisodeRecord, Feature, read_episodes, read_info
from facetwin.dataset.reader import DatasetArrays, load_arrays, read_stats, read_tasks
from facetwin.dataset.stats import FeatureStats
from facetwin.dataset.writer import DatasetWriter, EpisodeFrames

__all__ = [
    "CheckReport",
    "DatasetArrays",
    "DatasetError",
    "DatasetInfo",
    "DatasetWriter",
    "EpisodeFrames",
    "EpisodeRecord",
    "Feature",
    "FeatureRange",
    "FeatureStats",
    "check",
    "load_arrays",
    "read_episodes",
    "read_info",
    "read_stats",
    "read_tasks",
]
