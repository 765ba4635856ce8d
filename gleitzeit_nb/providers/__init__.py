"""Providers: implementations of the backend seam (``gleitzeit_nb.core.backend``) on real
server APIs, one package per API. The classes are imported on first use (httpx with them), so
code that only needs ``providers.servers`` stays light."""

from __future__ import annotations

from typing import Any

from .._lazy import lazy_getattr

_LAZY = {"OllamaProvider": "gleitzeit_nb.providers.ollama",
         "ChatStream": "gleitzeit_nb.providers.ollama",
         "OpenAICompatibleProvider": "gleitzeit_nb.providers.openai"}

__all__ = list(_LAZY)

_lazy_getattr = lazy_getattr("gleitzeit_nb.providers", _LAZY, globals())


def __getattr__(name: str) -> Any:
    return _lazy_getattr(name)
