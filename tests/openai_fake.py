"""A scripted OpenAI-compatible HTTP server on loopback, for faults a real server can't produce.

Each request takes the next reply from ``fake.script`` (default: the model list for
``/v1/models``, else a short streamed "Hi there." reply) and is recorded in ``fake.requests``
with its path, headers and JSON body.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

Reply = Callable[[asyncio.StreamWriter], Awaitable[bool]]  # True: keep the connection


def delta(content: str | None = None, *, reasoning: str | None = None,
          finish: str | None = None, **more: Any) -> dict[str, Any]:
    """One ``chat.completion.chunk`` event."""
    d: dict[str, Any] = dict(more)
    if content is not None:
        d["content"] = content
    if reasoning is not None:
        d["reasoning_content"] = reasoning
    return {"object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}


def respond(status: int, body: Any = None, *, ctype: str = "application/json",
            raw: bytes | None = None) -> Reply:
    """A whole reply with a Content-Length."""
    data = raw if raw is not None else json.dumps(body).encode()

    async def reply(writer: asyncio.StreamWriter) -> bool:
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        await writer.drain()
        return True

    return reply


def sse(*events: dict[str, Any] | str, done: bool = True, then: str = "close",
        gap: float = 0.0) -> Reply:
    """A streamed reply: dicts as ``data:`` events, strings written as they are; then
    'close' (end of body), 'abort' (connection reset) or 'stall' (no more data)."""

    async def reply(writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Connection: close\r\n\r\n")
        for event in events:
            line = event if isinstance(event, str) else f"data: {json.dumps(event)}\n\n"
            writer.write(line.encode())
            await writer.drain()
            if gap:
                await asyncio.sleep(gap)
        if done:
            writer.write(b"data: [DONE]\n\n")
        await writer.drain()
        if then == "abort":
            writer.transport.abort()
        elif then == "stall":
            await asyncio.sleep(3600)
        return False

    return reply


MODELS = {"object": "list", "data": [{"id": "qwen2.5-7b"}, {"id": "smollm2"}]}


def hello() -> Reply:
    return sse(delta("", role="assistant"), delta("Hi"), delta(" there."), delta(finish="stop"),
               USAGE)


class FakeServer:
    """``async with FakeServer() as fake``: ``fake.url`` is its ``/v1`` base URL."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> "FakeServer":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.root = f"http://127.0.0.1:{port}"
        self.url = f"{self.root}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method, path, _ = head[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip()
                           for k, _, v in (h.partition(":") for h in head[1:] if h)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                self.requests.append({"method": method, "path": path, "headers": headers,
                                      "json": json.loads(body) if body else None})
                if self.script:
                    reply = self.script.pop(0)
                else:
                    reply = respond(200, MODELS) if path.endswith("/models") else hello()
                if not await reply(writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
