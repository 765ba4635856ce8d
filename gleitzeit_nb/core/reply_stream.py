"""``ReplyStream``: a streamed reply's lifecycle, shared by every backend.

A backend subclasses it with two pieces: ``_connect`` (send the request, wait for the response
to begin; the response has ``aclose()`` and ``is_closed``, as httpx's does) and ``_read`` (one
async generator turning the body into :class:`StreamChunk`s and appending to ``_parts`` /
``_thinking_parts``). Everything a caller
touches (awaiting, iterating, closing, ``text``) lives here, so it behaves the same on every API.
"""

from __future__ import annotations

import abc
import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import StreamError

if TYPE_CHECKING:  # pragma: no cover
    from .backend import ToolCall, Usage


@dataclass(slots=True)
class StreamChunk:
    """One piece of a reply: text and thinking deltas, the tool calls that arrived complete in
    it (all of them on the last chunk of an OpenAI-compatible stream, where they are assembled
    from fragments; ``ReplyStream.tool_calls`` has every call); the last chunk has ``done``."""

    content: str = ""
    thinking: str = ""
    done: bool = False
    usage: "Usage | None" = None
    tool_calls: "list[ToolCall] | None" = field(default=None)


class ReplyStream(abc.ABC):
    """Async iterator over a reply's chunks.

    ``await backend.stream_chat(…)`` connects first, so connection, HTTP and model errors raise
    at the call site; ``async for`` without ``await`` connects on the first step. ``aclose()``,
    ``async with`` or cancelling the task closes the connection at once, and leaving the loop
    early closes it on the loop's next turns; the server then stops generating. A stream is read
    once: ``text`` and ``thinking`` hold what arrived so far, ``usage`` what the server reported.
    """

    def __init__(self, *, model: str, url: str) -> None:
        from .backend import Usage

        self.model = model
        self.url = url
        self._response: Any = None
        # Only `__anext__` keeps its generator; an `async for` loop's generator is owned by the
        # loop, so leaving the loop drops it and asyncio closes it (and the response) on the
        # loop's next turns.
        self._gen: AsyncIterator[StreamChunk] | None = None
        self._loop_gen: weakref.ref[Any] | None = None
        self._reading = False  # a generator has started reading the body (only one ever may)
        self._parts: list[str] = []
        self._thinking_parts: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self.chunks = 0
        self.done = False
        self.usage: Usage = Usage()
        self.started_at = time.perf_counter()

    # -- what a backend provides ---------------------------------------------------------------
    @abc.abstractmethod
    async def _connect(self) -> Any:
        """Send the request; return the response once it began (errors mapped)."""

    @abc.abstractmethod
    def _read(self) -> AsyncIterator[StreamChunk]:
        """The body as chunks; starts with ``response = await self._begin()`` (None: done)."""

    async def _close_response(self) -> None:
        """Close the connection (idempotent)."""
        await self._response.aclose()

    def _response_closed(self) -> bool:
        """Whether the response's connection is closed."""
        return bool(self._response.is_closed)

    # -- public --------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def thinking(self) -> str:
        return "".join(self._thinking_parts)

    async def start(self) -> "ReplyStream":
        """Send the request and wait for the response to begin (idempotent)."""
        if self._response is None:
            self._response = await self._connect()
        return self

    def __await__(self) -> Generator[Any, None, "ReplyStream"]:
        return self.start().__await__()

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        # `async for` drives the backend's generator itself: one async layer per chunk.
        gen = self._live_gen()
        if gen is None:
            gen = self._read()
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
            await gen.aclose()  # type: ignore[attr-defined]
        if self._response is not None:
            await self._close_response()

    async def __aenter__(self) -> "ReplyStream":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def collect(self) -> "ReplyStream":
        """Read the stream to its end."""
        async for _ in self.__aiter__():
            pass
        return self

    def __del__(self) -> None:
        # Connected but never iterated nor closed: close in the background rather than leak.
        if self._response is not None and self._loop_gen is None and not self._response_closed():
            try:
                asyncio.get_running_loop().create_task(self._close_response())
            except RuntimeError:
                pass

    # -- for backends --------------------------------------------------------------------------
    async def _begin(self) -> Any:
        """Connect if needed and claim the body; None when the stream already ended."""
        await self.start()
        if self._reading or self._response_closed():  # again after the end, a break, aclose()
            if self.done:
                return None
            raise StreamError(
                f"The stream of this reply from '{self.model}' was closed after {self.chunks} "
                "chunks; the text so far is in .text. Send the request again for a new stream.",
                partial=self.text, partial_thinking=self.thinking, url=self.url)
        self._reading = True
        return self._response

    def _live_gen(self) -> Any:
        if self._gen is not None:
            return self._gen
        return self._loop_gen() if self._loop_gen is not None else None
