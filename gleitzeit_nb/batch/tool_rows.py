"""Batch rows with tools: each row is a tool conversation, run by the app's request pipeline.

A row's rounds (request, calls, results, next request) go through ``ask_async`` exactly as
``chat(tools=...)`` does, silently and without memory, on a server the registry picks for the
row (the one with the most free capacity; the conversation stays on it). Replay works per
round as in a chat. The row's result carries the final answer as a ``Reply`` whose
``.tool_calls`` are the calls made on the way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from ..app.requests import Request, ask_async, tool_options
from ..app.tool_runs import Approver
from ..core.engine import TaskResult, TaskStatus
from ..core.errors import InvalidParamsError, LLMError
from ..core.image_prep import PreparedImage
from ..core.tools import Tool

logger = logging.getLogger(__name__)


def batch_tool_options(tools: Sequence[Any] | None, approve: str | Approver | None,
                       max_tool_rounds: int | None) -> tuple[list[Tool], str | Approver, int]:
    """The checked tool options of a batch; "always" is refused (nobody clicks per row)."""
    given = approve
    tool_list, approve, rounds = tool_options(tools, approve, max_tool_rounds)
    if tool_list and approve == "always":
        source = "approve='always'" if given is not None else \
            "approve='always' (the setting LLMMagics.tool_approval)"
        raise InvalidParamsError(
            f"{source} cannot work in a batch: nobody can approve the calls of every row. "
            "Use approve='never' (run each call) or a function that gets the call (its .name, "
            ".arguments) and returns True to run it.", param="approve")
    return tool_list, approve, rounds


async def run_tool_row(batch: Any, i: int, images: list[PreparedImage]) -> TaskResult:
    """Row ``i`` of ``batch`` as a tool conversation; a failure is the row's (in the result)."""
    provider = batch.engine.registry.select_provider("llm/v1")
    req = Request(prompt=batch.rows.prompts[i], model=batch.model, images=images,
                  remember=False, options=dict(batch.options), tools=batch.tools,
                  approve=batch.approve, max_tool_rounds=batch.max_tool_rounds)
    res = TaskResult(task_id=f"row-{i}", status=TaskStatus.RUNNING, started_at=time.time(),
                     provider_id=provider.provider_id, attempts=1)
    try:
        with provider.track_request():
            reply = await ask_async(req, backend=provider)
    except LLMError as exc:
        res.status, res.error = TaskStatus.FAILED, exc
        return res
    except Exception as exc:  # a bug must not escape a batch either; keep the object
        logger.exception("row %s failed with an unexpected error", i)
        res.status, res.error = TaskStatus.FAILED, exc
        return res
    finally:
        res.finished_at = time.time()
    if reply.status == "replayed":
        res.provider_id = "replay"
    res.status = TaskStatus.COMPLETED
    res.result = {"response": reply.text, "reply": reply, "thinking": reply.thinking,
                  "usage": reply.stats, "model": reply.model,
                  "finish_reason": reply.stats.get("finish_reason"),
                  "tool_calls": reply.tool_calls}
    return res
