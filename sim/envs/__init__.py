"""Gymnasium environments over the face twin.

`facetwin/FaceMimic-v0` (hold a target expression; also as a BatchTwin VectorEnv) and `facetwin/FaceTrack-v0` (follow a moving one)
are registered by `import facetwin.sim.envs`, or named with their module so that Gymnasium imports it:
``gymnasium.make("facetwin.sim.envs:facetwin/FaceMimic-v0")``.
"""

import gymnasium

from facetwin.sim.envs.face_mimic import FaceMimicEnv
from facetwin.sim.envs.face_track import FaceTrackEnv
from facetwin.sim.envs.observation import HEAD_SCALE_DEG, ObservationLayout
from facetwin.sim.envs.rewards import RewardConfig, RewardTerms

ENV_IDS = ("facetwin/FaceMimic-v0", "facetwin/FaceTrack-v0")

# FaceMimic also has a vector entry point: N episodes on one BatchTwin (sim/envs/face_mimic_vector.py),
# `gymnasium.make_vec("facetwin/FaceMimic-v0", num_envs=N, vectorization_mode="vector_entry_point")`.
for _env_id, _entry_point, _vector_entry_point in zip(
    ENV_IDS,
    ("facetwin.sim.envs.face_mimic:FaceMimicEnv", "facetwin.sim.envs.face_track:FaceTrackEnv"),
    ("facetwin.sim.envs.face_mimic_vector:FaceMimicVectorEnv", None),
):
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=_entry_point, vector_entry_point=_vector_entry_point)

__all__ = [
    "ENV_IDS", "FaceMimicEnv", "FaceTrackEnv", "HEAD_SCALE_DEG", "ObservationLayout",
    "RewardConfig", "RewardTerms",
]
