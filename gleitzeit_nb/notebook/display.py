"""Where a streamed reply is shown: one live display, one final display, or the terminal.

``resolve_mode("auto")`` decides, in this order:

1. ``GLEITZEIT_DISPLAY`` (``live`` / ``final`` / ``terminal``) wins;
2. no IPython kernel (plain IPython, a script) → ``terminal``;
3. a kernel a person is watching → ``live``: started by a Jupyter server (it sets
   ``JPY_SESSION_NAME``), a VS Code notebook (``__vsc_ipynb_file__`` in the namespace, or
   ``VSCODE_PID``/``VSCODE_CWD`` unless inherited from VS Code's own terminal,
   ``TERM_PROGRAM=vscode``), or Colab;
4. any other kernel → ``final``: one run headless by nbclient, nbconvert, nbval or papermill.
   nbval ignores ``update_display_data`` and would compare the placeholder, and a report should
   hold one output per reply.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..app.render import THINKING_TAIL, footer_text, reply_bundle, waiting_bundle

__all__ = ["CHARS_PER_SECOND", "MODES", "ReplyDisplay", "resolve_mode"]

MODES = ("live", "final", "terminal")
#: Live updates re-send the whole reply; past 2,500 characters they slow to this many per second.
CHARS_PER_SECOND = 25_000


def resolve_mode(mode: str | None = "auto") -> str:
    """``"live"``, ``"final"`` or ``"terminal"`` for ``mode`` (``"auto"`` per the module doc)."""
    if mode in MODES:
        return mode
    if mode not in ("auto", None):
        raise ValueError(f"display mode {mode!r}: use one of auto, {', '.join(MODES)}")
    env = os.environ.get("GLEITZEIT_DISPLAY", "").strip().lower()
    if env and env != "auto":
        if env not in MODES:
            raise ValueError(f"GLEITZEIT_DISPLAY={env!r}: use one of auto, {', '.join(MODES)}")
        return env
    try:
        from IPython import get_ipython
    except ImportError:
        return "terminal"
    shell = get_ipython()
    if shell is None or not any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__):
        return "terminal"
    vscode = os.environ.get("VSCODE_PID") or os.environ.get("VSCODE_CWD")
    if (os.environ.get("JPY_SESSION_NAME") or "__vsc_ipynb_file__" in shell.user_ns
            or (vscode and os.environ.get("TERM_PROGRAM") != "vscode")
            or type(shell).__module__.startswith("google.colab")):
        return "live"
    return "final"


class ReplyDisplay:
    """Shows one reply while it streams; create one per reply.

    ``add`` only appends and checks the clock. In live mode it renders at most once per
    ``max(min_interval, size / 25_000)`` seconds (size: characters of text plus shown thinking):
    10 per second while the reply is short, then at most ~25,000 characters of Markdown per
    second, since every update re-sends the whole reply. ``tick`` flushes a pending render;
    ``finish`` always shows the final state at once. In the terminal the answer is written as it
    arrives; thinking is shown dimmed on a terminal and left out when stdout is a pipe or file.
    """

    #: Where the approval buttons go (None: the cell's output); a panel puts them in its view.
    show_approval: Callable[[Any], None] | None = None

    def __init__(self, *, model: str, mode: str | None = "auto", show_stats: bool = True,
                 min_interval: float = 0.1, plain: bool = False) -> None:
        self.model = model
        self.plain = plain  # text/plain only: the reply shown as typed, no Markdown
        self.mode = resolve_mode(mode)
        self.show_stats = show_stats
        self.min_interval = min_interval
        self.updates_sent = 0  # display_data / update_display_data messages sent
        self.bytes_sent = 0  # UTF-8 bytes of the bundles in them
        self._parts: list[str] = []
        self._thinking: list[str] = []
        self._tools: list[tuple[int, Any]] = []  # (position in the text, ToolRun)
        self._chars = self._thinking_chars = 0
        self._handle: Any = None
        self._started = self._last_tick = time.monotonic()
        self._next_render = 0.0
        self._dirty = self._finished = False
        self._term = {"tty": False, "wrote": False, "dim": False, "eol": True}

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def thinking(self) -> str:
        return "".join(self._thinking)

    def start(self) -> None:
        """Before the request: the live mode shows the waiting line."""
        self._started = self._last_tick = time.monotonic()
        if self.mode == "live":
            self._show(waiting_bundle(self.model))
        elif self.mode == "terminal":
            self._term["tty"] = bool(getattr(sys.stdout, "isatty", lambda: False)())
            # (nothing is written before the first token: stdout stays the answer only)

    def tick(self) -> None:
        """Call now and then: renders pending content, or ages the waiting line (at most 1/s)."""
        if self.mode != "live" or self._finished:
            return
        now = time.monotonic()
        if self._dirty:
            if now >= self._next_render:
                self._render("streaming")
        elif not self._chars and not self._thinking_chars and now - self._last_tick >= 1.0:
            self._last_tick = now
            self._show(waiting_bundle(self.model, now - self._started))

    def add(self, content: str, thinking: str = "") -> None:
        """One streamed delta of the answer and/or the thinking."""
        if content:
            self._parts.append(content)
            self._chars += len(content)
        if thinking:
            self._thinking.append(thinking)
            self._thinking_chars += len(thinking)
        if self.mode == "live":
            self._dirty = True
            if time.monotonic() >= self._next_render:
                self._render("streaming")
        elif self.mode == "terminal":
            self._write(content, thinking)

    def add_tool(self, run: Any) -> None:
        """A tool call made at this point of the reply (shown as a collapsed block)."""
        self._tools.append((self._chars, run))
        self.update_tool(run)

    def update_tool(self, run: Any) -> None:
        """Show the call's new state (running, its result, an error) now."""
        if self.mode == "live":
            self._render("streaming")
        elif self.mode == "terminal" and run.status not in ("pending", "running"):
            from ..app.tool_render import tool_block

            term = self._term
            lead = "" if term["eol"] else "\n"
            block = tool_block(run)[1]
            sys.stdout.write(lead + (f"\x1b[2m{block}\x1b[0m\n" if term["tty"] else block + "\n"))
            sys.stdout.flush()
            term["eol"] = True

    async def approve(self, run: Any) -> bool:
        """Ask the person watching whether ``run`` may run (see :func:`ask_person`); a live
        reply first shows the call as pending."""
        if self.mode == "live":
            self._render("streaming")
        return await ask_person(run, self.mode, show=self.show_approval)

    def finish(self, *, stats: Mapping[str, Any] | None = None, status: str = "done", note: str = "") -> None:
        """Show the final state now (once); ``status`` as in :func:`.render.reply_bundle`."""
        if self._finished:
            return
        self._finished = True
        if self.mode == "terminal":
            self._write_footer(stats, status, note)
        elif self._chars or self._thinking_chars or self._tools or status != "error":
            self._render(status, stats, note)
        elif self._handle is not None:  # an error before any text: the cell's error says it all
            self._show({"text/plain": ""})

    # -- notebook ----------------------------------------------------------------------------
    def _render(self, status: str, stats: Mapping[str, Any] | None = None, note: str = "") -> None:
        self._show(reply_bundle(self.text, self.thinking, model=self.model, stats=stats, status=status,
                                show_stats=self.show_stats, note=note, tools=self._tools))
        self._dirty = False
        size = self._chars + min(self._thinking_chars, THINKING_TAIL)
        self._next_render = time.monotonic() + max(self.min_interval, size / CHARS_PER_SECOND)

    def _show(self, bundle: dict[str, str]) -> None:
        if self.plain:
            bundle = {"text/plain": bundle["text/plain"]}
        self.updates_sent += 1
        self.bytes_sent += sum(len(v.encode("utf-8")) for v in bundle.values())
        self._handle = show_in_place(bundle, self.mode, self._handle)

    # -- terminal ----------------------------------------------------------------------------
    def _write(self, content: str, thinking: str) -> None:
        term, out = self._term, sys.stdout
        if thinking and term["tty"] and not term["wrote"]:  # thinking comes before the answer
            out.write(("" if term["dim"] else "\x1b[2m") + thinking)
            term["dim"] = True
        if content:
            if term["dim"]:
                out.write("\x1b[0m\n\n")
                term["dim"] = False
            out.write(content)
            term["wrote"], term["eol"] = True, content.endswith("\n")
        out.flush()

    def _write_footer(self, stats: Mapping[str, Any] | None, status: str, note: str) -> None:
        term, out = self._term, sys.stdout
        lines = [f"[{status}{': ' + note if note else ''}]"] if status not in ("done", "streaming") else []
        if footer := footer_text(stats, status=status, show_stats=self.show_stats):
            lines.append(f"[{self.model} · {footer}]")
        if term["dim"]:
            out.write("\x1b[0m")
        if (term["wrote"] and not term["eol"]) or term["dim"]:
            out.write("\n")
        for line in lines:
            out.write(f"\x1b[2m{line}\x1b[0m\n" if term["tty"] else line + "\n")
        out.flush()


