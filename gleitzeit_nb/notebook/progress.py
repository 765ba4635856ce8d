"""What every progress display shares (batches, pulls): where it shows and how time reads.

An ipywidgets bar in a live notebook, stderr lines in a terminal, nothing in "final" display
mode, so headless runs (nbclient, nbval) produce deterministic output.
"""

from __future__ import annotations

#: Seconds between redraws.
REFRESH = 0.1
#: A terminal line appears only for work that lasts longer than this, to keep scripts quiet.
TERMINAL_DELAY = 0.5


def progress_mode(progress: bool | str | None) -> str | None:
    """"live", "terminal" or None (show nothing) for a ``progress=`` argument."""
    if progress is None or progress is False:
        return None
    requested = "auto" if progress is True else str(progress)
    try:
        from .display import resolve_mode
    except ImportError:  # the display module is optional for batches
        mode = "terminal" if requested == "auto" else requested
    else:
        mode = resolve_mode(requested)
    return mode if mode in ("live", "terminal") else None


def duration(seconds: float) -> str:
    """``4.2 s``, ``12 s``, ``3 min 5 s``, ``1 h 4 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min {seconds % 60:.0f} s"
    return f"{seconds / 3600:.0f} h {seconds % 3600 / 60:.0f} min"
