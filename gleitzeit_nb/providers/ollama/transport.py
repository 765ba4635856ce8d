"""HTTP to one Ollama server: the shared machinery (:mod:`..http`) with Ollama's hints and its
"model not found" detection."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from ...core.errors import LLMError, ModelNotFoundError
from ..http import HttpTransport, RetryPolicy, Timeouts

__all__ = ["OllamaTransport", "RetryPolicy", "Timeouts"]

logger = logging.getLogger("gleitzeit_nb.providers.ollama")


class OllamaTransport(HttpTransport):
    """Sends requests to an Ollama server and turns every failure into the error hierarchy."""

    server_name = "Ollama"
    start_hint = ("Start the server with `ollama serve`, or set OLLAMA_HOST (or base_url=) "
                  "to where it runs.")
    running_hint = "Check that the server is still running (`ollama serve`)."
    not_json_hint = "Is OLLAMA_HOST pointing at an Ollama server?"
    first_byte_hint = ("The model may still be loading: raise the limit with timeout= "
                       "(e.g. OllamaProvider(timeout=600)).")
    stall_hint = "Raise the limit with chunk_timeout=, or check the server (`ollama ps`)."
    proxy_status_hint = "add the Ollama host to NO_PROXY if it is local."
    status_hints = {
        400: "Check the request's parameters.",
        404: "This server does not know that endpoint: update Ollama (https://ollama.com/download).",
        429: "The server is busy; lower the concurrency or wait.",
        500: "The server failed; its log (`ollama serve` output) says why, e.g. out of memory: "
             "try a smaller model or a lower num_ctx.",
    }

    def __init__(self, base_url: str, timeouts: Timeouts, retry: RetryPolicy,
                 headers: dict[str, str] | None = None, **client_kwargs: Any) -> None:
        super().__init__(base_url, timeouts, retry, headers, logger=logger, **client_kwargs)

    async def _special_error(self, status: int, server_error: str, raw: bytes, path: str,
                             model: str | None) -> LLMError | None:
        if status == 404 and model and "not found" in server_error.lower():
            return ModelNotFoundError(model, url=self.base_url,
                                      installed=await self._installed_models(),
                                      install_hint=f"Install it with `ollama pull {model}`")
        return None

    async def _installed_models(self) -> list[str]:
        """Best effort: the installed model names, for a 'not found' hint."""
        try:
            client = self.client()
            resp = await client.get("/api/tags", timeout=min(5.0, self.timeouts.first_byte or 5.0))
            return [m["name"] for m in resp.json().get("models", [])]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return []
