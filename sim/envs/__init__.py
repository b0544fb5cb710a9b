"""Gymnasium environments over the face twin.

`facetwin/FaceMimic-v0` (hold a target expression) and `facetwin/FaceTrack-v0` (follow a moving one)
are registered by `import facetwin`; the classes import MuJoCo, so they load only when made.
"""

from facetwin.sim.envs.face_mimic import FaceMimicEnv
from facetwin.sim.envs.face_track import FaceTrackEnv
from facetwin.sim.envs.observation import HEAD_SCALE_DEG, ObservationLayout
from facetwin.sim.envs.rewards import RewardConfig, RewardTerms

ENV_IDS = ("facetwin/FaceMimic-v0", "facetwin/FaceTrack-v0")

__all__ = [
    "ENV_IDS", "FaceMimicEnv", "FaceTrackEnv", "HEAD_SCALE_DEG", "ObservationLayout",
    "RewardConfig", "RewardTerms",
]
