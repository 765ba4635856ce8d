"""What both panels share: model dropdown, running one request as a task, Stop, status line."""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ipywidgets as w

from ..app.connections import CONNECTIONS
from ..app.replies import Reply
from .stream import WidgetStream

AUTO = "(auto)"


def schedule(coro: Awaitable[Any], *, quiet: bool = False) -> asyncio.Task[Any] | None:
    """A task on the running loop (the kernel's, in a cell or widget callback); never blocks.

    A panel needs a running loop: a notebook kernel has one, a script gets one from
    ``asyncio.run``. Without one, ``quiet`` work (loading the model list) is skipped (None),
    and a request is an error that says so, rather than a task that would never run.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        if hasattr(coro, "close"):
            coro.close()  # type: ignore[union-attr]
        if quiet:
            return None
        raise RuntimeError("Panels run their requests on a running event loop: use them in a "
                           "notebook, or in a script inside asyncio.run() and await the task; "
                           "for plain scripts use gleitzeit_nb.chat().") from None
    return loop.create_task(coro)  # type: ignore[arg-type]


def show_bundle(out: w.Output, bundle: dict[str, str]) -> None:
    """Replace what ``out`` shows with one MIME bundle (no capture context needed)."""
    out.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)


class PanelBase(w.VBox):
    """A VBox with one request at a time: ``_start(coro)`` schedules it, ``stop()`` cancels it."""

    capability = "completion"

    def __init__(self, *, model: str | None, host: str | None, **kw: Any) -> None:
        super().__init__(**kw)
        self.host = host
        self.error: str | None = None
        self._task: asyncio.Task[Any] | None = None
        self._stream: WidgetStream | None = None
        self.model_picker = w.Dropdown(options=[AUTO] + ([model] if model else []),
                                       value=model or AUTO, description="Model",
                                       layout=w.Layout(width="auto"))
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True,
                                    button_style="warning", tooltip="Stop the running request")
        self.stop_button.on_click(lambda _: self.stop())
        self.status = w.HTML(value="")
        self._generation = 0  # bumped by clear(): a request from before must not touch the UI
        self._models_loaded = False
        self._models_task = schedule(self._load_models(), quiet=True)

    # -- models ------------------------------------------------------------------------------
    @property
    def model(self) -> str | None:
        """The chosen model, or None to let the server's first loaded/installed one answer."""
        value = self.model_picker.value
        return None if value in (None, AUTO) else str(value)

    async def _load_models(self) -> None:
        try:
            backend = CONNECTIONS.backend(self.host)
            infos = await CONNECTIONS.models(backend)
        except Exception as exc:  # shown, never raised into the log
            self._set_status(f"⚠ could not list models: {exc}")
            return
        names = [i.name for i in infos if i.can(self.capability) is not False]
        current = self.model_picker.value
        if current not in names and f"{current}:latest" in names:  # llava is llava:latest
            current = f"{current}:latest"
        options = [AUTO] + names + ([current] if current not in names and current != AUTO else [])
        self.model_picker.options = options
        self.model_picker.value = current
        self._models_loaded = True

    # -- running -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _start(self, work: Callable[[WidgetStream], Awaitable[Reply]],
               stream: WidgetStream) -> asyncio.Task[Reply | None]:
        if self.running:
            raise RuntimeError("A request is already running: wait for it or press Stop.")
        self.error = None
        self._stream = stream
        self._task = schedule(self._guard(work, stream, self._generation))
        # the model list failed before (server down): try again now
        if not self._models_loaded and (self._models_task is None or self._models_task.done()):
            self._models_task = schedule(self._load_models(), quiet=True)
        return self._task

    async def _guard(self, work: Callable[[WidgetStream], Awaitable[Reply]],
                     stream: WidgetStream, generation: int) -> Reply | None:
        """Run ``work``; errors and Stop end here as panel state, never as a lost traceback."""
        self._busy(True)
        ticker = asyncio.ensure_future(self._tick(stream))
        reply: Reply | None = None
        try:
            reply = await work(stream)
        except asyncio.CancelledError:
            if not stream.finished:
                stream.stopped = True
                stream.finish(status="interrupted")
        except Exception as exc:
            self.error = str(exc) or type(exc).__name__
            if not stream.finished:
                stream.finish(status="error", note=self.error.split(". ")[0])
        finally:
            ticker.cancel()
            self._busy(False)
            if generation == self._generation:  # not cleared meanwhile
                self._done(stream, reply)
        return reply

    def stop(self) -> None:
        """Cancel the running request: the HTTP stream closes, the partial answer stays.

        Once only: a second cancel while httpx closes the connection cuts that short, and the
        server would go on generating (a double-click on Stop, or Stop then Clear)."""
        if self.running and self._task is not None and not self._task.cancelling():
            if self._stream is not None:
                self._stream.stopped = True
            self._task.cancel()

    async def _tick(self, stream: WidgetStream) -> None:
        while True:
            elapsed = time.monotonic() - stream.started
            tool = stream.active_tool
            if tool is not None:
                what = "waits for Approve or Refuse" if tool.status == "pending" else "running"
                self._set_status(f"🔧 {tool.name} {what}… {elapsed:.0f} s")
            elif stream.first_token is None:
                hint = " — loading the model?" if elapsed >= 3 else ""
                self._set_status(f"⏳ waiting for {stream.model or 'the model'}… "
                                 f"{elapsed:.0f} s{hint}")
            else:
                self._set_status(f"✍ {stream.model}: {len(stream.text):,} characters, "
                                 f"{elapsed:.0f} s")
            await asyncio.sleep(0.25)  # (the stream's own ticker renders held-back text)

    def _done(self, stream: WidgetStream, reply: Reply | None) -> None:
        elapsed = time.monotonic() - stream.started
        if self.error:
            self._set_status(f"⚠ {self.error}")
        elif stream.status == "stopped":
            self._set_status(f"⏹ stopped after {elapsed:.1f} s — partial answer kept")
        elif reply is not None:
            calls = len(reply.tool_calls)
            tools = f" · {calls} tool call{'s' if calls != 1 else ''}" if calls else ""
            self._set_status(f"✓ {reply.model} · {elapsed:.1f} s{tools}")

    def _busy(self, busy: bool) -> None:
        self.stop_button.disabled = not busy

    def _set_status(self, text: str) -> None:
        self.status.value = f"<span style='font-size:90%'>{html.escape(text)}</span>"
