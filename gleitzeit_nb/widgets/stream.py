"""The display adapter that streams a reply into a widget, throttled like the magics."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ..notebook.display import ReplyDisplay

#: ``render(bundle)``: shows one MIME bundle (escaped Markdown + plain text).
Render = Callable[[dict[str, str]], None]


class WidgetStream(ReplyDisplay):
    """A live ``ReplyDisplay`` (same throttle, same bundles) whose output goes to a widget.

    The panel shows its own status line, so nothing is rendered before the first token. When
    ``stopped`` is set (the Stop button), an interrupted reply is marked "stopped".
    """

    def __init__(self, render: Render, *, model: str = "", min_interval: float = 0.1) -> None:
        super().__init__(model=model, mode="live", min_interval=min_interval)
        self.render = render
        self.stopped = False
        self.status = "waiting"
        self.started = time.monotonic()
        self.first_token: float | None = None

    @property
    def finished(self) -> bool:
        return self.status not in ("waiting", "streaming")

    def start(self) -> None:
        self.started = time.monotonic()

    def add(self, content: str, thinking: str = "") -> None:
        if self.first_token is None:
            self.first_token = time.monotonic()
        self.status = "streaming"
        super().add(content, thinking)

    def finish(self, *, stats: Mapping[str, Any] | None = None, status: str = "done",
               note: str = "") -> None:
        if self.finished:
            return
        if status == "interrupted" and self.stopped:
            status = "stopped"
        self.status = status
        super().finish(stats=stats, status=status, note=note)

    def _show(self, bundle: dict[str, str]) -> None:
        self.updates_sent += 1
        self.render(bundle)
