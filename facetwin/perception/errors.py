"""The one error perception raises for bad input: a source it cannot read or a frame it cannot use."""

from __future__ import annotations


class PerceptionError(RuntimeError):
    """A source or frame perception cannot use; the message names it and what is accepted."""
