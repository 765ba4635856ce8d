"""HTTP to one inference server, for any API: pooled client per event loop, split timeouts,
retries before output, and every failure mapped into the error hierarchy.

Timeouts are split in phases. ``connect`` is short. ``first_byte`` covers the wait for the
response to start, which includes model load (servers send no headers before the first token).
``chunk`` bounds each later wait for data. Retries happen only before a response has started.

An API subclasses :class:`HttpTransport` and sets what differs: the server's display name, the
"start it / point at it" hints, how its error bodies read, status hints and which errors mean a
missing model (:meth:`HttpTransport._special_error`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import urllib.parse
import weakref
from dataclasses import dataclass
from typing import Any

import httpx

from ..core.secret import Secret, as_secret

from ..core.errors import (
    RETRYABLE_STATUS,
    LLMError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from .describe import body_text, cap_first, looks_like_html, reason
from .proxies import PROXY_VARS, Proxy, is_loopback, proxy_for, proxy_in_env, unusable_proxy

__all__ = ["HttpTransport", "Timeouts", "RetryPolicy", "Secret", "PROXY_VARS", "is_loopback",
           "proxy_in_env", "body_text", "looks_like_html", "cap_first", "reason"]


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed for each phase of a request (None: no limit, not recommended)."""

    connect: float = 5.0
    first_byte: float = 120.0
    chunk: float = 60.0
    write: float = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for transient failures before the first byte."""

    retries: int = 2
    backoff: float = 0.25
    max_backoff: float = 8.0

    def delay(self, attempt: int) -> float:
        base = min(self.max_backoff, self.backoff * 2 ** attempt)
        return base * (0.5 + random.random())  # full jitter around the base


class HttpTransport:
    """Sends requests to ``base_url`` and turns every failure into the error hierarchy."""

    #: How messages name the server ("Ollama", "the OpenAI-compatible server").
    server_name = "the server"
    #: Idle connections kept for reuse.
    keepalive = 16
    #: How to start the server or point at it (after "Could not reach … at URL (reason).").
    start_hint = "Start the server, or set base_url= to where it runs."
    #: After a connection broke while reading a non-streamed reply.
    running_hint = "Check that the server is still running."
    #: After a 200 reply that is not a JSON object.
    not_json_hint = "Is base_url pointing at the right server?"
    #: After a first-byte timeout.
    first_byte_hint = "The model may still be loading: raise the limit with timeout=."
    #: After a stream stalled.
    stall_hint = "Raise the limit with chunk_timeout=, or check the server."
    status_hints: dict[int, str] = {
        400: "Check the request's parameters.",
        429: "The server is busy; lower the concurrency or wait.",
    }
    default_status_hint = "The server is overloaded, restarting, or behind a proxy that failed."

    def __init__(self, base_url: str, timeouts: Timeouts, retry: RetryPolicy,
                 headers: dict[str, str] | None = None, *, api_key: str | Secret | None = None,
                 logger: logging.Logger | None = None, **client_kwargs: Any) -> None:
        self.base_url = base_url.rstrip("/")
        # In a Secret, so vars(), reprs and tracebacks' locals never show it.
        self._api_key = as_secret(api_key)
        self.timeouts = timeouts
        self.retry = retry
        self.headers = headers or {}
        self.client_kwargs = client_kwargs
        self.logger = logger or logging.getLogger("gleitzeit_nb.providers")
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    #: Server software by its ``Server`` header, as reply footers name it.
    SOFTWARE = {"llama.cpp": "llama.cpp", "ollamasimulator": "simulator", "vllm": "vLLM",
                "lm studio": "LM Studio"}
    #: What a server without a known ``Server`` header is called.
    software = "server"

    def software_of(self, response: httpx.Response) -> str:
        """The server software that sent ``response`` (for the reply's footer)."""
        header = response.headers.get("server", "").lower()
        return next((name for key, name in self.SOFTWARE.items() if key in header),
                    self.software)

    @property
    def server(self) -> str:
        """``"Ollama at URL"``: how messages name this server."""
        return f"{self.server_name} at {self.base_url}"

    # -- clients -------------------------------------------------------------------------------
    def _client_headers(self) -> dict[str, str]:
        # httpx drops Authorization on a redirect to another host, and follows none by default.
        headers = dict(self.headers)
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.reveal()}"
        return headers

    def client(self) -> httpx.AsyncClient:
        """The pooled client of the running event loop (one per loop: clients can't move)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            settings: dict[str, Any] = {
                "base_url": self.base_url,
                "headers": self._client_headers(),
                # A loopback server never goes through HTTP(S)_PROXY (the classic 502 on 127.0.0.1).
                "trust_env": not is_loopback(self.base_url),
                "limits": httpx.Limits(max_connections=64,
                                       max_keepalive_connections=self.keepalive),
            }
            try:
                client = httpx.AsyncClient(**{**settings, **self.client_kwargs})  # caller's win
            except (ImportError, ValueError) as exc:  # a SOCKS proxy without socksio…
                error = unusable_proxy(exc, self.client_kwargs, self.server)
                if error is None:
                    raise
                raise error from None
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close this loop's client; clients of other (closed) loops are dropped."""
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        self._clients.clear()
        if client is not None:
            await client.aclose()

    def _timeout(self) -> httpx.Timeout:
        t = self.timeouts
        # `read` here is the wait for headers; streaming switches it to `chunk` once they arrive.
        return httpx.Timeout(connect=t.connect, read=t.first_byte, write=t.write, pool=t.first_byte)

    # -- requests ------------------------------------------------------------------------------
    async def request_json(self, method: str, path: str, body: dict[str, Any] | None = None,
                           *, model: str | None = None, retry: bool = True) -> dict[str, Any]:
        """A non-streaming request; returns the decoded JSON object."""
        response = await self.open(method, path, body, model=model, retry=retry)
        try:
            data = await response.aread()
        except httpx.TimeoutException as exc:
            raise self.timeout_error("first_byte", path) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailableError(
                f"The connection to {self.server} broke while reading {path}: {exc}. "
                f"{self.running_hint}", url=self.base_url) from exc
        finally:
            await response.aclose()
        try:
            decoded = json.loads(data)
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            raise self.not_json_error(path, data, response.status_code)
        return decoded

    def not_json_error(self, path: str, data: bytes, status: int = 200) -> ProviderResponseError:
        shown = body_text(data) if looks_like_html(data) else repr(data[:120])
        return ProviderResponseError(
            f"{cap_first(self.server)} sent a reply to {path} that is not a JSON object: "
            f"{self.scrub(shown)}. {self.not_json_hint}", status_code=status,
            url=self.base_url)

    async def open(self, method: str, path: str, body: dict[str, Any] | None = None,
                   *, model: str | None = None, retry: bool = True) -> httpx.Response:
        """Send a request and return the response once its headers arrived (status 2xx).

        Transient failures are retried with backoff; the body is left unread for the caller.
        """
        client = self.client()
        attempt = 0
        retries = self.retry.retries if retry else 0
        while True:
            started = time.perf_counter()
            try:
                request = client.build_request(method, path, json=body, timeout=self._timeout())
                response = await client.send(request, stream=True)
                if response.status_code >= 400:
                    raise await self._status_error(response, path, model, tries=attempt + 1)
                if response.is_redirect:  # not followed (httpx's default): say where it points
                    await response.aclose()
                    raise ProviderResponseError(
                        f"{cap_first(self.server)} redirected {path} to "
                        f"{response.headers['location']}. Set base_url to where the server is "
                        "now.", status_code=response.status_code, url=self.base_url)
                # httpcore reads the body's read timeout when the body starts, so this bounds
                # every later wait for data at no per-chunk cost.
                request.extensions["timeout"]["read"] = self.timeouts.chunk
                self.logger.debug("%s %s -> %d in %.3fs", method, path, response.status_code,
                                  time.perf_counter() - started)
                return response
            except LLMError as exc:
                if not exc.retryable or attempt >= retries:
                    raise
                error = exc
            except httpx.HTTPError as exc:
                error = self._transport_error(exc, path)
                if not error.retryable or attempt >= retries:
                    raise error from exc
            delay = self.retry.delay(attempt)
            attempt += 1
            self.logger.warning("%s %s failed (%s); retry %d/%d in %.2fs", method, path,
                                error.message.split(". ")[0], attempt, retries, delay)
            await asyncio.sleep(delay)

    # -- error mapping -------------------------------------------------------------------------
    def _transport_error(self, exc: httpx.HTTPError, path: str) -> LLMError:
        proxy = self.proxy()
        if proxy is not None and isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout,
                                                  httpx.ProxyError)):
            return self._proxy_error(exc, proxy)
        if isinstance(exc, httpx.ConnectTimeout):
            err: LLMError = ProviderTimeoutError(
                f"Connecting to {self.server} timed out after {self.timeouts.connect} s. "
                f"{self.start_hint}", phase="connect", url=self.base_url)
            err.retryable = True
            return err
        if isinstance(exc, httpx.PoolTimeout):
            return ProviderTimeoutError(
                f"No free connection to {self.base_url} within {self.timeouts.first_byte} s: too "
                "many requests at once. Lower the concurrency.", phase="pool", url=self.base_url)
        if isinstance(exc, httpx.TimeoutException):
            phase = "write" if isinstance(exc, httpx.WriteTimeout) else "first_byte"
            return self.timeout_error(phase, path)
        return ProviderUnavailableError(
            f"Could not reach {self.server} ({reason(exc)}). {self.start_hint}",
            url=self.base_url)

    def proxy(self) -> Proxy | None:
        """The proxy requests to this server go through (from the environment or proxy=)."""
        return proxy_for(self.base_url, self.client_kwargs)

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.base_url).hostname or self.base_url

    def _proxy_error(self, exc: httpx.HTTPError, proxy: Proxy) -> LLMError:
        """Connecting through ``proxy`` failed: the proxy is unreachable, or refused to open a
        tunnel (an https server: httpx raises ProxyError with the proxy's status)."""
        if isinstance(exc, httpx.ProxyError):
            status = int(str(exc)[:3]) if str(exc)[:3].isdigit() else None
            err: LLMError = ProviderUnavailableError(
                f"{cap_first(str(proxy))} refused to connect to {self.server}: {exc}. "
                f"{proxy.fix(self.host, status)}", url=self.base_url)
            err.retryable = status in RETRYABLE_STATUS
            return err
        if isinstance(exc, httpx.ConnectTimeout):
            err = ProviderTimeoutError(
                f"Connecting to {proxy} for {self.server} timed out after "
                f"{self.timeouts.connect} s. {proxy.fix(self.host)}", phase="connect",
                url=self.base_url)
            err.retryable = True
            return err
        return ProviderUnavailableError(
            f"Could not reach {proxy} for {self.server} ({reason(exc)}). "
            f"{proxy.fix(self.host)}", url=self.base_url)

    def timeout_error(self, phase: str, path: str, *, chunks: int = 0,
                      partial: str = "") -> ProviderTimeoutError:
        """The error for a timeout in ``phase`` ('first_byte', 'chunk' or 'write')."""
        t = self.timeouts
        if phase == "first_byte":
            msg = (f"{cap_first(self.server)} sent no response to {path} within {t.first_byte} s "
                   f"(model load and prompt evaluation). {self.first_byte_hint}")
        elif phase == "chunk":
            msg = (f"The stream from {self.server} stalled: no data for {t.chunk} s "
                   f"after {chunks} chunks. {self.stall_hint}")
        else:
            msg = (f"Sending the request to {self.base_url}{path} timed out after {t.write} s. "
                   "The request body may be very large (images?).")
        return ProviderTimeoutError(msg, phase=phase, url=self.base_url, partial=partial)

    async def _status_error(self, response: httpx.Response, path: str, model: str | None,
                            *, tries: int = 1) -> LLMError:
        try:
            raw = await response.aread()
        except httpx.HTTPError:
            raw = b""
        finally:
            await response.aclose()
        server_error = self.error_text(raw)
        status = response.status_code
        special = await self._special_error(status, server_error, raw, path, model)
        if special is not None:
            return special
        detail = f": {server_error}" if server_error else ""
        # A proxy's own failures: 407, 502/504, and 503 with its error page (squid), not a busy
        # server's JSON.
        at_proxy = status in (407, 502, 504) or status == 503 and looks_like_html(raw)
        proxy = self.proxy() if at_proxy else None
        if proxy is not None and status == 407:
            where = f"{cap_first(str(proxy))} answered HTTP 407 to {path} for {self.server}"
        elif proxy is not None:
            where = f"{cap_first(self.server)} answered HTTP {status} to {path} through {proxy}"
        else:
            where = f"{cap_first(self.server)} answered HTTP {status} to {path}"
        hint = proxy.fix(self.host, status) if proxy is not None else \
            self.status_hint(status, server_error, path)
        if status in RETRYABLE_STATUS and tries > 1:
            hint += f" (Tried {tries} times.)"
        return ProviderResponseError(f"{where}{detail}. {hint}", status_code=status,
                                     server_error=server_error, url=self.base_url)

    # -- what an API overrides -----------------------------------------------------------------
    def scrub(self, text: str) -> str:
        """``text`` (from the server) with the API key masked (servers may echo it)."""
        if self._api_key is not None and self._api_key.reveal() in text:
            text = text.replace(self._api_key.reveal(), "***")
        return text

    def error_text(self, raw: bytes) -> str:
        """The server's own error message from an error reply's body."""
        try:
            data = json.loads(raw)
            if isinstance(data, dict) and "error" in data:
                error = data["error"]  # OpenAI's shape too (a server that is not this API)
                return str((error.get("message") or error) if isinstance(error, dict) else error)
        except ValueError:
            pass
        return body_text(raw)

    def status_hint(self, status: int, server_error: str, path: str) -> str:
        """What to do about an HTTP error ``status``."""
        return self.status_hints.get(status, self.default_status_hint)

    async def _special_error(self, status: int, server_error: str, raw: bytes, path: str,
                             model: str | None) -> LLMError | None:
        """An error more specific than ``ProviderResponseError`` (a missing model…), or None."""
        return None

    async def probe(self, url: str) -> Any:
        """One short GET on an error path (what kind of server is this?): the decoded JSON of a
        200 reply, else None. ``url`` is relative to ``base_url`` or absolute."""
        try:
            response = await self.client().get(url, timeout=2.0)
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def _error(self, message: str, status: int, server_error: str) -> ProviderResponseError:
        return ProviderResponseError(message, status_code=status, server_error=server_error,
                                     url=self.base_url)
