"""The tool loop: the model asks for calls, they run in the kernel, their results go back,
until the model answers (or ``max_tool_rounds`` rounds of calls have run).

Every round is one request, streamed into the same display, on either API; ``deadline``
bounds the whole conversation. Each round is recorded and replayed like any reply (see
:mod:`.tool_replay`). Whatever happens (an answer, an error, an interrupt), the session keeps
the transcript with a result for every call, so the next request is valid on every server.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

from .. import replay
from ..core.backend import ChatRequest, ToolCall
from ..core.errors import CapabilityError, LLMError, ProviderTimeoutError, StreamError
from ..core.provider import BackendProvider
from .connections import Connections
from .fit import check_fit
from .replies import Reply
from .tool_replay import check_unchanged, recorded_decision, recorded_result
from .tool_runs import ToolRun, execute
from .usage import USAGE

__all__ = ["converse"]

#: Stats summed over a conversation's rounds (the rest come from its last round).
_SUMMED = ("input_tokens", "output_tokens", "load_seconds", "prompt_seconds",
           "generation_seconds", "total_seconds")


async def converse(req: Any, backend: BackendProvider, request: ChatRequest, display: Any, *,
                   conn: Connections, session: Any, user: dict[str, Any], model: str) -> Reply:
    """Run the rounds of one tool conversation (``req.tools`` set; see the module doc)."""
    return await _Conversation(req, backend, request, display, conn, session, user, model).run()


class _Conversation:
    def __init__(self, req: Any, backend: BackendProvider, request: ChatRequest, display: Any,
                 conn: Connections, session: Any, user: dict[str, Any], model: str) -> None:
        self.req, self.backend, self.request, self.display = req, backend, request, display
        self.conn, self.session, self.user, self.model = conn, session, user, model
        self.tools = {t.name: t for t in req.tools}
        self.approve = _approver(req.approve, display)
        self.replayer = replay.current()
        self.steps: list[dict[str, Any]] = []  # assistant tool_calls and tool messages
        self.runs: list[ToolRun] = []
        self.totals: dict[str, Any] = {}
        self.live_rounds = 0
        self.text = self.thinking = ""
        self.offset = 0  # where the text not yet kept in `steps` starts
        self.ends_at = None if req.deadline is None else time.monotonic() + req.deadline

    async def run(self) -> Reply:
        from .requests import ticking

        display = self.display
        display.start()
        try:
            async with ticking(display):
                await self._rounds()
        except (KeyboardInterrupt, asyncio.CancelledError):
            display.finish(stats=None, status="interrupted")  # (once: a stream may have done it)
            self._keep(display.text[self.offset:])
            raise
        except (StreamError, ProviderTimeoutError) as exc:
            display.finish(stats=None, status="error")
            self._keep(exc.partial)
            raise
        except BaseException:  # an error line follows; the transcript so far stays valid
            display.finish(stats=None, status="error")
            self._keep("")
            raise
        status = "replayed" if self.live_rounds == 0 else "done"
        display.finish(stats=self.totals, status=status)
        if self.req.remember:
            final = "" if self.totals.get("finish_reason") == "max_tool_rounds" else self.text
            self.session.add_turn(self.user, final, model=self.model, steps=self.steps,
                                  stats=self.totals, thinking=self.thinking, status=status)
        return Reply(self.text, thinking=self.thinking, stats=self.totals, model=self.model,
                     status=status, tool_calls=self.runs)

    async def _rounds(self) -> None:
        req, display = self.req, self.display
        for round_no in range(1, req.max_tool_rounds + 2):
            self.offset = len(display.text)
            calls, hit, key, canonical, stats, served_by = await self._model_turn()
            _add_stats(self.totals, stats)
            if not calls:
                if key is not None and hit is None:
                    self.replayer.save(key, text=self.text, thinking=self.thinking, stats=stats,
                                       model=served_by, status="done", request=canonical)
                return
            runs = [ToolRun(id=f"call_{round_no}_{i}", name=c.name, arguments=c.arguments,
                            round=round_no) for i, c in enumerate(calls, 1)]
            self.runs.extend(runs)
            assistant = {"role": "assistant", "content": self.text,
                         "tool_calls": [r.call_dict() for r in runs]}
            self.steps.append(assistant)
            self.offset = len(display.text)  # (this round's text is kept in `assistant`)
            over = round_no > req.max_tool_rounds
            if over:
                self._skip(runs)
                self.totals["finish_reason"] = "max_tool_rounds"
            else:
                await self._run_calls(runs, calls, hit)
            if hit is not None and not over:
                check_unchanged(runs, self.replayer, self.model, req.prompt)
            elif key is not None and hit is None:
                self.replayer.save(key, text=self.text, thinking=self.thinking, stats=stats,
                                   model=served_by, status="done", request=canonical,
                                   tool_calls=[r.call_dict() for r in runs],
                                   tool_results=[recorded_result(r) for r in runs])
            if over:
                return
            self.request.messages = [*self.request.messages, assistant,
                                     *(r.message() for r in runs)]

    async def _model_turn(self) -> tuple[list[ToolCall], Any, Any, Any, dict[str, Any], str]:
        """One model reply, replayed or live: its calls, the recording (or None), the replay
        key and canonical request, its stats and the model that served it."""
        from .requests import stream_round

        backend, request, display = self.backend, self.request, self.display
        key = canonical = hit = None
        if self.replayer.active:
            canonical = replay.chat_request_key(backend.kind, request)
            key, hit = self.replayer.find(canonical)
        if hit is not None:
            USAGE.add(model=request.model, server=backend.base_url, stats=hit.stats,
                      replayed=True)
            self.text, self.thinking = hit.text, hit.thinking
            display.add(hit.text, hit.thinking)
            return ([ToolCall.of(c) for c in hit.tool_calls], hit, key, canonical,
                    dict(hit.stats), hit.model or self.model)
        if self.live_rounds == 0:
            await _check_capability(self.conn, backend, self.model)
        await check_fit(self.conn, backend, request)
        self.live_rounds += 1
        stream = await stream_round(backend, request, display, deadline=self._remaining())
        self.text, self.thinking = stream.text, stream.thinking
        return (list(stream.tool_calls), None, key, canonical, stream.usage.as_dict(),
                stream.model)

    async def _run_calls(self, runs: list[ToolRun], calls: list[ToolCall], hit: Any) -> None:
        recorded = {r.get("id"): r for r in (hit.tool_results if hit is not None else ())}
        display = self.display
        for run, call in zip(runs, calls):
            before = recorded.get(run.id, {})
            run.recorded, run.recorded_status = before.get("result"), before.get("status")
            approve = self.approve if hit is None else recorded_decision(before)
            run.status = "pending" if approve is not None else "running"
            display.add_tool(run)
            try:
                await execute(run, self.tools, approve=approve,
                              arguments_error=call.arguments_error,
                              on_running=display.update_tool)
            finally:
                if hit is not None and "seconds" in before:
                    run.seconds = before["seconds"]  # as recorded: a replayed report is stable
                display.update_tool(run)
            self.steps.append({**run.message(), "status": run.status})
            if self._remaining() == 0:
                raise self._deadline_error()

    def _skip(self, runs: list[ToolRun]) -> None:
        """The calls past ``max_tool_rounds``: not run; their results say why."""
        for run in runs:
            run.status = "skipped"
            run.error = f"not run: the limit of {self.req.max_tool_rounds} tool rounds was reached"
            run.result = f"Error: {run.error}."
            self.display.add_tool(run)
            self.steps.append({**run.message(), "status": run.status})

    def _remaining(self) -> float | None:
        return None if self.ends_at is None else max(0.0, self.ends_at - time.monotonic())

    def _deadline_error(self) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"The tool conversation with '{self.model}' at {self.backend.base_url} took longer "
            f"than the deadline of {self.req.deadline} s ({len(self.runs)} calls made). Raise "
            "it with deadline= (in a notebook: %config LLMMagics.deadline = …).",
            phase="deadline", url=self.backend.base_url, partial="")

    def _keep(self, text: str) -> None:
        """An unfinished conversation: every call gets a result in the history (a call without
        one breaks the next request on OpenAI-compatible servers), then the partial reply."""
        answered = {m.get("tool_call_id") for m in self.steps if m.get("role") == "tool"}
        for run in self.runs:
            if run.id in answered:
                continue
            if run.status == "running" or (run.status == "interrupted" and run.seconds):
                run.status, run.error = "interrupted", "interrupted while running"
                run.result = ("Error: interrupted by the user while running; it may have had "
                              "effects.")
            elif not run.result:
                run.status, run.error = "interrupted", "not run: the user interrupted"
                run.result = "Error: not run: the user interrupted."
            self.steps.append({**run.message(), "status": run.status})
        if self.req.partial is None:
            self.req.partial = text
        if self.req.remember and (self.steps or text):
            self.session.add_turn(self.user, text, interrupted=True, model=self.model,
                                  steps=self.steps)


def _approver(policy: Any, display: Any) -> Any:
    """``approve`` as an async function (None: run without asking)."""
    if policy == "never":
        return None
    if policy == "always":
        return display.approve

    async def call(run: ToolRun) -> bool:
        answer = policy(run)
        if inspect.isawaitable(answer):
            answer = await answer
        return bool(answer)

    return call


async def _check_capability(conn: Connections, backend: BackendProvider, model: str) -> None:
    """Before the first request: a model the server says cannot call tools is an error."""
    others = await conn.capable_models(backend, model, "tools")
    if others is not None:
        raise CapabilityError(f"At {backend.base_url}:", model=model,
                              capability="tools", candidates=others, status_code=0,
                              hint="pull a model with the tools capability (qwen3, llama3.2)",
                              url=backend.base_url)


def _add_stats(totals: dict[str, Any], stats: dict[str, Any]) -> None:
    for k, v in stats.items():
        if k in _SUMMED and isinstance(v, (int, float)):
            totals[k] = totals.get(k, 0) + v
        else:
            totals[k] = v
    totals["rounds"] = totals.get("rounds", 0) + 1
