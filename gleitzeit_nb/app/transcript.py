"""A session's recorded tool calls read back: each call with its result, as a :class:`ToolRun`
(for its block in exports and the chat panel)."""

from __future__ import annotations

import itertools
from typing import Any

from .tool_runs import ToolRun

__all__ = ["results_after", "run_of_call"]


def results_after(messages: list[dict[str, Any]], i: int) -> dict[Any, dict[str, Any]]:
    """The ``tool`` messages right after ``messages[i]`` (an assistant's calls), by call id and
    by tool name (ids repeat from one turn to the next: ``call_1_1``)."""
    out: dict[Any, dict[str, Any]] = {}
    for msg in itertools.takewhile(lambda m: m.get("role") == "tool", messages[i + 1:]):
        for key in (msg.get("tool_call_id"), msg.get("tool_name")):
            if key is not None:
                out.setdefault(key, msg)
    return out


def run_of_call(call: dict[str, Any], results: dict[Any, dict[str, Any]]) -> ToolRun:
    """A recorded call as a :class:`ToolRun` (for its block), its result looked up in
    ``results`` (the ``tool`` messages by call id, or by tool name)."""
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    name = str(function.get("name") or "")
    result = results.get(call.get("id")) or results.get(name) or {}
    text = str(result.get("content") or "")
    failed = text.startswith("Error: ")
    status = result.get("status") or ("error" if failed else "ok")  # (older sessions: none)
    return ToolRun(id=str(call.get("id") or ""), name=name, arguments=function.get("arguments"),
                   round=0, status=status, result=text, error=text[7:] if failed else None)
