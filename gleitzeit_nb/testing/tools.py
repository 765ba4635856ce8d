"""Tool calling in the simulator: ``OllamaSimulator.script_tools`` rules, the
``[[call:NAME {json args}]]`` prompt directive, the final answer that quotes
the tool results, deterministic call ids and split argument fragments.

The decision depends only on the request (its ``tools``, its messages) and the
rules set on the simulator:

* the last message is a ``tool`` result and the rule's ``rounds`` are used up
  (or there is no rule): the final text, ``Based on NAME: <first 60 chars>``
  per trailing result (or the rule's ``then``, where ``{results}`` stands for it);
* otherwise, with ``tools`` in the request: the rule's calls, else the calls of
  the ``[[call:...]]`` directives in the last user message, else a normal reply.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .models import ModelSpec, normalize_name
from .replies import ScriptedReply

#: ``[[call:NAME {json}]]`` in the last user message (the JSON object is optional).
CALL_DIRECTIVE = re.compile(r"\[\[call:([A-Za-z_][\w.\-]*)")
#: Characters of each tool result quoted in the default final answer.
QUOTE_CHARS = 60
#: Message fields kept for tool turns (Ollama: ``tool_name``; OpenAI: ``tool_call_id``).
TOOL_FIELDS = ("tool_calls", "tool_name", "name", "tool_call_id")
#: Longest ``arguments`` fragment in an OpenAI streamed tool call.
FRAGMENT_CHARS = 8


class ToolScriptError(ValueError):
    """A ``[[call:...]]`` directive the simulator cannot parse."""


def ollama_call(call: dict[str, Any]) -> dict[str, Any]:
    """``{"name", "arguments"}`` (or Ollama's ``{"function": {...}}``) in Ollama's shape."""
    fn = call.get("function", call)
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise ValueError(f"a tool call needs a name: {call!r}")
    args = fn.get("arguments", {})
    return {"function": {"name": fn["name"], "arguments": {} if args is None else args}}


@dataclass(frozen=True)
class ToolScript:
    """A rule set with ``script_tools``: the calls a model makes, and what it answers
    once the results are back. ``rounds`` rounds of the same calls before answering."""

    calls: tuple[dict[str, Any], ...]
    then: str | None = None
    model: str | None = None
    text: str = ""
    rounds: int = 1

    @classmethod
    def build(cls, calls: Iterable[dict[str, Any]], *, then: str | None = None,
              model: str | None = None, text: str = "", rounds: int = 1) -> ToolScript:
        """Validate and normalise the arguments of ``script_tools``."""
        shaped = tuple(ollama_call(c) for c in calls)
        if not shaped:
            raise ValueError("script_tools needs at least one call")
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"rounds must be an integer >= 1, got {rounds!r}")
        return cls(shaped, then, normalize_name(model) if model else None, text, rounds)


def directive_calls(text: str) -> list[dict[str, Any]]:
    """The calls of every ``[[call:NAME {json}]]`` in ``text``; ToolScriptError if malformed."""
    calls = []
    decoder = json.JSONDecoder()
    for match in CALL_DIRECTIVE.finditer(text or ""):
        rest = text[match.end():].lstrip()
        args: Any = {}
        if rest.startswith("{"):
            try:
                args, end = decoder.raw_decode(rest)
            except json.JSONDecodeError as exc:
                raise ToolScriptError(f"[[call:{match.group(1)} ...]]: invalid JSON "
                                      f"arguments ({exc.msg})") from None
            rest = rest[end:].lstrip()
        if not isinstance(args, dict) or not rest.startswith("]]"):
            raise ToolScriptError(f"[[call:{match.group(1)} ...]] must be "
                                  "[[call:NAME]] or [[call:NAME {json object}]]")
        calls.append({"function": {"name": match.group(1), "arguments": args}})
    return calls


def _call_names(messages: Sequence[dict[str, Any]]) -> dict[str, str]:
    """OpenAI ``tool_call_id`` -> function name, from the assistant messages."""
    names = {}
    for msg in messages:
        for call in msg.get("tool_calls") or []:
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                names[str(call.get("id"))] = str(call["function"].get("name") or "tool")
    return names


def quote_results(messages: Sequence[dict[str, Any]]) -> str:
    """``Based on NAME: <first QUOTE_CHARS chars>`` for each trailing tool message."""
    tail = []
    for msg in reversed(messages):
        if msg.get("role") != "tool":
            break
        tail.append(msg)
    ids = _call_names(messages)
    parts = []
    for msg in reversed(tail):
        name = msg.get("tool_name") or msg.get("name") or ids.get(str(msg.get("tool_call_id")))
        parts.append(f"Based on {name or 'tool'}: {str(msg.get('content') or '')[:QUOTE_CHARS]}")
    return "\n".join(parts)


def _rounds_done(messages: Sequence[dict[str, Any]]) -> int:
    """Runs of ``tool`` messages after the last user message."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    runs, previous = 0, None
    for msg in messages[last_user + 1:]:
        if msg.get("role") == "tool" and previous != "tool":
            runs += 1
        previous = msg.get("role")
    return runs


def tool_turn(messages: Sequence[dict[str, Any]], tools: Any,
              rule: ToolScript | None) -> ScriptedReply | None:
    """The scripted reply for this turn, or None for a normal reply (see the module doc)."""
    last_is_tool = bool(messages) and messages[-1].get("role") == "tool"
    if last_is_tool and (rule is None or not tools or _rounds_done(messages) >= rule.rounds):
        quote = quote_results(messages)
        if rule is not None and rule.then is not None:
            return ScriptedReply(rule.then.replace("{results}", quote))
        return ScriptedReply(quote)
    if not tools:
        return None
    if rule is not None:
        return ScriptedReply(rule.text, None, rule.calls)
    last_user = next((m.get("content") or "" for m in reversed(messages)
                      if m.get("role") == "user"), "")
    calls = directive_calls(str(last_user))
    return ScriptedReply("", None, tuple(calls)) if calls else None


def registry_name(name: str) -> str:
    """The full name Ollama's errors use: ``llava`` -> ``registry.ollama.ai/library/llava:latest``."""
    full = normalize_name(name)
    parts = full.split("/")
    if len(parts) == 1:
        parts = ["library", *parts]
    if len(parts) == 2:
        parts = ["registry.ollama.ai", *parts]
    return "/".join(parts)


def unsupported_tools(spec: ModelSpec, name: str, tools: Any) -> str | None:
    """Ollama's error when ``tools`` are sent to a model without the capability."""
    if tools and not spec.has("tools"):
        return f"{registry_name(name)} does not support tools"
    return None


def call_id(model: str, messages: Sequence[dict[str, Any]], index: int) -> str:
    """A deterministic ``call_…`` id, distinct per conversation state and call."""
    chain = [[m.get("role"), m.get("content"), m.get("tool_call_id")] for m in messages]
    blob = json.dumps([model, chain, index], sort_keys=True, default=repr, ensure_ascii=False)
    return "call_" + hashlib.sha256(blob.encode()).hexdigest()[:24]


def split_arguments(arguments: str) -> list[str]:
    """``arguments`` in pieces of at most FRAGMENT_CHARS, at least two ("" pads)."""
    size = max(1, min(FRAGMENT_CHARS, -(-len(arguments) // 2)))
    pieces = [arguments[i:i + size] for i in range(0, len(arguments), size)]
    return pieces + [""] * (2 - len(pieces)) if len(pieces) < 2 else pieces
