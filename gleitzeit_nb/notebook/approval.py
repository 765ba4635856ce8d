"""Ask the person at the notebook whether a tool call may run: Approve / Refuse buttons.

``await ask_in_notebook(name, arguments)`` shows the call and returns the decision. It works
from a running cell (``bridge.run`` in a magic, or a cell that awaits) as well as from a
panel's background task: while it waits, :mod:`.comms` lets the click reach the
kernel, and cells queued meanwhile still run after the asking cell, in order.

Headless runs (nbclient, nbval, papermill) have nobody to click: callers check
:func:`can_ask_in_notebook` first and decide by themselves when it is False.
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Callable, Mapping
from typing import Any

from . import comms
from .display import resolve_mode

__all__ = ["ApprovalBox", "ask_in_notebook", "can_ask_in_notebook"]

#: What the status line says after the decision (or when the wait was cut short).
OUTCOMES = {"approved": "✓ approved", "refused": "✗ refused", "interrupted": "⏹ interrupted"}
#: Seconds between wake-ups of the loop while waiting (see ``ask_in_notebook``).
WAKE_INTERVAL = 0.25


def can_ask_in_notebook() -> bool:
    """True in a live kernel a person watches whose clicks can be received while waiting."""
    return resolve_mode() == "live" and comms.supported()


def format_arguments(arguments: Mapping[str, Any] | Any) -> str:
    """The arguments as indented JSON text (not yet escaped); anything else by ``repr``."""
    try:
        return json.dumps(arguments, indent=2, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):  # (e.g. circular)
        return repr(arguments)


class ApprovalBox:
    """The widget: the call, shown as escaped text, two buttons and a status line."""

    def __init__(self, name: str, arguments: Mapping[str, Any] | Any, call_id: str = "") -> None:
        import ipywidgets as w

        ident = (f" <span style='opacity:.6'>({html.escape(call_id)})</span>" if call_id else "")
        self.title = w.HTML(value=f"🔧 The model asks to run <code>{html.escape(name)}</code>{ident}")
        self.arguments = w.HTML(
            value="<pre style='max-height:16em;overflow:auto;margin:0;white-space:pre-wrap'>"
                  f"{html.escape(format_arguments(arguments))}</pre>")
        self.approve = w.Button(description="Approve", icon="check", button_style="success",
                                tooltip=f"Run {name} with these arguments")
        self.refuse = w.Button(description="Refuse", icon="times", button_style="danger",
                               tooltip="Tell the model the call was refused")
        self.status = w.HTML(value=self._status_html("waiting for your decision…"))
        self.widget = w.VBox([self.title, self.arguments,
                              w.HBox([self.approve, self.refuse, self.status])])
        self.widget.add_class("gleitzeit-approval")

    @staticmethod
    def _status_html(text: str) -> str:
        return f"<span style='font-size:90%;margin-left:.5em'>{html.escape(text)}</span>"

    def on_decision(self, callback: Callable[[bool], None]) -> None:
        """``callback(True)`` on Approve, ``callback(False)`` on Refuse (any thread)."""
        self.approve.on_click(lambda _: callback(True))
        self.refuse.on_click(lambda _: callback(False))

    def settle(self, outcome: str) -> None:
        """Disable the buttons and say what happened (a key of ``OUTCOMES``)."""
        self.approve.disabled = self.refuse.disabled = True
        self.status.value = self._status_html(OUTCOMES.get(outcome, outcome))


async def ask_in_notebook(name: str, arguments: dict[str, Any], *, call_id: str = "",
                          show: Callable[[Any], None] | None = None) -> bool:
    """Show the call ``name(**arguments)`` and wait for Approve (True) or Refuse (False).

    ``show`` places the widget (default: ``display`` in the current output; a panel passes
    one that adds it to its own view). An interrupt or cancellation while waiting propagates
    at once and leaves the widget saying "interrupted". Needs ipykernel 7 (else RuntimeError).
    """
    kernel = comms.current_kernel()
    if kernel is None or not comms.supported(kernel):
        raise RuntimeError("Approval buttons need a Jupyter kernel (ipykernel 7) on its main "
                           "thread; check can_ask_in_notebook() and decide otherwise.")
    loop = asyncio.get_running_loop()
    decision: asyncio.Future[bool] = loop.create_future()

    def decide(approved: bool) -> None:
        if not decision.done():  # the first click counts
            decision.set_result(approved)

    box = ApprovalBox(name, arguments, call_id)
    # (a click may be handled on a subshell's thread: hand the result to our loop)
    box.on_decision(lambda approved: loop.call_soon_threadsafe(decide, approved))
    if show is None:
        from IPython.display import display

        display(box.widget)
    else:
        show(box.widget)
    outcome = "interrupted"
    try:
        with comms.comms_while_waiting(kernel):
            # Woken now and then: in a cell that awaits, ipykernel's SIGINT handler only
            # schedules the cancel, which an idle loop (nothing else due) would not run.
            while not decision.done():
                await asyncio.wait([decision], timeout=WAKE_INTERVAL)
            approved = decision.result()
        outcome = "approved" if approved else "refused"
        return approved
    finally:
        box.settle(outcome)
