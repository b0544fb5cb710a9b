"""facetwin.agents."""
