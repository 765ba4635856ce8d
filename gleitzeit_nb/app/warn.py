"""Warnings that point at the user's code (the cell), not at a line inside the kit."""

from __future__ import annotations

import sys
import warnings

#: Packages between a cell and the kit: the kit itself and what runs cells and event loops.
_RUNNERS = frozenset({"gleitzeit_nb", "IPython", "ipykernel", "asyncio", "nest_asyncio",
                      "nest_asyncio2", "traitlets", "contextlib", "concurrent", "threading",
                      "runpy", "tornado", "zmq", "importlib", "decorator"})


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` at the first frame outside the kit and the machinery that runs it:
    the notebook cell (or script line) that made the call."""
    frame = sys._getframe(1)
    level = 2
    while frame is not None and _internal(frame):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level if frame is not None else 2)


def _internal(frame: object) -> bool:
    code = frame.f_code  # type: ignore[attr-defined]
    if code.co_filename.startswith("<decorator-gen"):
        return True
    module = str(frame.f_globals.get("__name__") or "")  # type: ignore[attr-defined]
    return module.split(".")[0] in _RUNNERS
