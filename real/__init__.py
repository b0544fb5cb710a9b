"""facetwin.real."""
