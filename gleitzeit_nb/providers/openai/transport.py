"""HTTP to one OpenAI-compatible server (llama.cpp, vLLM, LM Studio, Ollama's /v1, gateways):
the shared machinery (:mod:`..http`) with this API's error bodies, hints and API key."""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from typing import Any

import httpx

from ...core.errors import (RETRYABLE_STATUS, ContextLengthError, InvalidParamsError, LLMError,
                           ModelNotFoundError)
from ..capabilities import capability_error
from ..http import (HttpTransport, RetryPolicy, Secret, Timeouts, body_text, cap_first,
                    looks_like_html)

logger = logging.getLogger("gleitzeit_nb.providers.openai")

DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"
KEY_HINT = ("set the key: api_key_env='NAME_OF_ENV_VAR' (or %config LLMMagics.api_key_env) / "
            "api_key= in Python")
_MODEL_MISSING = re.compile(
    r"model\b.*\b(not found|does not exist|doesn't exist|not exist|no such|not available|"
    r"unknown)|(unknown|invalid|no such) model", re.I | re.S)
_UNSUPPORTED = re.compile(r"not (be )?supported|does not support|unsupported|not support", re.I)
#: The fix for a capability the model (or server) lacks, when no model on it has it.
CAPABILITY_HINTS = {
    "embedding": "use an embedding model, or start the server for them (llama-server: "
                 "--embeddings)",
    "vision": "use a vision model (llama-server: --mmproj with the model's projector)",
    "completion": "use a chat model",
    "thinking": "leave out think=, or use a thinking model",
    "tools": "leave out tools=, or use a model with tool support",
}


def normalize_base_url(url: str | None) -> str:
    """``http://h:p/v1``, ``h:p/v1`` or ``h:p/v1/`` → ``http://h:p/v1``.

    An empty path becomes ``/v1``; another path (a gateway's prefix) is kept as given.

    >>> normalize_base_url("localhost:8080")
    'http://localhost:8080/v1'
    >>> normalize_base_url("https://gw.example/openai/")
    'https://gw.example/openai'
    """
    text = (url or DEFAULT_BASE_URL).strip().strip("\"'")
    if "://" not in text:
        text = f"http://{text}"
    split = urllib.parse.urlsplit(text)
    if not split.hostname:
        raise InvalidParamsError(f"base_url {url!r} names no host; use e.g. {DEFAULT_BASE_URL}.",
                                 param="host")
    try:
        split.port
    except ValueError:
        raise InvalidParamsError(f"base_url {url!r} has an invalid port; use e.g. "
                                 f"{DEFAULT_BASE_URL}.", param="host") from None
    netloc = split.netloc
    if split.hostname in ("0.0.0.0", "::"):  # where a server listens, not an address to call
        netloc = netloc.replace("0.0.0.0", "127.0.0.1").replace("[::]", "[::1]")
    return f"{split.scheme.lower()}://{netloc}{split.path.rstrip('/') or '/v1'}"


