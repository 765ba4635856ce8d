"""What every HTTP backend shares: ``HttpProvider`` (pool, health, logging) and
``HttpReplyStream`` (connecting, closing and mapping a broken stream to our errors)."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from ..core.errors import LLMError, ProviderTimeoutError, StreamError
from ..core.provider import BackendProvider
from ..core.reply_stream import ReplyStream
from .describe import cap_first
from .http import HttpTransport


class HttpProvider(BackendProvider):
    """A ``BackendProvider`` talking to its server through ``_transport``.

    A subclass sets ``_transport``, ``health_path`` (a cheap GET that only the right kind of
    server answers) and ``_health`` (the facts worth logging from its reply).
    """

    _transport: HttpTransport
    health_path = ""
    logger = logging.getLogger("gleitzeit_nb.providers")

    def _health(self, data: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def initialize(self) -> None:
        """Open the pool and log whether the server answers (an absent server is not fatal)."""
        status = await self.health_check()
        if status["healthy"]:
            facts = ", ".join(f"{k} {v}" for k, v in status.items()
                              if k not in ("healthy", "url"))
            self.logger.info("%s answers%s", self._transport.server,
                             f" ({facts})" if facts else "")
        else:
            self.logger.warning("%s not reachable: %s", self._transport.server, status["error"])
        await super().initialize()

    async def shutdown(self) -> None:
        await self._transport.aclose()
        await super().shutdown()

    async def health_check(self) -> dict[str, Any]:
        try:
            data = await self._transport.request_json("GET", self.health_path, retry=False)
        except LLMError as exc:
            return {"healthy": False, "url": self.base_url, "error": str(exc)}
        return {"healthy": True, "url": self.base_url, **self._health(data)}


class HttpReplyStream(ReplyStream):
    """A reply streamed over HTTP from ``path``; a subclass writes ``_read`` (the body format)
    and names where the server's log is (``log_hint``) for the error messages."""

    path = ""
    log_hint = "the server's log"
    #: Content types that are no stream at all (a web page…): said before reading further.
    not_a_stream: tuple[str, ...] = ("text/html",)

    def __init__(self, transport: HttpTransport, body: dict[str, Any], *, model: str) -> None:
        super().__init__(model=model, url=transport.base_url)
        self._transport = transport
        self._body = body

    async def _connect(self) -> httpx.Response:
        response = await self._transport.open("POST", self.path, self._body, model=self.model)
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype.startswith(self.not_a_stream):
            head = b""
            try:
                async for head in response.aiter_bytes():
                    break
            except httpx.HTTPError:
                pass
            await response.aclose()
            raise self._transport.not_json_error(self.path, head)
        self._connected(ctype)
        self.usage.server = self._transport.software_of(response)
        return response

    def _connected(self, content_type: str) -> None:
        """After the headers: a subclass may note the content type."""

    def _broken(self, exc: httpx.TransportError) -> LLMError:
        """Our error for a stream that broke off: a stall (chunk timeout) or a lost connection."""
        if isinstance(exc, httpx.ReadTimeout):
            return ProviderTimeoutError(
                self._transport.timeout_error("chunk", self.path, chunks=self.chunks).message,
                phase="chunk", url=self._transport.base_url, partial=self.text)
        self._transport.logger.debug("stream from %s broke: %r", self._transport.base_url, exc)
        return self._error("dropped the connection")

    def _error(self, what: str) -> StreamError:
        got = f"{len(self.text)} characters" if self._parts else "no text"
        return StreamError(
            f"{cap_first(self._transport.server)} {what} after {self.chunks} chunks of a reply "
            f"from '{self.model}' ({got} kept in .partial). Retry the request; if it keeps "
            f"failing, {self.log_hint} says why.",
            partial=self.text, partial_thinking=self.thinking, url=self._transport.base_url)
