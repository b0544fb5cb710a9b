"""The twin at scale: many faces settled at once (BatchTwin), on CPU threads or MuJoCo Warp."""

from facetwin.sim.batch.twin import BACKENDS, BatchState, BatchTwin

__all__ = ["BACKENDS", "BatchState", "BatchTwin"]
