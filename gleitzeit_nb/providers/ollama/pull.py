"""Ollama's ``/api/pull``: NDJSON progress lines in, :class:`PullEvent`s out, errors in plain words.

Ollama answers 200 at once and streams ``{"status": …}`` lines, with ``digest``, ``total`` and
``completed`` while a layer downloads (``completed`` left out while 0); a failure is an
``{"error": …}`` line in the same stream. Closing the response stops the download; Ollama keeps
the partial layers and the next pull resumes from them.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx

from ...core.errors import ProviderResponseError, PullError
from ...core.pull import PullEvent
from ..describe import cap_first
from .transport import OllamaTransport

PATH = "/api/pull"
#: Seconds a pull may go without a line: verifying a large layer's digest sends nothing.
QUIET_LIMIT = 900.0

_UNKNOWN = re.compile(r"file does not exist|manifest unknown|\bnot found\b", re.I)
_DISK_FULL = re.compile(r"no space left|disk full|not enough (disk )?space", re.I)
_NO_NETWORK = re.compile(r"no such host|dial tcp|connection refused|network is unreachable|"
                         r"i/o timeout|tls handshake|context deadline exceeded|"
                         r"temporary failure in name resolution|server misbehaving", re.I)


async def pull_events(transport: OllamaTransport, model: str) -> AsyncIterator[PullEvent]:
    """Stream the pull of ``model`` (see the module docstring); ends after "success"."""
    try:
        response = await transport.open("POST", PATH, {"model": model, "stream": True})
    except ProviderResponseError as exc:
        if exc.status_code == 400:  # Ollama checks the name before it streams
            raise PullError(
                f"Cannot pull '{model}': {transport.server} refused the name "
                f"({exc.server_error or 'HTTP 400'}). Write it as NAME or NAME:TAG, e.g. "
                "llama3.2 or qwen3:0.6b.", model=model, reason="invalid_name",
                server_error=exc.server_error, url=transport.base_url) from None
        raise
    # Set after the headers, read when the body starts: a quiet phase must not end the pull.
    response.request.extensions["timeout"]["read"] = max(QUIET_LIMIT, transport.timeouts.chunk)
    lines = response.aiter_lines()
    status = ""
    try:
        async for line in lines:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                raise _broken(transport, model, f"sent a malformed line: {line[:80]!r}")
            if "error" in obj:
                raise pull_error(transport, model, str(obj["error"]), status)
            digest = str(obj.get("digest") or "")
            status = str(obj.get("status") or "")
            event = PullEvent(status, digest, _int(obj.get("total")),
                              _int(obj.get("completed")) or (0 if digest else None))
            yield event
            if event.success:
                return
        raise _broken(transport, model, "closed the stream before the pull finished")
    except httpx.TransportError as exc:
        what = (f"sent nothing for {QUIET_LIMIT:.0f} s" if isinstance(exc, httpx.ReadTimeout)
                else "dropped the connection")
        raise _broken(transport, model, what) from None
    finally:
        # Closing here (not at garbage collection) is what stops the download on the server.
        await lines.aclose()  # type: ignore[attr-defined]
        await response.aclose()


def pull_error(transport: OllamaTransport, model: str, server_error: str,
               status: str = "") -> PullError:
    """Our error for Ollama's ``{"error": …}`` line during a pull, by what it says."""
    where, said = transport.server, f'("{server_error}")'
    resume = "then pull again: it resumes where it stopped"
    if _DISK_FULL.search(server_error):
        reason = "disk_full"
        message = (f"Pulling '{model}' stopped: the disk of {where} is full {said}. Free space "
                   "where that server keeps its models (OLLAMA_MODELS, by default "
                   f"~/.ollama/models), {resume}.")
    elif _NO_NETWORK.search(server_error):
        reason = "no_network"
        message = (f"Cannot pull '{model}': {where} cannot reach the model registry {said}. "
                   "Check that server's internet connection (or its HTTPS_PROXY), "
                   f"{resume}.")
    elif _UNKNOWN.search(server_error) and "manifest" in (status + server_error):
        reason = "unknown_model"
        message = (f"Cannot pull '{model}': {where} found no such model in its registry "
                   f"{said}. Check the name and tag: https://ollama.com/library lists them "
                   "(e.g. llama3.2, qwen3:0.6b).")
    else:
        reason = "failed"
        message = (f"Pulling '{model}' on {where} failed {said}. Pull again to resume; the "
                   "server's log (`ollama serve` output) says more.")
    return PullError(message, model=model, reason=reason, server_error=server_error,
                     url=transport.base_url)


def _broken(transport: OllamaTransport, model: str, what: str) -> PullError:
    return PullError(f"{cap_first(transport.server)} {what} while pulling '{model}'. Pull "
                     "again: it resumes where it stopped.", model=model, reason="broken",
                     url=transport.base_url)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
