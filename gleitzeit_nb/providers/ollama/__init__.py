"""Ollama's native HTTP API as an ``llm/v1`` provider (the provider and its transport, which
bring httpx, are imported on first use)."""

from __future__ import annotations

from typing import Any

from ..._lazy import lazy_getattr
from .host import DEFAULT_PORT, host_from_env, parse_host

_LAZY = {"OllamaProvider": "gleitzeit_nb.providers.ollama.provider",
         "ChatStream": "gleitzeit_nb.providers.ollama.stream",
         "Timeouts": "gleitzeit_nb.providers.ollama.transport",
         "RetryPolicy": "gleitzeit_nb.providers.ollama.transport"}

__all__ = [*_LAZY, "parse_host", "host_from_env", "DEFAULT_PORT"]

_lazy_getattr = lazy_getattr("gleitzeit_nb.providers.ollama", _LAZY, globals())


def __getattr__(name: str) -> Any:
    return _lazy_getattr(name)
