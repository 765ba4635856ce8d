"""``ChatPanel``: a chat box in a cell, with a streaming transcript, Stop and a model picker."""

from __future__ import annotations

import asyncio
import html
import itertools
from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from ..app.connections import CONNECTIONS
from ..app.markdown import escape_html
from ..app.render import reply_bundle
from ..app.replies import Reply
from ..app.requests import ask_async, make_request, tool_options
from ..app.settings import SETTINGS
from ..app.transcript import results_after, run_of_call
from ..app.tool_runs import Approver
from .base import PanelBase, show_bundle
from .stream import WidgetStream

_numbers = itertools.count(1)


def _user_bundle(text: str) -> dict[str, str]:
    return {"text/plain": text, "text/markdown": escape_html(text, close_fence=True)}


class ChatPanel(PanelBase):
    """A chat panel; the conversation is the session ``session`` shared with ``%%llm -s NAME``.

    Without ``session`` the panel gets its own (``panel-1``, ``panel-2``, …; see ``.session``).
    ``send(text)`` does what the Send button does and returns the asyncio task (await it in a
    cell); ``stop()`` cancels it and keeps the partial answer; ``messages`` lists finished turns.

    ``tools`` are functions the model may call: each call shows as a collapsed block in the
    answer, and the Reply has them on ``.tool_calls``. ``approve``: "never" (run at once),
    "always" (Approve / Refuse buttons in the panel; ``pending_approval`` is the waiting one)
    or a function given the call. Stop ends the conversation between or during rounds, also
    while a call runs (an async one) or waits for a click.
    """

    def __init__(self, model: str | None = None, session: str | None = None,
                 system: str | None = None, host: str | None = None,
                 temperature: float | None = None, timeout: float | None = None,
                 max_tokens: int | None = None, tools: Sequence[Any] | None = None,
                 approve: str | Approver | None = None,
                 max_tool_rounds: int | None = None) -> None:
        """Arguments left out take the settings' values (``%config LLMMagics``)."""
        self.tools, self.approve, self.max_tool_rounds = tool_options(tools, approve,
                                                                      max_tool_rounds)
        super().__init__(model=model or SETTINGS.model or None, host=host)
        self.session = session or f"panel-{next(_numbers)}"
        self.system = SETTINGS.system if system is None else system
        self.timeout = timeout
        self.max_tokens = SETTINGS.max_tokens if max_tokens is None else max_tokens
        if temperature is None:
            temperature = SETTINGS.temperature
        self.transcript = w.VBox(layout=w.Layout(max_height="480px", overflow="auto"))
        self.transcript.add_class("gleitzeit-transcript")
        self.prompt = w.Textarea(placeholder="Ask something…", rows=3,
                                 layout=w.Layout(width="100%"))
        self.send_button = w.Button(description="Send", icon="paper-plane",
                                    button_style="primary")
        self.clear_button = w.Button(description="Clear", icon="trash",
                                     tooltip="Forget this conversation")
        self.temperature = w.FloatSlider(value=0.8 if temperature is None else temperature,
                                         min=0.0, max=2.0, step=0.05, description="Temp",
                                         readout_format=".2f")
        self._temperature_set = temperature is not None
        self.temperature.observe(self._temperature_touched, names="value")
        self.send_button.on_click(lambda _: self._send_from_ui())
        self.clear_button.on_click(lambda _: self.clear())
        controls = w.HBox([self.send_button, self.stop_button, self.clear_button])
        settings = w.HBox([self.model_picker, self.temperature])
        self.children = [self.transcript, self.prompt, controls, settings, self.status]
        self.add_class("gleitzeit-chat")
        self._shown = 0  # the session's messages the transcript shows
        self._catch_up()

    # -- API ---------------------------------------------------------------------------------
    @property
    def messages(self) -> list[dict[str, str]]:
        """Finished turns of the conversation as ``{"role", "content"}`` dicts (the tool calls
        on the way to an answer are on its Reply's ``.tool_calls``)."""
        return [{"role": m["role"], "content": m["content"]}
                for m in CONNECTIONS.sessions.get(self.session).messages if not _is_step(m)]

    @property
    def pending_approval(self) -> Any:
        """The Approve / Refuse box (the notebook's approval widget) of the call waiting for a
        click, inside the answer's turn; None when none waits."""
        return self._stream.approval if self.running and self._stream is not None else None

    def send(self, text: str) -> asyncio.Task[Reply | None]:
        """Send ``text`` as the button does; the task's result is the Reply (None if stopped or
        failed: see ``error``)."""
        text = text.strip()
        if not text:
            raise ValueError("Nothing to send: type a prompt first.")
        if self.running:
            raise RuntimeError("A request is already running: wait for it or press Stop.")
        if self.session in _ANSWERING:
            raise RuntimeError(f"Session {self.session!r} is answering in another panel: wait "
                               "for it, or give this panel a session of its own.")
        self._catch_up()  # turns another panel or %%llm -s added meanwhile
        self._add_turn("user", "", _user_bundle(text))
        turn = self._add_turn("assistant", self.model or "", {"text/plain": "…",
                                                           "text/markdown": "*…*"})
        out = turn.children[1]
        stream = WidgetStream(lambda bundle: show_bundle(out, bundle), model=self.model or "",
                              approvals=turn)
        req = make_request(text, model=self.model, host=self.host, timeout=self.timeout,
                           session=self.session, system=self.system,
                           max_tokens=self.max_tokens, temperature=self.temperature.value
                           if self._temperature_set else None, tools=self.tools,
                           approve=self.approve, max_tool_rounds=self.max_tool_rounds)
        task = self._start(lambda s: ask_async(req, display=s), stream)
        _ANSWERING.add(self.session)
        task.add_done_callback(lambda _: _ANSWERING.discard(self.session))
        return task

    def clear(self) -> None:
        """Stop any request, forget the session's turns and empty the transcript."""
        if self.running and self._task is not None:  # its partial turn lands after the cancel
            self._task.add_done_callback(lambda _: CONNECTIONS.sessions.reset(self.session))
        self.stop()
        CONNECTIONS.sessions.reset(self.session)
        self._generation += 1  # the cancelled request ends without touching the UI
        self.transcript.children = ()
        self._shown = 0
        self.error = None
        self._set_status("")

    def _catch_up(self) -> None:
        """Show the session's turns this transcript does not show yet."""
        messages = CONNECTIONS.sessions.get(self.session).messages
        said, tools = "", []  # a tool conversation's steps, shown in the answer they led to
        for i, msg in enumerate(messages[self._shown:], self._shown):
            if msg["role"] == "tool":  # (folded into its call)
                continue
            if msg.get("tool_calls"):  # its results follow it (ids repeat in every turn)
                results = results_after(messages, i)
                said += msg.get("content") or ""
                tools += [(len(said), run_of_call(c, results)) for c in msg["tool_calls"]]
                continue
            if msg["role"] == "user":
                self._add_turn("user", "", _user_bundle(msg["content"]))
                continue
            self._add_turn(msg["role"], msg.get("model", ""), reply_bundle(
                said + msg["content"], model=msg.get("model") or "model", tools=tools,
                status="stopped" if msg.get("interrupted") else "done"))
            said, tools = "", []
        self._shown = len(messages)

    # -- UI ----------------------------------------------------------------------------------
    def _send_from_ui(self) -> None:
        text = self.prompt.value
        if not text.strip() or self.running:
            return
        try:
            self.send(text)
        except RuntimeError as exc:  # e.g. the session is answering in another panel
            self._set_status(f"⚠ {exc}")
            return
        self.prompt.value = ""

    def _temperature_touched(self, _: Any) -> None:
        self._temperature_set = True

    def _busy(self, busy: bool) -> None:
        super()._busy(busy)
        self.send_button.disabled = busy

    def _add_turn(self, role: str, model: str, bundle: dict[str, str]) -> w.VBox:
        """A turn of the transcript: its label, then its output (``children[1]``)."""
        label = "You" if role == "user" else (model or "assistant")
        head = w.HTML(value=f"<b>{html.escape(label)}</b>")
        out = w.Output(layout=w.Layout(padding="0 0 0 8px"))
        out.add_class(f"gleitzeit-{role}")
        show_bundle(out, bundle)
        turn = w.VBox([head, out])
        self.transcript.children = (*self.transcript.children, turn)
        if role == "assistant":
            self._last_head = head
        return turn

    def _done(self, stream: WidgetStream, reply: Reply | None) -> None:
        super()._done(stream, reply)
        self._shown = len(CONNECTIONS.sessions.get(self.session).messages)  # our turn is shown
        if stream.model and getattr(self, "_last_head", None) is not None:
            self._last_head.value = f"<b>{html.escape(stream.model)}</b>"


def _is_step(msg: dict[str, Any]) -> bool:
    """A tool conversation's step: an assistant message with calls, or a call's result."""
    return msg["role"] == "tool" or bool(msg.get("tool_calls"))


#: Sessions a panel is answering in now: one request at a time per conversation.
_ANSWERING: set[str] = set()
