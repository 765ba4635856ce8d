"""A streamed ``/chat/completions`` reply: server-sent events in, ``StreamChunk``s out.

Text comes from ``delta.content``; thinking from ``delta.reasoning_content`` (llama.cpp, vLLM,
DeepSeek) or ``delta.reasoning`` (Ollama's /v1, OpenRouter); tool calls are accumulated from
``delta.tool_calls`` fragments; usage from the last event (``stream_options.include_usage``),
with llama.cpp's ``timings`` when present. ``data: [DONE]`` ends the reply.
"""

from __future__ import annotations

import codecs
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ...core.backend import ToolCall
from ...core.errors import LLMError
from ...core.reply_stream import StreamChunk
from ..base import HttpReplyStream
from .transport import OpenAITransport, error_message

logger = logging.getLogger("gleitzeit_nb.providers.openai")

PATH = "/chat/completions"
_SSE_FIELDS = ("event:", "id:", "retry:")
_DONE = object()  # what _line returns for `data: [DONE]`


class CompletionStream(HttpReplyStream):
    """A reply from ``/chat/completions`` (see :class:`~gleitzeit_nb.core.ReplyStream`)."""

    path = PATH
    not_a_stream = ("text/html", "image/", "application/xml", "application/octet")

    def __init__(self, transport: OpenAITransport, body: dict[str, Any], *, model: str) -> None:
        super().__init__(transport, body, model=model)
        self._calls: dict[int, list[Any]] = {}  # index -> [id, name, argument fragments]
        self._finished = False  # a finish_reason arrived
        self._json_reply = False  # the server ignored stream=true and sent one JSON reply

    def _connected(self, content_type: str) -> None:
        self._json_reply = content_type == "application/json"

    # -- reading -------------------------------------------------------------------------------
    async def _read(self) -> AsyncIterator[StreamChunk]:
        response = await self._begin()
        if response is None:
            return
        # Decode each read once; the incremental decoder keeps a UTF-8 sequence split across
        # two reads intact.
        decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        line_of = self._line
        pending = ""
        reads = response.aiter_bytes()
        try:
            if self._json_reply:
                async for data in reads:
                    pending += decode(data)
                yield self._whole_reply(pending)
                return
            async for data in reads:
                text = decode(data)
                lines = (pending + text if pending else text).split("\n")
                pending = lines.pop()
                for line in lines:
                    chunk = line_of(line)
                    if chunk is None:
                        continue
                    if chunk is _DONE:
                        yield self._end()
                        async for _ in reads:  # the body's end: lets the connection be reused
                            pass
                        return
                    yield chunk  # type: ignore[misc]
            chunk = line_of(pending) if pending.strip() else None
            if chunk is not None and chunk is not _DONE:
                yield chunk  # type: ignore[misc]
            if chunk is _DONE or self._finished:  # some servers end without [DONE]
                yield self._end()
                return
            raise self._error("closed the stream before the reply was complete")
        except httpx.TransportError as exc:
            raise self._broken(exc) from None
        finally:
            # Leaving early (done, error, cancel) must close httpx's generator here, or it is
            # finalised later on a loop that may never run again; closing stops the server.
            await reads.aclose()  # type: ignore[attr-defined]
            await response.aclose()

    def _line(self, line: str) -> Any:
        """One SSE line: a chunk to yield, None to skip, or _DONE."""
        if not line.startswith("data:"):
            stripped = line.strip()
            if not stripped or stripped[0] == ":" or stripped.startswith(_SSE_FIELDS):
                return None  # blank line (event end), comment, other SSE fields
            raise self._malformed(line)
        payload = line[5:].strip()
        if payload == "[DONE]":
            return _DONE
        try:
            obj = json.loads(payload)
        except ValueError:
            obj = None
        if type(obj) is not dict:
            raise self._malformed(line)
        if obj.get("error"):
            what = self._transport.scrub(error_message(obj))
            raise self._error(f"reported an error mid-stream: {what}")
        self.chunks += 1
        if obj.get("usage") or obj.get("timings"):
            self._take_usage(obj)
        choices = obj.get("choices")
        if not choices:
            return None
        choice = choices[0]
        delta = choice.get("delta") or {}
        if delta.get("tool_calls"):
            self._add_tool_calls(delta["tool_calls"])
        if choice.get("finish_reason"):
            self._finished = True
            self.usage.finish_reason = choice["finish_reason"]
        content = delta.get("content") or ""
        thinking = delta.get("reasoning_content") or delta.get("reasoning") or ""
        if not (content or thinking):
            return None
        if content:
            self._parts.append(content)
        if thinking:
            self._thinking_parts.append(thinking)
        return StreamChunk(content, thinking)

    def _take_usage(self, obj: dict[str, Any]) -> None:
        usage, timings, u = obj.get("usage"), obj.get("timings"), self.usage
        if isinstance(usage, dict):
            u.input_tokens = usage.get("prompt_tokens", u.input_tokens)
            u.output_tokens = usage.get("completion_tokens", u.output_tokens)
        if isinstance(timings, dict):  # llama.cpp, milliseconds
            if isinstance(timings.get("prompt_ms"), (int, float)):
                u.prompt_seconds = timings["prompt_ms"] / 1000
            if isinstance(timings.get("predicted_ms"), (int, float)):
                u.generation_seconds = timings["predicted_ms"] / 1000

    def _add_tool_calls(self, deltas: list[dict[str, Any]]) -> None:
        for delta in deltas:
            slot = self._calls.setdefault(delta.get("index", len(self._calls)), [None, "", []])
            slot[0] = delta.get("id") or slot[0]
            function = delta.get("function") or {}
            name = function.get("name")
            if name and name != slot[1]:  # most servers send the name once, a few repeat it
                slot[1] += name
            if function.get("arguments") is not None:
                slot[2].append(function["arguments"])

    def _end(self) -> StreamChunk:
        self.done = True
        self.tool_calls = [_tool_call(*slot) for _, slot in sorted(self._calls.items())]
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("chat %s done: %s tokens in %.3fs (%s)", self.model,
                         self.usage.output_tokens, time.perf_counter() - self.started_at,
                         self.usage.finish_reason)
        return StreamChunk("", "", True, self.usage, self.tool_calls or None)

    def _whole_reply(self, text: str) -> StreamChunk:
        """A server that ignored ``stream: true``: one chat completion object."""
        try:
            obj = json.loads(text)
            choice = obj["choices"][0]
            message = choice["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise self._transport.not_json_error(PATH, text.encode()[:120]) from None
        content = message.get("content") or ""
        thinking = message.get("reasoning_content") or message.get("reasoning") or ""
        self._parts.append(content)
        self._thinking_parts.append(thinking)
        self._take_usage(obj)
        self.usage.finish_reason = choice.get("finish_reason")
        for i, call in enumerate(message.get("tool_calls") or []):
            self._add_tool_calls([{"index": i, **call}])
        self.chunks = 1
        end = self._end()
        end.content, end.thinking = content, thinking
        return end

    # -- errors --------------------------------------------------------------------------------
    def _malformed(self, line: str) -> LLMError:
        if self.chunks == 0 and not self._parts:  # not SSE at all: the wrong kind of server
            return self._transport.not_json_error(PATH, line.encode()[:120])
        return self._error(f"sent a malformed line: {line[:80]!r}")



def _tool_call(call_id: str | None, name: str, fragments: list[Any]) -> ToolCall:
    if len(fragments) == 1 and not isinstance(fragments[0], str):  # already an object
        return ToolCall(name=name, arguments=fragments[0], id=call_id)
    # decoded JSON; text that does not parse stays as sent, with arguments_error set
    return ToolCall.parsed(name, "".join(str(f) for f in fragments), call_id)
