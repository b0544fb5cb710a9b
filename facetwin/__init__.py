"""facetwin: a simulation-first digital twin of a servo-driven robot face that mimics human expressions.

The core (this package: face spec, expression layout, landmarker bundle, perception, motion, datasets)
imports none of the stages above it, so `import facetwin` stays light. The Gymnasium environments are
registered where they live, by `import facetwin.sim.envs`.
"""

__version__ = "0.1.0"
