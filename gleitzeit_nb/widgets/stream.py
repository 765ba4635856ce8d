"""The display adapter that streams a reply into a widget, throttled like the magics."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as w

from ..notebook.display import ReplyDisplay

#: ``render(bundle)``: shows one MIME bundle (escaped Markdown + plain text).
Render = Callable[[dict[str, str]], None]


class WidgetStream(ReplyDisplay):
    """A live ``ReplyDisplay`` (same throttle, same bundles) whose output goes to a widget.

    The panel shows its own status line, so nothing is rendered before the first token. When
    ``stopped`` is set (the Stop button), an interrupted reply is marked "stopped". Tool calls
    show as the reply's collapsed blocks (``add_tool``/``update_tool``, inherited); with
    ``approvals`` (a box of the panel) ``approve`` asks there with buttons, else it refuses.
    """

    def __init__(self, render: Render, *, model: str = "", min_interval: float = 0.1,
                 approvals: w.Box | None = None) -> None:
        super().__init__(model=model, mode="live", min_interval=min_interval)
        self.render = render
        self.approvals = approvals
        self.approval: w.Widget | None = None  # the buttons waiting for a click
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

    @property
    def active_tool(self) -> Any:
        """The call waiting for approval or running now (None between calls)."""
        return next((run for _, run in reversed(self._tools)
                     if run.status in ("pending", "running")), None)

    async def approve(self, run: Any) -> bool:
        """The notebook's Approve / Refuse buttons, placed in the panel (``approvals``) and
        removed once decided (the call's block shows the outcome); a Stop cancels the wait."""
        if self.approvals is None:
            run.error = "refused: this panel has no place to ask; use approve='never' or a function"
            return False
        try:
            return await super().approve(run)
        finally:
            if self.approval is not None:
                self.approvals.children = tuple(c for c in self.approvals.children
                                                if c is not self.approval)
                _close(self.approval)
                self.approval = None

    def show_approval(self, widget: w.Widget) -> None:  # type: ignore[override]
        """Where ``ask_in_notebook`` shows the buttons: at the end of the answer's turn."""
        assert self.approvals is not None
        self.approval = widget
        self.approvals.children = (*self.approvals.children, widget)

    def _show(self, bundle: dict[str, str]) -> None:
        self.updates_sent += 1
        self.render(bundle)


def _close(widget: w.Widget) -> None:
    """Close ``widget`` and the widgets inside it (they stay registered until closed)."""
    for child in getattr(widget, "children", ()):
        _close(child)
    widget.close()
