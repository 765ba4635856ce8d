"""A streamed chat reply: NDJSON lines in, ``StreamChunk``s out, errors mapped, response closed."""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from ...core.errors import ProviderTimeoutError, StreamError
from .transport import OllamaTransport

logger = logging.getLogger("gleitzeit_nb.providers.ollama")

_DECODER = json.JSONDecoder()
STAT_KEYS = ("done_reason", "total_duration", "load_duration", "prompt_eval_count",
             "prompt_eval_duration", "eval_count", "eval_duration")


@dataclass(slots=True)
class StreamChunk:
    """One piece of a reply: text and thinking deltas; the last has ``done`` and ``stats``."""

    content: str = ""
    thinking: str = ""
    done: bool = False
    stats: dict[str, Any] | None = None


class ChatStream:
    """Async iterator over a reply's chunks.

    ``await provider.stream_request(…)`` connects first, so connection, HTTP and model errors
    raise at the call site; ``async for`` without ``await`` connects on the first step.
    ``aclose()``, ``async with`` or cancelling the task closes the HTTP response at once, and
    leaving the loop early closes it on the loop's next turns; Ollama then stops generating.
    A stream is read once: ``text`` and ``thinking`` hold what arrived so far.
    """

    def __init__(self, transport: OllamaTransport, body: dict[str, Any], *, model: str) -> None:
        self._transport = transport
        self._body = body
        self.model = model
        self._response: httpx.Response | None = None
        # Only `__anext__` keeps its generator; an `async for` loop's generator is owned by the
        # loop, so leaving the loop drops it and asyncio closes it (and the response) on the
        # loop's next turns.
        self._gen: AsyncIterator[StreamChunk] | None = None
        self._loop_gen: weakref.ref[Any] | None = None
        self._reading = False  # a generator has started reading the body (only one ever may)
        self._parts: list[str] = []
        self._thinking_parts: list[str] = []
        self.chunks = 0
        self.done = False
        self.stats: dict[str, Any] = {}
        self.started_at = time.perf_counter()
        self.first_chunk_at: float | None = None

    # -- public --------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def thinking(self) -> str:
        return "".join(self._thinking_parts)

    async def start(self) -> "ChatStream":
        """Send the request and wait for the response to begin (idempotent)."""
        if self._response is None:
            self._response = await self._transport.open("POST", "/api/chat", self._body,
                                                        model=self.model)
        return self

    def __await__(self):
        return self.start().__await__()

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        # `async for` drives the generator itself: one async layer per chunk, not two.
        gen = self._live_gen()
        if gen is None:
            gen = self._chunks()
            self._loop_gen = weakref.ref(gen)
        return gen

    async def __anext__(self) -> StreamChunk:
        if self._gen is None:
            self._gen = self.__aiter__()
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        """Stop reading and close the connection; the text so far stays in ``text``."""
        gen = self._live_gen()
        self._gen = self._loop_gen = None  # iterating again says the stream was closed
        if gen is not None:
            await gen.aclose()
        if self._response is not None:
            await self._response.aclose()

    def _live_gen(self) -> Any:
        if self._gen is not None:
            return self._gen
        return self._loop_gen() if self._loop_gen is not None else None

    async def __aenter__(self) -> "ChatStream":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def collect(self) -> "ChatStream":
        """Read the stream to its end."""
        async for _ in self.__aiter__():
            pass
        return self

    def __del__(self) -> None:
        # Connected but never iterated nor closed: close in the background rather than leak.
        response = self._response
        if response is not None and self._loop_gen is None and not response.is_closed:
            try:
                asyncio.get_running_loop().create_task(response.aclose())
            except RuntimeError:
                pass

    # -- reading -------------------------------------------------------------------------------
    async def _chunks(self) -> AsyncIterator[StreamChunk]:
        response = (await self.start())._response
        assert response is not None
        if self._reading or response.is_closed:  # again after the end, a break, or aclose()
            if self.done:
                return
            raise StreamError(
                f"The stream of this reply from '{self.model}' was closed after {self.chunks} "
                "chunks; the text so far is in .text. Send the request again for a new stream.",
                partial=self.text, partial_thinking=self.thinking, url=self._transport.base_url)
        self._reading = True
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
                    self.chunks += 1
                    if self.first_chunk_at is None:
                        self.first_chunk_at = time.perf_counter()
                    if obj.get("done"):
                        self.done = True
                        self.stats = {k: obj.get(k) for k in STAT_KEYS}
                        self.stats["model"] = obj.get("model", self.model)
                        self._log_end()
                        yield StreamChunk(content, thinking, True, self.stats)
                        async for _ in reads:  # the body's end: lets the connection be reused
                            pass
                        return
                    yield StreamChunk(content, thinking)
            if pending.strip():
                raise self._error(f"sent an incomplete last line: {pending[:80]!r}")
            raise self._error("closed the stream before the reply was complete")
        except httpx.ReadTimeout:
            raise ProviderTimeoutError(
                self._transport._timeout_error("chunk", "/api/chat", chunks=self.chunks).message,
                phase="chunk", url=self._transport.base_url, partial=self.text) from None
        except httpx.TransportError as exc:
            logger.debug("stream from %s broke: %r", self._transport.base_url, exc)
            raise self._error("dropped the connection") from None
        finally:
            # Leaving the loop early (done, error, cancel) must close httpx's generator here, or
            # it is finalised later on a loop that may never run again.
            await reads.aclose()  # type: ignore[attr-defined]
            await response.aclose()

    def _error(self, what: str) -> StreamError:
        got = f"{len(self.text)} characters" if self._parts else "no text"
        return StreamError(
            f"Ollama at {self._transport.base_url} {what} after {self.chunks} chunks of a reply "
            f"from '{self.model}' ({got} kept in .partial). Retry the request; if it keeps "
            "failing, the server log (`ollama serve`) says why.",
            partial=self.text, partial_thinking=self.thinking, url=self._transport.base_url)

    def _log_end(self) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("chat %s done: %s tokens in %.3fs (%s)", self.model,
                         self.stats.get("eval_count"), time.perf_counter() - self.started_at,
                         self.stats.get("done_reason"))


def _loads_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None
