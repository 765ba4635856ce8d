"""Scheduling state: ``keep_alive`` parsing, which models are loaded (for
``/api/ps`` and ``load_delay``) and the FIFO ``parallel`` generation gate."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

#: Ollama's default keep_alive (5 minutes), in seconds.
DEFAULT_KEEP_ALIVE = 300.0
_FOREVER = timedelta(days=365 * 292)
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_keep_alive(value: Any) -> float | None:
    """Seconds to keep a model loaded; None means forever (negative values).

    Accepts numbers (seconds), numeric strings and Go durations ("5m", "1h30m").
    Raises ValueError with Go's wording for anything else."""
    if value is None:
        return DEFAULT_KEEP_ALIVE
    if isinstance(value, bool):
        raise ValueError(f"time: invalid duration {value!r}")
    if isinstance(value, (int, float)):
        return None if value < 0 else float(value)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return None if number < 0 else number
    if text.startswith("-"):
        return None
    if not text or _DURATION_PART.sub("", text):
        raise ValueError(f'time: invalid duration "{text}"')
    return sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _DURATION_PART.findall(text))


class ModelResidency:
    """Which models are "in memory": used recently and not unloaded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expires: dict[str, float | None] = {}
        self._in_use: dict[str, int] = {}

    def is_loaded(self, name: str) -> bool:
        """True while a model is in use or within its keep_alive window."""
        with self._lock:
            if self._in_use.get(name):
                return True
            if name not in self._expires:
                return False
            expiry = self._expires[name]
            return expiry is None or expiry > time.monotonic()

    def acquire(self, name: str) -> None:
        """A request starts using ``name`` (which is now loaded)."""
        with self._lock:
            self._in_use[name] = self._in_use.get(name, 0) + 1
            self._expires.setdefault(name, time.monotonic() + DEFAULT_KEEP_ALIVE)

    def release(self, name: str, keep_alive: float | None) -> None:
        """A request is done with ``name``; keep it for ``keep_alive`` seconds."""
        with self._lock:
            users = self._in_use.get(name, 0) - 1
            if users > 0:
                self._in_use[name] = users
            else:
                self._in_use.pop(name, None)
            if keep_alive == 0 and users <= 0:
                self._expires.pop(name, None)
            else:
                self._expires[name] = None if keep_alive is None else time.monotonic() + keep_alive

    def loaded(self) -> list[tuple[str, datetime]]:
        """(name, wall-clock expiry) of every loaded model."""
        now_mono = time.monotonic()
        now = datetime.now(timezone.utc)
        out = []
        with self._lock:
            for name, expiry in sorted(self._expires.items()):
                if self._in_use.get(name):
                    out.append((name, now + timedelta(seconds=DEFAULT_KEEP_ALIVE)))
                elif expiry is None:
                    out.append((name, now + _FOREVER))
                elif expiry > now_mono:
                    out.append((name, now + timedelta(seconds=expiry - now_mono)))
        return out

    def clear(self) -> None:
        """Forget every loaded model."""
        with self._lock:
            self._expires.clear()
            self._in_use.clear()


class GenerationGate:
    """Limits simultaneous generations (``OLLAMA_NUM_PARALLEL``); waiters are FIFO."""

    def __init__(self, limit: int | None = None) -> None:
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()
        self._limit = limit
        self.active = 0
        self.max_active = 0

    @property
    def limit(self) -> int | None:
        """Maximum simultaneous generations (None or <= 0: unlimited)."""
        return self._limit

    @limit.setter
    def limit(self, value: int | None) -> None:
        with self._cond:
            self._limit = value
            self._cond.notify_all()

    def _has_room(self) -> bool:
        return not self._limit or self._limit <= 0 or self.active < self._limit

    def acquire(self, abandoned: Callable[[], bool], poll: float = 0.02) -> bool:
        """Wait for a slot in arrival order; False if ``abandoned()`` turns true."""
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            try:
                while not (self._queue[0] is ticket and self._has_room()):
                    self._cond.wait(poll)
                    if abandoned():
                        return False
                self._queue.popleft()
                self.active += 1
                self.max_active = max(self.max_active, self.active)
                return True
            finally:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                self._cond.notify_all()

    def release(self) -> None:
        """Free a slot taken by ``acquire``."""
        with self._cond:
            self.active -= 1
            self._cond.notify_all()

    def reset_max(self) -> None:
        """Set ``max_active`` back to the current ``active``."""
        with self._cond:
            self.max_active = self.active
