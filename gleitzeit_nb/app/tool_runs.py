"""Running one tool call: validate the model's arguments, ask for approval, call, time, catch.

A call never raises for what the model or the function did wrong: an unknown tool, arguments
that do not validate, a refusal, an exception in the function (``SystemExit`` included) and a
return value that cannot be shown all become a result the model reads (``Error: …``), and the
:class:`ToolRun` says what happened. Only an interrupt or a cancellation propagates (the loop
stops).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from ..core.errors import InvalidParamsError
from ..core.tools import Tool

__all__ = ["ToolRun", "Approver", "APPROVAL_MODES", "result_text", "execute"]

#: ``approve=`` as a word: "never" (calls run without asking), "always" (ask before each call).
APPROVAL_MODES = ("never", "always")
#: A callable policy: gets the call, returns (or resolves to) True to run it.
Approver = Callable[["ToolRun"], Union[bool, Awaitable[bool]]]
#: The characters of a tool's result the model gets at most (the rest is cut, with a note).
RESULT_CHARS = 8000
#: What each outcome looks like in the display and history.
STATUSES = ("pending", "running", "ok", "error", "invalid", "refused", "interrupted", "skipped")


@dataclass
class ToolRun:
    """One call the model asked for and what became of it.

    ``id`` is stable (``call_<round>_<n>``, both from 1) so a conversation's requests, and
    so its replay keys, do not depend on ids a server made up. ``result`` is the text the
    model got; ``value`` what the function returned; ``error`` the exception or the reason it
    was not run; ``recorded`` the result stored with a replayed round (to detect a change).
    """

    id: str
    name: str
    arguments: Any
    round: int
    status: str = "pending"
    result: str = ""
    value: Any = field(default=None, repr=False)
    error: str | None = None
    seconds: float | None = None
    recorded: str | None = field(default=None, repr=False)
    recorded_status: str | None = field(default=None, repr=False)

    def call_dict(self) -> dict[str, Any]:
        """The call as the assistant message carries it."""
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    def message(self) -> dict[str, Any]:
        """The ``tool`` message that gives the model this call's result."""
        return {"role": "tool", "content": self.result, "tool_name": self.name,
                "tool_call_id": self.id}

    def arguments_text(self) -> str:
        """``n=3, column="a"`` (or the raw text when it was not a JSON object)."""
        if isinstance(self.arguments, Mapping):
            return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}"
                             for k, v in self.arguments.items())
        return str(self.arguments)

    def __str__(self) -> str:
        return f"{self.name}({self.arguments_text()}) -> {self.status}"


def result_text(value: Any, limit: int = RESULT_CHARS) -> str:
    """What the model reads for a function's return value.

    Text as is; a DataFrame or Series as its ``to_string()`` (pandas is never imported here);
    a pydantic model, dict, list or number as JSON; anything else (or what fails to convert)
    as ``str()``, else ``repr()``. Past ``limit`` characters it is cut with a note saying how
    much was left out.
    """
    try:
        text = _as_text(value)
    except Exception:  # a value whose conversion fails: its plain form
        try:
            text = str(value)
        except Exception:
            text = object.__repr__(value)
    if len(text) > limit:
        text = f"{text[:limit]}\n… [cut: {len(text) - limit:,} more characters]"
    return text


def _as_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if hasattr(value, "model_dump_json"):
        return value.model_dump_json()
    if callable(getattr(value, "to_string", None)) and hasattr(value, "shape"):
        if len(value.shape) > 1:  # a DataFrame (a Series has no max_cols)
            return value.to_string(max_rows=60, max_cols=20)
        return value.to_string(max_rows=60)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


async def execute(run: ToolRun, tools: Mapping[str, Tool], *,
                  approve: Callable[[ToolRun], Awaitable[bool]] | None,
                  arguments_error: str | None = None, limit: int = RESULT_CHARS,
                  on_running: Callable[[ToolRun], None] | None = None) -> ToolRun:
    """Run ``run`` with the function it names; ``approve`` (None: no asking) decides first;
    ``on_running`` hears when the function starts.

    The function runs in the kernel's thread, as a cell would, so it sees the notebook's
    objects and a kernel interrupt stops it; an async function is awaited.
    """
    tool = tools.get(run.name)
    if tool is None:
        names = ", ".join(sorted(tools)) or "none"
        return _fail(run, "invalid", f"there is no tool named '{run.name}'; the tools are: {names}")
    if arguments_error is not None:
        return _fail(run, "invalid", f"Invalid arguments for tool '{run.name}': "
                                     f"{arguments_error}. Send a JSON object.")
    try:
        kwargs = tool.validate(run.arguments)
    except InvalidParamsError as exc:
        return _fail(run, "invalid", exc.message)
    if approve is not None:
        run.status = "pending"
        try:
            allowed = await approve(run)
        except Exception as exc:
            return _fail(run, "error", f"the approval check failed: {type(exc).__name__}: {exc}")
        except BaseException:  # interrupt, cancellation: the loop stops
            run.status, run.error = "interrupted", "interrupted while asking"
            raise
        if not allowed:
            run.status, run.error = "refused", run.error or "refused by the user"
            run.result = ("Error: the user refused this call; do not call it again with these "
                          "arguments. Answer without it, or say what you would need.")
            return run
    run.status = "running"
    if on_running is not None:
        on_running(run)
    start = time.perf_counter()
    try:
        value = tool.function(**kwargs)
        if inspect.isawaitable(value):
            value = await value
    except (KeyboardInterrupt, asyncio.CancelledError):  # the loop stops
        run.seconds = time.perf_counter() - start
        run.status, run.error = "interrupted", "interrupted"
        raise
    except BaseException as exc:  # an exception, SystemExit from argparse… : the model hears it
        run.seconds = time.perf_counter() - start
        return _fail(run, "error", f"{type(exc).__name__}: {exc}")
    run.seconds = time.perf_counter() - start
    run.status, run.value, run.result = "ok", value, result_text(value, limit)
    return run


def _fail(run: ToolRun, status: str, error: str) -> ToolRun:
    run.status, run.error = status, error
    run.result = f"Error: {error}"
    return run