class OpenAITransport(HttpTransport):
    """Requests to an OpenAI-compatible server; the API key goes only to this server."""

    server_name = "the OpenAI-compatible server"
    software = "OpenAI-compatible server"
    # llama.cpp's server leaves a connection that carried a stream in a state where the next
    # request on it waits for seconds; a loopback connect costs ~0.1 ms, so none is reused.
    keepalive = 0
    start_hint = ("Start it (e.g. `llama-server -m MODEL.gguf --port 8080`) or check the base "
                  "URL: it usually ends in /v1.")
    running_hint = "Check that the server is still running."
    not_json_hint = ("It does not look like an OpenAI-compatible server: check the base URL "
                     "(it usually ends in /v1).")
    first_byte_hint = ("The model may still be loading: raise the limit with timeout= "
                       "(e.g. OpenAICompatibleProvider(timeout=600)).")
    stall_hint = "Raise the limit with chunk_timeout=, or check the server's log."
    status_hints = {
        400: "Check the request's parameters (strict servers reject the sampling keys top_k and "
             "repeat_penalty: leave them unset there).",
        429: "The server is busy or rate-limited; lower the concurrency or wait.",
        500: "The server failed; its log says why (e.g. out of memory, or a prompt longer than "
             "its context).",
    }

    def __init__(self, base_url: str, timeouts: Timeouts, retry: RetryPolicy,
                 headers: dict[str, str] | None = None, *, api_key: str | Secret | None = None,
                 **client_kwargs: Any) -> None:
        super().__init__(base_url, timeouts, retry, headers, api_key=api_key, logger=logger,
                         **client_kwargs)

    @property
    def root(self) -> str:
        """The server's root (``base_url`` without ``/v1``), where llama.cpp serves ``/props``."""
        return self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url

    # -- errors --------------------------------------------------------------------------------
    def error_text(self, raw: bytes) -> str:
        """The message of an error body (see :func:`error_message`), key masked."""
        return self.scrub(error_message(_loads(raw)) or body_text(raw))

    async def _special_error(self, status: int, server_error: str, raw: bytes, path: str,
                             model: str | None) -> LLMError | None:
        where = f"{cap_first(self.server)} answered HTTP {status} to {path}"
        where += f": {server_error.rstrip('.')}." if server_error else "."
        if status in (401, 403):
            fix = ("The API key sent was not accepted; " if self._api_key is not None
                   else "This server needs an API key; ")
            return self._error(f"{where} {fix}{KEY_HINT}.", status, server_error)
        if _error_type(raw) == "exceed_context_size_error":
            return _too_long(_loads(raw)["error"], where, self.base_url)
        # A 400 counts only when it names the model: "unknown field for model" is no such case.
        if model and (_error_code(raw) == "model_not_found" or
                      (status == 404 or status == 400 and model in server_error)
                      and _MODEL_MISSING.search(server_error)):
            return ModelNotFoundError(model, url=self.base_url,
                                      installed=await self.served_models())
        error = await capability_error(self, status, server_error, path, model,
                                       show_root=self.root, hints=CAPABILITY_HINTS)
        if error is None and (status in (404, 405) or status == 501 and looks_like_html(raw)):
            error = await self._wrong_path(status, server_error, raw, path, where)
        # (only a model's own complaint: a JSON error to a 400/500, not a web server's 501 page)
        if (error is None and status in (400, 500) and isinstance(_loads(raw), dict)
                and _UNSUPPORTED.search(server_error)):
            what = f"'{model}'" if model else "This server"
            error = self._error(f"{where} {what} does not support part of this request: leave "
                                "out the option it names (format=, think=, images…).",
                                status, server_error)
        return error

    async def _wrong_path(self, status: int, server_error: str, raw: bytes, path: str,
                          where: str) -> LLMError:
        """No such route: a base URL without /v1 at Ollama's native API, a web server, or
        another path mistake (one short GET tells Ollama apart)."""
        split = urllib.parse.urlsplit(self.base_url)
        origin = f"{split.scheme}://{split.netloc}"
        route = split.path + path
        if split.path != "/v1":
            version = await self.probe(f"{origin}/api/version")
            if isinstance(version, dict) and "version" in version:
                return self._error(
                    f"{where} It is Ollama's own API, not the OpenAI-compatible one: use host "
                    f"{origin}/v1 (or api='ollama' with host {origin}).", status, server_error)
        if looks_like_html(raw):
            return self._error(f"{where} It is a web server, not an OpenAI-compatible API: "
                               "check the base URL (it usually ends in /v1).",
                               status, server_error)
        return self._error(f"{where} This server has no {route}: is the base URL right? "
                           "(it usually ends in /v1)", status, server_error)

    async def served_models(self) -> list[str]:
        """Best effort: the model ids the server lists, for a 'not available' hint."""
        try:
            resp = await self.client().get("/models",
                                           timeout=min(5.0, self.timeouts.first_byte or 5.0))
            return [m["id"] for m in resp.json().get("data", [])]
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            return []


def error_message(data: Any) -> str:
    """The message of an OpenAI-style error object (several servers' shapes); '' if none."""
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("msg") or json.dumps(error))
    if error:
        return str(error)
    detail = data.get("detail")
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    if detail:
        return str(detail)
    return str(data.get("message") or "")


def _too_long(error: dict[str, Any], where: str, url: str) -> ContextLengthError:
    """llama.cpp's ``exceed_context_size_error``: the prompt's tokens and the slot's context."""
    tokens, limit = error.get("n_prompt_tokens"), error.get("n_ctx")
    size = f"{limit:,} tokens" if isinstance(limit, int) else "its context size"
    return ContextLengthError(
        f"{where} The prompt does not fit the server's context ({size} per slot). Shorten it "
        "(a DataFrame as {df:summary} or {df:head(20)}, --new for a long conversation), or "
        "start llama-server with a larger --ctx-size (-c; it is shared by the --parallel "
        "slots).", tokens=tokens if isinstance(tokens, int) else 0,
        limit=limit if isinstance(limit, int) else 0, estimated=False, url=url)


def _error_type(raw: bytes) -> str:
    data = _loads(raw)
    error = data.get("error") if isinstance(data, dict) else None
    return str(error.get("type") or "") if isinstance(error, dict) else ""


def _error_code(raw: bytes) -> str:
    data = _loads(raw)
    error = data.get("error") if isinstance(data, dict) else None
    return str(error.get("code") or "") if isinstance(error, dict) else ""


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
