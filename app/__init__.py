"""facetwin.app: the composition above the stages — the `facetwin` program, live mimicry, the benchmarks.

It imports the core (`facetwin`), `facetwin.sim`, `facetwin.agents` and `facetwin.real`; nothing below
imports it (tests/test_architecture.py holds that).
"""
