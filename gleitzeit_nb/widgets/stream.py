"""The display adapter that streams a reply into a widget, throttled like the magics."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ..notebook.display import CHARS_PER_SECOND
from ..notebook.render import THINKING_TAIL, reply_bundle

#: ``render(bundle)``: shows one MIME bundle (escaped Markdown + plain text).
Render = Callable[[dict[str, str]], None]


class WidgetStream:
    """Implements the display protocol of ``stream_reply`` (start/add/tick/finish, text, thinking).

    Renders at most once per ``max(min_interval, size / 25_000)`` seconds, the rule of
    :class:`~gleitzeit_nb.notebook.display.ReplyDisplay`; ``tick`` flushes pending text when due
    and ``finish`` renders the final state at once. When ``stopped`` is set, an interrupted reply
    is marked "stopped" instead.
    """

    def __init__(self, render: Render, *, model: str = "", min_interval: float = 0.1) -> None:
        self.render = render
        self.model = model
        self.min_interval = min_interval
        self.stopped = False
        self.status = "waiting"
        self.renders = 0
        self.started = time.monotonic()
        self.first_token: float | None = None
        self._parts: list[str] = []
        self._thinking: list[str] = []
        self._chars = self._thinking_chars = 0
        self._next = 0.0
        self._dirty = False

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def thinking(self) -> str:
        return "".join(self._thinking)

    @property
    def finished(self) -> bool:
        return self.status not in ("waiting", "streaming")

    def start(self) -> None:
        self.started = time.monotonic()

    def add(self, content: str, thinking: str = "") -> None:
        if self.first_token is None:
            self.first_token = time.monotonic()
        self.status = "streaming"
        if content:
            self._parts.append(content)
            self._chars += len(content)
        if thinking:
            self._thinking.append(thinking)
            self._thinking_chars += len(thinking)
        self._dirty = True
        if time.monotonic() >= self._next:
            self._render("streaming")

    def tick(self) -> None:
        if self._dirty and not self.finished and time.monotonic() >= self._next:
            self._render("streaming")

    def finish(self, *, stats: Mapping[str, Any] | None = None, status: str = "done",
               note: str = "") -> None:
        if self.finished:
            return
        if status == "interrupted" and self.stopped:
            status = "stopped"
        self.status = status
        self._render(status, stats, note)

    def _render(self, status: str, stats: Mapping[str, Any] | None = None, note: str = "") -> None:
        self.render(reply_bundle(self.text, self.thinking, model=self.model or "model",
                                 stats=stats, status=status, note=note))
        self.renders += 1
        self._dirty = False
        size = self._chars + min(self._thinking_chars, THINKING_TAIL)
        self._next = time.monotonic() + max(self.min_interval, size / CHARS_PER_SECOND)
