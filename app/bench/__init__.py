"""The benchmark groups behind `facetwin bench`: each module's `run(quick) -> dict` times one stage."""
