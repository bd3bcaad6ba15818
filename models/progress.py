"""Progress callbacks: `progress(fraction, message)`, as the page, the CLI's bar and the jobs take them."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


def scaled(progress: Progress | None, start: float, end: float) -> Progress | None:
    """A callback that maps one step's 0..1 onto [start, end] of the whole task."""
    if progress is None:
        return None
    return lambda fraction, message: progress(start + (end - start) * fraction, message)
