"""The one place where a server URL and an API become a backend."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from ..core.errors import InvalidParamsError
from ..core.secret import Secret

if TYPE_CHECKING:  # (the providers, and httpx with them, load when a backend is opened)
    from ..core.provider import BackendProvider
from .ollama.host import host_from_env, parse_host

APIS = ("auto", "ollama", "openai")


def api_of(url: str, api: str = "auto") -> str:
    """``api`` unless "auto": then a URL whose path ends in ``/v1`` is OpenAI-compatible."""
    if api not in APIS:
        raise InvalidParamsError(f"api must be one of {', '.join(APIS)}, not {api!r}.",
                                 param="api")
    if api != "auto":
        return api
    text = url if "://" in url else f"http://{url}"
    path = urllib.parse.urlsplit(text).path.rstrip("/")
    return "openai" if path.endswith("/v1") else "ollama"


def open_backend(url: str | None = None, *, api: str = "auto",
                 api_key: str | Secret | None = None,
                 timeout: float = 120.0, chunk_timeout: float = 60.0,
                 provider_id: str | None = None, **kwargs: Any) -> BackendProvider:
    """A provider for ``url`` (None or "": ``OLLAMA_HOST``, read as Ollama reads it).

    ``api_key`` is sent as a bearer token to this server only.
    """
    kind = api_of(url or "", api)
    if kind == "ollama":
        from .ollama import OllamaProvider

        base = parse_host(url) if url else host_from_env()
        return OllamaProvider(provider_id=provider_id or f"ollama@{base}", base_url=base,
                              timeout=timeout, chunk_timeout=chunk_timeout, api_key=api_key,
                              **kwargs)
    from .openai import OpenAICompatibleProvider

    if not url:
        raise InvalidParamsError("An OpenAI-compatible server needs its URL, e.g. "
                                 "http://127.0.0.1:8080/v1.", param="host")
    return OpenAICompatibleProvider(provider_id=provider_id or f"openai@{url}", base_url=url,
                                    api_key=api_key, timeout=timeout,
                                    chunk_timeout=chunk_timeout, **kwargs)
