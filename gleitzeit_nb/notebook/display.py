"""Where a streamed reply is shown: a live display, one final display, or the terminal.

``resolve_mode("auto")``: ``GLEITZEIT_DISPLAY`` (live/final/terminal) wins; without an IPython
kernel → "terminal"; a kernel started by a Jupyter server (``JPY_SESSION_NAME``) or by VS Code
(``VSCODE_PID`` / ``VSCODE_CWD``) → "live"; any other kernel (nbclient, nbconvert, nbval,
papermill: headless runs) → "final", because nbval ignores display updates and a report should
hold one final output per reply.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from .render import reply_bundle, stats_line, waiting_bundle

MODES = ("live", "final", "terminal")


def resolve_mode(mode: str | None = "auto") -> str:
    if mode in MODES:
        return mode
    if mode not in (None, "auto"):
        raise ValueError(f"display mode {mode!r}: use one of auto, {', '.join(MODES)}")
    env = os.environ.get("GLEITZEIT_DISPLAY", "").strip().lower()
    if env in MODES:
        return env
    try:
        from IPython import get_ipython
    except ImportError:
        return "terminal"
    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return "terminal"
    if os.environ.get("JPY_SESSION_NAME") or os.environ.get("VSCODE_PID") or os.environ.get("VSCODE_CWD"):
        return "live"
    return "final"


class ReplyDisplay:
    """Shows one reply as it streams. ``add`` is cheap; rendering is throttled.

    Live updates come at most every ``max(min_interval, len(text) / 100_000)`` seconds: about
    10 per second for short replies, fewer as the text grows (each update re-sends the whole
    Markdown). ``finish`` always shows the final state at once.
    """

    def __init__(self, *, model: str, mode: str | None = "auto", show_stats: bool = True,
                 min_interval: float = 0.1) -> None:
        self.model = model
        self.mode = resolve_mode(mode)
        self.show_stats = show_stats
        self.min_interval = min_interval
        self._parts: list[str] = []
        self._thinking: list[str] = []
        self._size = 0
        self._handle: Any = None
        self._started = time.monotonic()
        self._last_render = 0.0
        self._last_tick = 0.0
        self._next_render = 0.0
        self._wrote_terminal = False
        self.updates_sent = 0
        self.bytes_sent = 0

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def thinking(self) -> str:
        return "".join(self._thinking)

    def start(self) -> None:
        self._started = time.monotonic()
        if self.mode == "live":
            self._show(waiting_bundle(self.model))

    def tick(self) -> None:
        now = time.monotonic()
        if self.mode == "live" and not self._size and now - self._last_tick >= 1.0:
            self._last_tick = now
            self._show(waiting_bundle(self.model, now - self._started))

    def add(self, content: str, thinking: str = "") -> None:
        if content:
            self._parts.append(content)
            self._size += len(content)
        if thinking:
            self._thinking.append(thinking)
            self._size += len(thinking)
        if self.mode == "live":
            now = time.monotonic()
            if now >= self._next_render:
                self._render("streaming")
                self._next_render = now + max(self.min_interval, self._size / 100_000)
        elif self.mode == "terminal" and content:
            sys.stdout.write(content)
            sys.stdout.flush()
            self._wrote_terminal = True

    def finish(self, *, stats: dict[str, Any] | None = None, status: str = "done",
               note: str = "") -> None:
        if self.mode == "terminal":
            footer = stats_line(stats, status=status) if self.show_stats else ""
            mark = "" if status == "done" else f"[{status}{': ' + note if note else ''}]"
            tail = " ".join(p for p in (mark, f"[{footer}]" if footer else "") if p)
            if self._wrote_terminal or tail:
                sys.stdout.write(("\n" if self._wrote_terminal else "") + tail + ("\n" if tail else ""))
                sys.stdout.flush()
            return
        if self.mode == "final" and not self._size and status == "error":
            return  # nothing to keep; the error message says it all
        self._render(status, stats=stats, note=note)

    # -- output ------------------------------------------------------------------------------
    def _render(self, status: str, stats: dict[str, Any] | None = None, note: str = "") -> None:
        bundle = reply_bundle(self.text, self.thinking, model=self.model, stats=stats,
                              status=status, show_stats=self.show_stats, note=note)
        self._show(bundle)

    def _show(self, bundle: dict[str, str]) -> None:
        from IPython.display import display

        self.updates_sent += 1
        self.bytes_sent += len(json.dumps(bundle))
        if self.mode == "final":
            display(bundle, raw=True)
        elif self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
