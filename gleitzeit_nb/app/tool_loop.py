"""The tool loop: the model asks for calls, they run in the kernel, their results go back,
until the model answers (or ``max_tool_rounds`` rounds of calls have run).

Every round is one request, streamed into the same display, on either API. Each round is
recorded and replayed like any reply; the model's calls come from the recording, and the
tools **run again** on replay (they are the notebook's own functions: a report shows what they
return now). A result that differs from the recorded one is reported: the next round's request
would not be the recorded one. In ``replay`` mode that is an error naming the tool; in ``auto``
mode a warning, and the rest of the conversation goes live and is recorded anew.
"""

from __future__ import annotations

import asyncio
import inspect
import warnings
from typing import Any

from .. import replay
from ..core.backend import ChatRequest, ToolCall
from ..core.errors import CapabilityError, LLMError, ProviderTimeoutError, StreamError
from ..core.provider import BackendProvider
from ..replay.errors import ReplayMissError, record_hint
from .connections import Connections
from .fit import check_fit
from .replies import Reply
from .tool_runs import ToolRun, execute
from .usage import USAGE

__all__ = ["converse", "ToolResultChangedError"]

#: Stats summed over a conversation's rounds (the rest come from its last round).
_SUMMED = ("input_tokens", "output_tokens", "load_seconds", "prompt_seconds",
           "generation_seconds", "total_seconds")


class ToolResultChangedError(ReplayMissError):
    """Replay mode: a tool returned something else than when the conversation was recorded."""

    def __init__(self, run: ToolRun, *, model: str, prompt: str, store: Any) -> None:
        LLMError.__init__(
            self,
            f"Replay: tool '{run.name}' ({run.arguments_text()}) returned a different result "
            f"than when this conversation was recorded (recorded: {_short(run.recorded)}; now: "
            f"{_short(run.result)}), so the model's next answer is not in the store "
            f"{store}. The notebook's data or the function changed; to record it again, "
            f"{record_hint()}.")
        self.prompt, self.model, self.key = prompt, model, None
        from pathlib import Path

        self.store = Path(store)


async def converse(req: Any, backend: BackendProvider, request: ChatRequest, display: Any, *,
                   conn: Connections, session: Any, user: dict[str, Any], model: str) -> Reply:
    """Run the rounds of one tool conversation (``req.tools`` set; see the module doc)."""
    tools = {t.name: t for t in req.tools}
    approve = _approver(req.approve, display)
    replayer = replay.current()
    steps: list[dict[str, Any]] = []  # this turn's assistant tool_calls and tool messages
    runs: list[ToolRun] = []
    totals: dict[str, Any] = {}
    live_rounds = 0
    text = thinking = ""
    offset = 0
    display.start()
    try:
        from .requests import stream_round, ticking

        async with ticking(display):
            for round_no in range(1, req.max_tool_rounds + 2):
                key = canonical = hit = None
                offset = len(display.text)  # where this round's text starts
                if replayer.active:
                    canonical = replay.chat_request_key(backend.kind, request)
                    key, hit = replayer.find(canonical)
                if hit is not None:
                    USAGE.add(model=request.model, server=backend.base_url, stats=hit.stats,
                              replayed=True)
                    text, thinking, stats = hit.text, hit.thinking, dict(hit.stats)
                    calls = [ToolCall.of(c) for c in hit.tool_calls]
                    display.add(text, thinking)
                else:
                    if live_rounds == 0:
                        await _check_capability(conn, backend, model)
                    await check_fit(conn, backend, request)
                    live_rounds += 1
                    stream = await stream_round(backend, request, display, deadline=req.deadline)
                    text, thinking = stream.text, stream.thinking
                    stats, calls = stream.usage.as_dict(), list(stream.tool_calls)
                _add_stats(totals, stats)
                if not calls:
                    if key is not None and hit is None:
                        replayer.save(key, text=text, thinking=thinking, stats=stats,
                                      model=stream.model, status="done", request=canonical)
                    break
                round_runs = [ToolRun(id=f"call_{round_no}_{i}", name=c.name,
                                      arguments=c.arguments, round=round_no)
                              for i, c in enumerate(calls, 1)]
                assistant = {"role": "assistant", "content": text,
                             "tool_calls": [r.call_dict() for r in round_runs]}
                steps.append(assistant)
                offset = len(display.text)  # (this round's text is kept in `assistant`)
                runs.extend(round_runs)
                if round_no > req.max_tool_rounds:
                    _skip(round_runs, req.max_tool_rounds, display, steps)
                    totals["finish_reason"] = "max_tool_rounds"
                    break
                recorded = {r.get("id"): r for r in (hit.tool_results if hit else ())}
                for run, call in zip(round_runs, calls):
                    run.recorded = recorded.get(run.id, {}).get("result")
                    display.add_tool(run)
                    try:
                        await execute(run, tools, approve=approve,
                                      arguments_error=call.arguments_error)
                    finally:
                        display.update_tool(run)
                    steps.append(run.message())
                if hit is not None:
                    for run in round_runs:  # shown as recorded, so a replayed report is stable
                        run.seconds = recorded.get(run.id, {}).get("seconds", run.seconds)
                    _check_unchanged(round_runs, replayer, model, req.prompt)
                elif key is not None:
                    replayer.save(key, text=text, thinking=thinking, stats=stats,
                                  model=stream.model, status="done", request=canonical,
                                  tool_calls=[r.call_dict() for r in round_runs],
                                  tool_results=[_recorded(r) for r in round_runs])
                request.messages = [*request.messages, assistant,
                                    *(r.message() for r in round_runs)]
    except (KeyboardInterrupt, asyncio.CancelledError):
        display.finish(stats=None, status="interrupted")  # (once: a stream may have done it)
        _keep(req, session, user, model, steps, runs, display.text[offset:])
        raise
    except (StreamError, ProviderTimeoutError) as exc:
        display.finish(stats=None, status="error")
        req.partial = exc.partial
        _keep(req, session, user, model, steps, runs, exc.partial)
        raise
    except LLMError:
        display.finish(stats=None, status="error")
        raise
    status = "replayed" if live_rounds == 0 else "done"
    display.finish(stats=totals, status=status)
    reply = Reply(text, thinking=thinking, stats=totals, model=model, status=status,
                  tool_calls=runs)
    if req.remember:
        session.add_turn(user, text, model=model, steps=steps, stats=totals, thinking=thinking,
                         status=status)
    return reply


