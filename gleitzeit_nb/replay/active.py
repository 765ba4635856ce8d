"""The process's current ``Replayer``, shared by the magics, ``chat()`` and ``batch()``.

Chosen by ``configure`` (``%config LLMMagics.replay`` / ``.store`` call it; scripts call
``gleitzeit_nb.replay_mode``); ``GLEITZEIT_REPLAY`` / ``GLEITZEIT_STORE`` still win, so CI can
force replay without touching a notebook.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .mode import Replayer, resolve

_lock = threading.Lock()
_settings: dict[str, Any] = {"mode": None, "store": None}
_current: Replayer | None = None


def configure(mode: str | None = None, store: str | os.PathLike[str] | None = None) -> Replayer:
    """Set the mode (off, record, replay, auto) and store path; returns the replayer in force."""
    resolve(mode, store)  # validate before changing anything
    with _lock:
        _settings["mode"], _settings["store"] = mode, store
    return current()


def current() -> Replayer:
    """The replayer for the present settings and environment (rebuilt when they change)."""
    global _current
    mode, path = resolve(_settings["mode"], _settings["store"])
    with _lock:
        if _current is None or (_current.mode, _current.path) != (mode, path):
            previous = _current
            _current = Replayer(mode, path)
            if previous is not None:
                previous.close()
                if previous.path == path:  # same store, other mode: what was used still counts
                    _current.used |= previous.used
        return _current


def replay_mode(mode: str, store: str | os.PathLike[str] | None = None) -> Replayer:
    """For scripts: ``gleitzeit_nb.replay_mode("auto", "report-replay")`` (env vars still win)."""
    return configure(mode, store)
