"""Several replies shown side by side while they stream: one output updated in place (live), one
table when all are done (final), or one block per reply, in order, in a terminal.

``ColumnsDisplay`` owns the output; each of its ``columns`` is the display one request streams
into (the protocol of :class:`.display.ReplyDisplay`: start, add, tick, finish, text).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..app.columns import column_block, columns_bundle
from .display import CHARS_PER_SECOND, resolve_mode, show_in_place

__all__ = ["ColumnDisplay", "ColumnsDisplay"]


class ColumnDisplay:
    """One reply of a :class:`ColumnsDisplay`; renders through it (which also ticks it)."""

    mode = "column"  # (not "live": the table runs one ticker for all its columns)

    def __init__(self, table: "ColumnsDisplay", label: str, host: str) -> None:
        self.table = table
        self.label, self.host = label, host
        self.model = label
        self.status = "waiting"
        self.stats: Mapping[str, Any] | None = None
        self.note = ""
        self.seconds: float | None = None  # wall time of its request (set by the runner)
        self._parts: list[str] = []
        self._thinking: list[str] = []
        self._created = time.monotonic()
        self._started: float | None = None

    text = property(lambda self: "".join(self._parts))
    thinking = property(lambda self: "".join(self._thinking))
    finished = property(lambda self: self.status not in ("waiting", "streaming"))
    #: Still showing the waiting line (no text or thinking yet, not finished).
    waiting = property(lambda self: not self.finished and not (self._parts or self._thinking))

    def waited(self) -> float | None:
        """Seconds since the request went out (None right after the table appeared)."""
        since = time.monotonic() - (self._started or self._created)
        return since if since >= 1.0 else None

    def start(self) -> None:
        self._started = time.monotonic()
        self.status = "streaming"
        self.table.changed(now=True)

    def tick(self) -> None:
        self.table.tick()

    def add(self, content: str, thinking: str = "") -> None:
        first = not self._parts and not self._thinking
        if content:
            self._parts.append(content)
        if thinking:
            self._thinking.append(thinking)
        if self.status == "waiting":  # a replayed reply arrives without start()
            self.status = "streaming"
        self.table.changed(now=first)

    def finish(self, *, stats: Mapping[str, Any] | None = None, status: str = "done",
               note: str = "") -> None:
        """The final state (once; a later :meth:`fail` may still add the error's message)."""
        if self.finished:
            return
        self.stats, self.status, self.note = stats, status, note
        self.table.column_finished()

    def fail(self, message: str, status: str = "error") -> None:
        """Show ``message`` in this column: the request failed (or was interrupted) here."""
        if not self.finished:
            self.finish(status=status, note=message)
        elif self.status in ("error", "interrupted") and not self.note:
            self.note = message
            self.table.column_finished()

    @property
    def printable(self) -> bool:
        """Finished with all it will say: an error column waits for its message (:meth:`fail`,
        right after the stream marked it)."""
        return self.finished and not (self.status == "error" and not self.note)


class ColumnsDisplay:
    """One output holding a column per ``(label, host)``; see the module doc for the modes
    (``mode`` None: nothing is shown, the columns only keep the replies).

    Live updates re-send the whole table, throttled like :class:`.display.ReplyDisplay`: at most
    once per ``max(min_interval, characters / 25_000)`` seconds.
    """

    def __init__(self, targets: Sequence[tuple[str, str]], *, mode: str | None = "auto",
                 show_stats: bool = True, min_interval: float = 0.1) -> None:
        self.mode = resolve_mode(mode) if mode else "none"
        self.show_stats = show_stats
        self.min_interval = min_interval
        self.columns = [ColumnDisplay(self, label, host) for label, host in targets]
        self.updates_sent = 0
        self._handle: Any = None
        self._next_render = 0.0
        self._last_render = time.monotonic()
        self._dirty = False
        self._printed = 0  # terminal: columns written so far (in order)

    def show(self) -> None:
        """The table with every column waiting (live mode)."""
        if self.mode == "live":
            self._render()

    def changed(self, *, now: bool = False) -> None:
        """A column changed: render when due (``now``: at once, e.g. its first token)."""
        if self.mode != "live":
            return
        self._dirty = True
        if now or time.monotonic() >= self._next_render:
            self._render()

    def tick(self) -> None:
        """Render what the throttle held back; age the waiting lines (once a second)."""
        if self.mode != "live":
            return
        now = time.monotonic()
        waiting = any(c.waiting for c in self.columns)
        if (self._dirty and now >= self._next_render) or (waiting and now - self._last_render >= 1):
            self._render()

    def column_finished(self) -> None:
        if self.mode == "live":
            self._render()
        elif self.mode == "terminal":
            self._write_ready()

    def close(self) -> None:
        """Every column is final: show the last state (final mode: the one table)."""
        for col in self.columns:
            if not col.finished:
                col.finish(status="interrupted")
        if self.mode == "terminal":
            self._write_ready(final=True)
        elif self.mode != "none":
            self._render()

    # -- output --------------------------------------------------------------------------------
    def _render(self) -> None:
        bundle = columns_bundle(self.columns, show_stats=self.show_stats)
        self.updates_sent += 1
        self._dirty = False
        self._last_render = now = time.monotonic()
        size = sum(len(c.text) for c in self.columns)
        self._next_render = now + max(self.min_interval, size / CHARS_PER_SECOND)
        self._handle = show_in_place(bundle, self.mode, self._handle)

    def _write_ready(self, *, final: bool = False) -> None:
        """Terminal: write each finished column once every column before it is written (an
        error column with its message; ``final``: whatever it has)."""
        out = sys.stdout
        while self._printed < len(self.columns) and (
                self.columns[self._printed].printable
                or final and self.columns[self._printed].finished):
            col = self.columns[self._printed]
            out.write(("\n" if self._printed else "")
                      + column_block(col, show_stats=self.show_stats) + "\n")
            self._printed += 1
        out.flush()
