"""facetwin.app.live: a person's video or webcam driving the twin or the servos, frame by frame.

This package is the composition layer behind ``facetwin mimic``, like the CLI: it joins perception,
a policy (facetwin.agents), the twin (facetwin.sim) and the servo bridge (facetwin.real). Unlike the
core ``facetwin/*`` modules it may import sim, agents and real, but only where a stage is opened
(``targets.open_target``, ``agents.policies.loader.load_policy``), so importing it stays cheap.

Stages per frame: frames.py (sequential, or newest-only for --realtime) -> perception (video mode,
One-Euro) -> face_loss.py (hold, then ease to neutral, when no face) -> policy -> targets.py ->
side_by_side.py (optional video) ; stats.py records timings and the mimicry trace; pipeline.py runs it.
"""

from facetwin.app.live.face_loss import FaceLossConfig, FaceLossHold
from facetwin.app.live.pipeline import MimicConfig, MimicResult, run_mimic

__all__ = ["FaceLossConfig", "FaceLossHold", "MimicConfig", "MimicResult", "run_mimic"]