def _approver(policy: Any, display: Any) -> Any:
    """``approve`` as an async function (None: run without asking)."""
    if policy == "never":
        return None
    if policy == "always":
        ask = getattr(display, "approve", None)

        async def nobody(run: ToolRun) -> bool:
            run.error = "nobody to approve it (this display cannot ask)"
            return False

        return ask if ask is not None else nobody

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


def _skip(runs: list[ToolRun], limit: int, display: Any, steps: list[dict[str, Any]]) -> None:
    """The calls past ``max_tool_rounds``: not run; their results say why (for the history)."""
    for run in runs:
        run.status = "skipped"
        run.error = f"not run: the limit of {limit} tool rounds was reached"
        run.result = f"Error: {run.error}."
        display.add_tool(run)
        display.update_tool(run)
        steps.append(run.message())


def _check_unchanged(runs: list[ToolRun], replayer: Any, model: str, prompt: str) -> None:
    changed = [r for r in runs if r.recorded is not None and r.recorded != r.result]
    if not changed:
        return
    error = ToolResultChangedError(changed[0], model=model, prompt=prompt, store=replayer.path)
    if replayer.mode == "replay":
        raise error
    warnings.warn(error.message + " The rest of this conversation runs live.", stacklevel=2)


def _recorded(run: ToolRun) -> dict[str, Any]:
    out = {"id": run.id, "name": run.name, "result": run.result, "status": run.status}
    if run.seconds is not None:
        out["seconds"] = round(run.seconds, 3)
    return out


def _add_stats(totals: dict[str, Any], stats: dict[str, Any]) -> None:
    for k, v in stats.items():
        if k in _SUMMED and isinstance(v, (int, float)):
            totals[k] = totals.get(k, 0) + v
        else:
            totals[k] = v
    totals["rounds"] = totals.get("rounds", 0) + 1


def _keep(req: Any, session: Any, user: dict[str, Any], model: str, steps: list[dict[str, Any]],
          runs: list[ToolRun], text: str) -> None:
    """An interrupted conversation: every call gets a result in the history (a call without
    one breaks the next request on OpenAI-compatible servers), then the partial reply."""
    answered = {m.get("tool_call_id") for m in steps if m.get("role") == "tool"}
    for run in runs:
        if run.id not in answered:
            if run.status in ("pending", "running"):
                run.status, run.error = "interrupted", "interrupted"
            run.result = run.result or "Error: not run: the user interrupted."
            steps.append(run.message())
    if req.partial is None:
        req.partial = text
    if req.remember:
        session.add_turn(user, text, interrupted=True, model=model, steps=steps)


def _short(text: str | None, limit: int = 80) -> str:
    flat = " ".join(str(text or "").split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")
