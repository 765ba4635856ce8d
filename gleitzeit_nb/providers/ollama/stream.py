"""A streamed Ollama reply: NDJSON lines in, ``StreamChunk``s out, errors mapped, response closed."""

from __future__ import annotations

import codecs
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ...core.backend import ToolCall, Usage
from ...core.reply_stream import StreamChunk
from ..base import HttpReplyStream

logger = logging.getLogger("gleitzeit_nb.providers.ollama")

_DECODER = json.JSONDecoder()


def usage_of(obj: dict[str, Any], server: str | None = None) -> Usage:
    """Ollama's final-line stats as neutral :class:`Usage` (durations are nanoseconds)."""

    def seconds(key: str) -> float | None:
        value = obj.get(key)
        return value / 1e9 if isinstance(value, (int, float)) else None

    return Usage(input_tokens=obj.get("prompt_eval_count"), output_tokens=obj.get("eval_count"),
                 finish_reason=obj.get("done_reason"), load_seconds=seconds("load_duration"),
                 prompt_seconds=seconds("prompt_eval_duration"),
                 generation_seconds=seconds("eval_duration"),
                 total_seconds=seconds("total_duration"), server=server)


class ChatStream(HttpReplyStream):
    """A reply from ``/api/chat`` (see :class:`~gleitzeit_nb.core.reply_stream.ReplyStream`)."""

    path = "/api/chat"
    log_hint = "the server log (`ollama serve`)"

    # -- reading -------------------------------------------------------------------------------
    async def _read(self) -> AsyncIterator[StreamChunk]:
        response = await self._begin()
        if response is None:
            return
        parts, thinking_parts = self._parts, self._thinking_parts
        raw_decode = _DECODER.raw_decode  # json.loads minus its wrapper: ~0.5 µs a line less
        # Decode each read once (json.loads on bytes re-detects the encoding per line); the
        # incremental decoder keeps a UTF-8 sequence split across two reads intact.
        decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        pending = ""
        reads = response.aiter_bytes()
        try:
            async for data in reads:
                text = decode(data)
                lines = (pending + text if pending else text).split("\n")
                pending = lines.pop()
                for line in lines:
                    try:
                        obj, end = raw_decode(line)
                        if end != len(line) and line[end:].strip():
                            obj = None  # trailing garbage after the object
                    except ValueError:
                        if not line.strip():
                            continue
                        obj = _loads_or_none(line)
                    if type(obj) is not dict:
                        raise self._error(f"sent a malformed line: {line[:80]!r}")
                    if "error" in obj:
                        raise self._error(f"reported an error mid-stream: {obj['error']}")
                    message = obj.get("message") or {}
                    content = message.get("content") or ""
                    thinking = message.get("thinking") or ""
                    if content:
                        parts.append(content)
                    if thinking:
                        thinking_parts.append(thinking)
                    calls = _tool_calls(message.get("tool_calls")) if "tool_calls" in message \
                        else None
                    if calls:
                        self.tool_calls.extend(calls)
                    self.chunks += 1
                    if obj.get("done"):
                        self.done = True
                        self.usage = usage_of(obj, self.usage.server)
                        self._log_end()
                        yield StreamChunk(content, thinking, True, self.usage, calls)
                        async for _ in reads:  # the body's end: lets the connection be reused
                            pass
                        return
                    yield StreamChunk(content, thinking, tool_calls=calls)
            if pending.strip():
                raise self._error(f"sent an incomplete last line: {pending[:80]!r}")
            raise self._error("closed the stream before the reply was complete")
        except httpx.TransportError as exc:
            raise self._broken(exc) from None
        finally:
            # Leaving the loop early (done, error, cancel) must close httpx's generator here, or
            # it is finalised later on a loop that may never run again.
            await reads.aclose()  # type: ignore[attr-defined]
            await response.aclose()

    def _log_end(self) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("chat %s done: %s tokens in %.3fs (%s)", self.model,
                         self.usage.output_tokens, time.perf_counter() - self.started_at,
                         self.usage.finish_reason)


def _tool_calls(raw: Any) -> list[ToolCall] | None:
    """``message.tool_calls``: ``[{"id"?, "function": {"index"?, "name", "arguments": {...}}}]``
    (whole calls; arguments arrive as an object, as text on a few builds)."""
    if not isinstance(raw, list):
        return None
    return [ToolCall.of(c) for c in raw if isinstance(c, dict)] or None


def _loads_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None
