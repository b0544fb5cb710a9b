"""facetwin.assets."""
