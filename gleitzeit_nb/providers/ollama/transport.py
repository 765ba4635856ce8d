"""HTTP to one Ollama server: the shared machinery (:mod:`..http`) with Ollama's hints, its
"model not found" and capability errors, and what a server that is not Ollama looks like."""

from __future__ import annotations

import logging
import re
import urllib.parse
from typing import Any

import httpx

from ...core.errors import LLMError, ModelNotFoundError
from ..capabilities import capability_error
from ...core.secret import Secret
from ..http import HttpTransport, RetryPolicy, Timeouts, cap_first, looks_like_html

__all__ = ["OllamaTransport", "RetryPolicy", "Timeouts"]

logger = logging.getLogger("gleitzeit_nb.providers.ollama")

#: Ollama's wording for a missing model: 'model "x" not found, try pulling it first'.
_MODEL_MISSING = re.compile(r"\bmodel\b.*\bnot found\b", re.I | re.S)
_MEMORY = re.compile(r"memory|\boom\b|alloc", re.I)
#: What Ollama's router answers for a path it does not know.
_NO_ROUTE = "404 page not found"
#: The fix for a capability no installed model has.
CAPABILITY_HINTS = {
    "embedding": "pull an embedding model, e.g. `ollama pull nomic-embed-text`",
    "vision": "pull a vision model, e.g. `ollama pull llava`",
    "completion": "pull a chat model, e.g. `ollama pull llama3.2`",
    "thinking": "leave out think=, or pull a thinking model, e.g. `ollama pull qwen3`",
    "tools": "leave out tools=, or use a model with tool support",
}


class OllamaTransport(HttpTransport):
    """Sends requests to an Ollama server and turns every failure into the error hierarchy."""

    server_name = "Ollama"
    software = "Ollama"
    start_hint = ("Start the server with `ollama serve`, or set OLLAMA_HOST (or base_url=) "
                  "to where it runs.")
    running_hint = "Check that the server is still running (`ollama serve`)."
    not_json_hint = "Is OLLAMA_HOST pointing at an Ollama server?"
    first_byte_hint = ("The model may still be loading: raise the limit with timeout= "
                       "(e.g. OllamaProvider(timeout=600)).")
    stall_hint = "Raise the limit with chunk_timeout=, or check the server (`ollama ps`)."
    status_hints = {
        400: "Check the request's parameters.",
        404: "This server does not know that endpoint: update Ollama (https://ollama.com/download).",
        429: "The server is busy; lower the concurrency or wait.",
        500: "The server failed; its log (`ollama serve` output) says why.",
    }
    memory_hint = ("The model does not fit in memory: try a smaller model or a lower num_ctx "
                   "(the server's log, `ollama serve` output, has the details).")

    def __init__(self, base_url: str, timeouts: Timeouts, retry: RetryPolicy,
                 headers: dict[str, str] | None = None, *,
                 api_key: str | Secret | None = None, **client_kwargs: Any) -> None:
        super().__init__(base_url, timeouts, retry, headers, api_key=api_key, logger=logger,
                         **client_kwargs)

    def status_hint(self, status: int, server_error: str, path: str) -> str:
        if status == 500 and _MEMORY.search(server_error):
            return self.memory_hint
        return super().status_hint(status, server_error, path)

    async def _special_error(self, status: int, server_error: str, raw: bytes, path: str,
                             model: str | None) -> LLMError | None:
        if status == 404 and model and _MODEL_MISSING.search(server_error):
            return ModelNotFoundError(model, url=self.base_url,
                                      installed=await self._installed_models(),
                                      install_hint=f"Install it with `ollama pull {model}`",
                                      pullable=True)
        error: LLMError | None = await capability_error(
            self, status, server_error, path, model, show_root="", hints=CAPABILITY_HINTS)
        if error is None and (status in (404, 405) or status == 501 and looks_like_html(raw)):
            error = await self._not_ollama(status, server_error, raw, path)
        return error

    async def _not_ollama(self, status: int, server_error: str, raw: bytes,
                          path: str) -> LLMError | None:
        """An unknown path: an Ollama too old for it (None: the usual hint), or another kind
        of server, found with one short GET."""
        detail = f": {server_error.rstrip('.')}." if server_error else "."
        where = f"The server at {self.base_url} answered HTTP {status} to {path}{detail}"
        if urllib.parse.urlsplit(self.base_url).path.endswith("/v1"):
            return self._error(f"{where} A host ending in /v1 is the OpenAI-compatible API: use "
                               "api='openai', or the host without /v1 for Ollama's own API.",
                               status, server_error)
        if server_error.lower().startswith(_NO_ROUTE):  # Ollama's router, or another Go server
            version = await self.probe("/api/version")
            if isinstance(version, dict) and "version" in version:
                return self._error(
                    f"{cap_first(self.server)} answered HTTP {status} to {path}{detail} This "
                    f"Ollama ({version['version']}) does not know that endpoint: update it "
                    "(https://ollama.com/download).", status, server_error)
            return self._error(f"{where} It is not Ollama (it has no /api/version): check "
                               "OLLAMA_HOST (or host=).", status, server_error)
        models = await self.probe("/v1/models")
        if isinstance(models, dict) and isinstance(models.get("data"), list):
            return self._error(f"{where} It looks like an OpenAI-compatible server, not Ollama: "
                               f"use host {self.base_url}/v1 (or api='openai').",
                               status, server_error)
        what = "a web server" if looks_like_html(raw) else "not an Ollama server"
        return self._error(f"{where} It is {what}: check OLLAMA_HOST (or host=); Ollama "
                           "listens on port 11434 by default.", status, server_error)

    async def _installed_models(self) -> list[str]:
        """Best effort: the installed model names, for a 'not found' hint."""
        try:
            client = self.client()
            resp = await client.get("/api/tags", timeout=min(5.0, self.timeouts.first_byte or 5.0))
            return [m["name"] for m in resp.json().get("models", [])]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return []
