"""Capability mismatches on any API: which capability a server said a model lacks (from its
error text), and which of its models have it (Ollama publishes capabilities in ``/api/show``;
Ollama's ``/v1`` is the same server, so both APIs ask there; best effort)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import httpx

from ..core.errors import CapabilityError
from .describe import cap_first

if TYPE_CHECKING:  # pragma: no cover
    from .http import HttpTransport

_UNSUPPORTED = re.compile(r"not (be )?supported|do(es)?( not|n'?t) support|unsupported|"
                          r"missing data required for image", re.I)
_CHAT = re.compile(r"support (chat|generate|completion|text generation)", re.I)
_MODELS_ASKED = 40  # /api/show requests at most, on a server with very many models


def missing_capability(path: str, server_error: str) -> str | None:
    """The capability ("embedding", "vision", "completion", "thinking", "tools") the server's
    error says is missing, or None (not a capability error, or an option it rejects)."""
    low = server_error.lower()
    if not _UNSUPPORTED.search(low):
        return None
    if "embed" in path:
        return "embedding" if "embed" in low else None  # not "dimensions are not supported"
    if _CHAT.search(low):
        return "completion"
    if any(word in low for word in ("image", "vision", "multimodal", "mmproj")):
        return "vision"
    if "thinking" in low or "reasoning" in low:
        return "thinking"
    if re.search(r"\btools?\b", low):
        return "tools"
    if "chat" in low or "completion" in low:
        return "completion"
    return None


async def capability_error(transport: HttpTransport, status: int, server_error: str, path: str,
                           model: str | None, *, show_root: str,
                           hints: Mapping[str, str]) -> CapabilityError | None:
    """A :class:`CapabilityError` when ``server_error`` says the model (or the whole server)
    cannot do what was asked; ``candidates`` from the Ollama API at ``show_root`` ("" for the
    transport's own base URL)."""
    capability = missing_capability(path, server_error)
    if capability is None:
        return None
    whole_server = "server" in server_error.lower()  # llama.cpp: "This server does not support…"
    candidates = [] if whole_server else await models_with(transport.client(), show_root,
                                                           capability, exclude=model)
    where = f"{cap_first(transport.server)} answered HTTP {status} to {path}" + \
        (f": {server_error.rstrip('.')}." if server_error else ".")
    return CapabilityError(where, model=None if whole_server else model, capability=capability,
                           candidates=candidates, hint=hints.get(capability, ""),
                           status_code=status, server_error=server_error,
                           url=transport.base_url)


async def models_with(client: httpx.AsyncClient, root: str, capability: str, *,
                      exclude: str | None = None, timeout: float = 5.0) -> list[str]:
    """The models an Ollama server at ``root`` lists with ``capability`` ([] when it is not
    Ollama or does not answer)."""
    try:
        tags = await client.get(f"{root}/api/tags", timeout=timeout)
        names = [m["name"] for m in tags.json().get("models", [])][:_MODELS_ASKED]
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
        return []
    wanted = _tagged(exclude) if exclude else None
    names = [n for n in names if _tagged(n) != wanted]

    async def can(name: str) -> bool:
        try:
            shown = await client.post(f"{root}/api/show", json={"model": name}, timeout=timeout)
            return capability in (shown.json().get("capabilities") or [])
        except (httpx.HTTPError, ValueError, TypeError, AttributeError):
            return False

    found = await asyncio.gather(*(can(n) for n in names))
    return [n for n, ok in zip(names, found) if ok]


def _tagged(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"
