"""facetwin: a simulation-first digital twin of a servo-driven robot face that mimics human expressions."""

__version__ = "0.1.0"