def show_in_place(bundle: dict[str, str], mode: str, handle: Any) -> Any:
    """Show ``bundle``: in final mode as a new output; else in one output, created the first
    time (``handle`` None) and updated after. Returns the handle to pass next time."""
    from IPython.display import display

    if mode == "final":
        display(bundle, raw=True)
    elif handle is None:
        handle = display(bundle, raw=True, display_id=True)
    else:
        handle.update(bundle, raw=True)
    return handle


async def ask_person(run: Any, mode: str, *, show: Any = None) -> bool:
    """Whether ``run`` may run: Approve / Refuse buttons in a live notebook (placed by
    ``show``, default the cell's output), a ``[y/N]`` prompt on a terminal; a headless run
    (final mode, a pipe) has nobody to ask: refused, with the reason on ``run.error``."""
    if mode == "live":
        from .approval import ask_in_notebook, can_ask_in_notebook

        if can_ask_in_notebook():
            return await ask_in_notebook(run.name, run.arguments, call_id=run.id, show=show)
    if mode == "terminal" and getattr(sys.stdin, "isatty", lambda: False)():
        answer = input(f"Run {run.name}({run.arguments_text()})? [y/N] ")
        return answer.strip().lower() in ("y", "yes")
    run.error = ("refused: nobody can approve it here (a headless run, or a kernel older "
                 "than ipykernel 7); set approve='never' or a function to decide")
    return False
