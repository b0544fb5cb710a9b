"""Sub-commands of the `facetwin` program, one module each (see facetwin.app.cli)."""
