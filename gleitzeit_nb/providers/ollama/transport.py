"""HTTP to one Ollama server: pooled client per event loop, split timeouts, retries, errors.

Timeouts are split in phases. ``connect`` is short. ``first_byte`` covers the wait for the
response to start, which includes model load (Ollama sends no headers before the first token).
``chunk`` bounds each later wait for data. Retries happen only before a response has started.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import random
import time
import weakref
from dataclasses import dataclass
from typing import Any

import httpx

from ...core.errors import (
    RETRYABLE_STATUS,
    LLMError,
    ModelNotFoundError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from .host import is_loopback, proxy_in_env

logger = logging.getLogger("gleitzeit_nb.providers.ollama")


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


class OllamaTransport:
    """Sends requests to ``base_url`` and turns every failure into the error hierarchy."""

    def __init__(self, base_url: str, timeouts: Timeouts, retry: RetryPolicy,
                 headers: dict[str, str] | None = None, **client_kwargs: Any) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self.retry = retry
        self.headers = headers or {}
        self.client_kwargs = client_kwargs
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    # -- clients -------------------------------------------------------------------------------
    def client(self) -> httpx.AsyncClient:
        """The pooled client of the running event loop (one per loop: clients can't move)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            settings: dict[str, Any] = {
                "base_url": self.base_url,
                "headers": self.headers,
                # A loopback server never goes through HTTP(S)_PROXY (the classic 502 on 127.0.0.1).
                "trust_env": not is_loopback(self.base_url),
                "limits": httpx.Limits(max_connections=64, max_keepalive_connections=16),
            }
            client = httpx.AsyncClient(**{**settings, **self.client_kwargs})  # the caller's win
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
                f"The connection to Ollama at {self.base_url} broke while reading {path}: {exc}. "
                "Check that the server is still running (`ollama serve`).",
                url=self.base_url,
            ) from exc
        finally:
            await response.aclose()
        try:
            decoded = json.loads(data)
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            raise ProviderResponseError(
                f"Ollama at {self.base_url} sent a reply to {path} that is not a JSON object: "
                f"{data[:120]!r}. Is OLLAMA_HOST pointing at an Ollama server?",
                status_code=response.status_code, url=self.base_url,
            )
        return decoded

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
                # httpcore reads the body's read timeout when the body starts, so this bounds
                # every later wait for data at no per-chunk cost.
                request.extensions["timeout"]["read"] = self.timeouts.chunk
                logger.debug("%s %s -> %d in %.3fs", method, path, response.status_code,
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
            logger.warning("%s %s failed (%s); retry %d/%d in %.2fs", method, path,
                           error.message.split(". ")[0], attempt, retries, delay)
            await asyncio.sleep(delay)

    # -- error mapping -------------------------------------------------------------------------
    def _transport_error(self, exc: httpx.HTTPError, path: str) -> LLMError:
        if isinstance(exc, httpx.ConnectTimeout):
            err: LLMError = ProviderTimeoutError(
                f"Connecting to Ollama at {self.base_url} timed out after {self.timeouts.connect} s. "
                f"{self._reach_hint()}", phase="connect", url=self.base_url)
            err.retryable = True
            return err
        if isinstance(exc, httpx.PoolTimeout):
            return ProviderTimeoutError(
                f"No free connection to {self.base_url} within {self.timeouts.first_byte} s: too "
                "many requests at once. Lower the concurrency.", phase="pool", url=self.base_url)
        if isinstance(exc, httpx.TimeoutException):
            phase = "write" if isinstance(exc, httpx.WriteTimeout) else "first_byte"
            return self.timeout_error(phase, path)
        reason = _reason(exc)
        return ProviderUnavailableError(
            f"Could not reach Ollama at {self.base_url} ({reason}). {self._reach_hint()}",
            url=self.base_url)

    def _reach_hint(self) -> str:
        hint = ("Start the server with `ollama serve`, or set OLLAMA_HOST (or base_url=) "
                "to where it runs.")
        proxy = proxy_in_env()
        if proxy and not is_loopback(self.base_url):
            host = httpx.URL(self.base_url).host
            hint += f" {proxy} is set: if the server is local, add {host} to NO_PROXY."
        return hint

    def timeout_error(self, phase: str, path: str, *, chunks: int = 0,
                       partial: str = "") -> ProviderTimeoutError:
        t = self.timeouts
        if phase == "first_byte":
            msg = (f"Ollama at {self.base_url} sent no response to {path} within {t.first_byte} s "
                   "(model load and prompt evaluation). The model may still be loading: raise "
                   "the limit with timeout= (e.g. OllamaProvider(timeout=600)).")
        elif phase == "chunk":
            msg = (f"The stream from Ollama at {self.base_url} stalled: no data for {t.chunk} s "
                   f"after {chunks} chunks. Raise the limit with chunk_timeout=, or check the "
                   "server (`ollama ps`).")
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
        server_error = _server_error_text(raw)
        status = response.status_code
        if status == 404 and model and "not found" in server_error.lower():
            return ModelNotFoundError(model, url=self.base_url,
                                      installed=await self._installed_models(),
                                      install_hint=f"Install it with `ollama pull {model}`")
        hint = {
            400: "Check the request's parameters.",
            404: "This server does not know that endpoint: update Ollama (https://ollama.com/download).",
            429: "The server is busy; lower the concurrency or wait.",
            500: "The server failed; its log (`ollama serve` output) says why, e.g. out of memory: "
                 "try a smaller model or a lower num_ctx.",
        }.get(status, "The server is overloaded, restarting, or behind a proxy that failed.")
        if status in (502, 504) and proxy_in_env():
            hint += f" {proxy_in_env()} is set: add the Ollama host to NO_PROXY if it is local."
        if status in RETRYABLE_STATUS and tries > 1:
            hint += f" (Tried {tries} times.)"
        detail = f": {server_error}" if server_error else ""
        return ProviderResponseError(
            f"Ollama at {self.base_url} answered HTTP {status} to {path}{detail}. {hint}",
            status_code=status, server_error=server_error, url=self.base_url)

    async def _installed_models(self) -> list[str]:
        """Best effort: the installed model names, for a 'not found' hint."""
        try:
            client = self.client()
            resp = await client.get("/api/tags", timeout=min(5.0, self.timeouts.first_byte or 5.0))
            return [m["name"] for m in resp.json().get("models", [])]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return []


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


def _server_error_text(raw: bytes) -> str:
    try:
        data = json.loads(raw)
        if isinstance(data, dict) and "error" in data:
            return str(data["error"])
    except ValueError:
        pass
    return raw.decode("utf-8", "replace").strip()[:300]


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    # anyio reports "All connection attempts failed"; the OSError behind it says why.
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[cause.errno]
        cause = cause.__cause__ or cause.__context__
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "name or service not known" in low or "nodename nor servname" in low:
        return "unknown host name"
    if "reset" in low:
        return "connection reset"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection without answering"
    return text
