"""facetwin.sim."""
