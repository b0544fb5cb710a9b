"""facetwin.motion: facial motion primitives, named poses and the strategies that generate episodes.

Pure numpy over the face spec; shared by the sim collector and the real robot.
"""

from facetwin.motion.babble import BabbleConfig, BabbleStrategy
from facetwin.motion.expert import REJECTION_RULES, ExpertConfig, ExpertStrategy, Keyframe
from facetwin.motion.poses import NAMED_POSES, named_pose
from facetwin.motion.primitives import PRIMITIVES, Activation, Primitive, compose, primitive
from facetwin.motion.strategy import STRATEGIES, Strategy, make_strategy
from facetwin.motion.trajectory import Segment, min_jerk, sample

__all__ = [
    "Activation", "BabbleConfig", "BabbleStrategy", "ExpertConfig", "ExpertStrategy", "Keyframe",
    "NAMED_POSES", "PRIMITIVES", "Primitive", "REJECTION_RULES", "STRATEGIES", "Segment", "Strategy",
    "compose", "make_strategy", "min_jerk", "named_pose", "primitive", "sample",
]
