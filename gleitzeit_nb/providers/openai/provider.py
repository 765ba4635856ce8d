"""``OpenAICompatibleProvider``: the ``llm/v1`` protocol on the OpenAI-compatible HTTP API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ...core.backend import ChatRequest, ContextInfo, EmbedRequest, EmbedResult, ModelInfo
from ...core.errors import LLMError, PullError
from ...core.pull import PullEvent
from ..base import HttpProvider
from .payload import build_chat_body, build_embed_body
from .stream import CompletionStream
from .transport import (DEFAULT_BASE_URL, OpenAITransport, RetryPolicy, Timeouts,
                        normalize_base_url)

logger = logging.getLogger("gleitzeit_nb.providers.openai")

#: How to get a larger context from an OpenAI-compatible server: restart it.
LLAMA_CPP_HINT = ("start llama-server with a larger --ctx-size (-c; it is shared by the "
                  "--parallel slots), or run fewer slots")
FIXED_HINT = "start the server with a larger context (llama-server: --ctx-size; vLLM: --max-model-len)"


class OpenAICompatibleProvider(HttpProvider):
    """Provider for a server with the OpenAI API: llama.cpp's ``llama-server``, vLLM, LM Studio,
    Ollama's ``/v1``, LiteLLM and other gateways. Chat, vision and embed, streamed or not.

    ``base_url`` is the API's root, e.g. ``http://127.0.0.1:8080/v1``; the scheme defaults to
    http, a URL with no path gets ``/v1``, another path (a gateway's prefix) is kept as given.
    ``api_key`` is sent as ``Authorization: Bearer …`` to this server only and never shown in
    reprs, errors or logs; it is not read from the environment (a key meant for one service
    would otherwise go to any local server). ``timeout`` is the time allowed for a reply to start
    (model load included); ``connect_timeout`` and ``chunk_timeout`` bound connecting and each
    later wait for data. Transient failures (refused, reset, 429/502/503/504) are retried
    ``max_retries`` times before any output. Other keyword arguments go to ``httpx.AsyncClient``.
    """

    kind = "openai"

    def __init__(self, provider_id: str = "openai-1", base_url: str = DEFAULT_BASE_URL,
                 timeout: float = 120, *, api_key: str | None = None,
                 connect_timeout: float = 5.0, chunk_timeout: float = 60.0,
                 max_retries: int = 2, retry_backoff: float = 0.25,
                 headers: dict[str, str] | None = None, **client_kwargs: Any) -> None:
        super().__init__(provider_id=provider_id, name="OpenAI-compatible LLM Provider",
                         description="LLM provider for OpenAI-compatible servers")
        self.base_url = normalize_base_url(base_url)
        self.timeout = timeout
        self.timeouts = Timeouts(connect=connect_timeout, first_byte=timeout, chunk=chunk_timeout,
                                 write=max(30.0, timeout))
        self.retry = RetryPolicy(retries=max_retries, backoff=retry_backoff)
        self._transport = OpenAITransport(self.base_url, self.timeouts, self.retry,
                                          headers=headers, api_key=api_key, **client_kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider_id!r} {self.base_url}>"

    health_path = "/models"
    logger = logger

    def _health(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"models": [m.get("id", "") for m in _entries(data)]}

    # -- the seam ------------------------------------------------------------------------------
    def stream_chat(self, request: ChatRequest) -> CompletionStream:
        logger.debug("chat request to %s with model %s", self.base_url, request.model)
        return CompletionStream(self._transport, build_chat_body(request), model=request.model)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        logger.debug("embed request to %s with model %s", self.base_url, request.model)
        data = await self._transport.request_json("POST", "/embeddings",
                                                  build_embed_body(request), model=request.model)
        try:
            rows = sorted(data["data"], key=lambda row: row.get("index", 0))
            vectors = [list(row["embedding"]) for row in rows]
        except (KeyError, TypeError, AttributeError):
            raise self._transport.not_json_error("/embeddings", repr(data).encode()) from None
        usage = data.get("usage") or {}
        return EmbedResult(vectors=vectors, model=data.get("model") or request.model,
                           input_tokens=usage.get("prompt_tokens"))

    async def list_models(self) -> list[ModelInfo]:
        """``/models``; capabilities are None (unknown): the API publishes no full list (a
        llama.cpp server lists input modalities, but not whether it serves embeddings)."""
        data = await self._transport.request_json("GET", "/models")
        return [_model_info(m) for m in _entries(data) if m.get("id")]

    def pull(self, model: str) -> AsyncIterator[PullEvent]:
        """Always a :class:`PullError`: this API has no way to download a model."""
        raise PullError(
            f"Cannot pull '{model}': {self._transport.server} serves the models it was started "
            "with and cannot download others. Download the model's GGUF file and restart the "
            "server with it (llama.cpp: `llama-server -m model.gguf`), or pull it on an Ollama "
            "server (host= / --host).", model=model, reason="unsupported", url=self.base_url)

    async def capacity_hint(self) -> int | None:
        """llama.cpp's slots (``total_slots`` at ``/props`` beside ``/v1``); else None."""
        slots = (await self._props()).get("total_slots")
        return slots if _positive(slots) else None

    async def context_size(self, model: str, num_ctx: int | None = None) -> ContextInfo:
        """The context per slot of a llama.cpp server (``/props``
        ``default_generation_settings.n_ctx``: the ``--ctx-size`` shared by the slots), or a
        vLLM model's ``max_model_len``; fixed when the server started, whatever ``num_ctx``."""
        props = await self._props()
        n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx", props.get("n_ctx"))
        if _positive(n_ctx):
            slots = props.get("total_slots")
            where = f"each of the server's {slots} slots" if _positive(slots) and slots > 1 \
                else "the server's context"
            return ContextInfo(n_ctx, where, adjustable=False, hint=LLAMA_CPP_HINT)
        entry = next((m for m in await self._entries() if m.get("id") == model), {})
        size = entry.get("max_model_len")
        return ContextInfo(size if _positive(size) else None, "the server's max_model_len",
                           adjustable=False, hint=FIXED_HINT)

    async def _props(self) -> dict[str, Any]:
        """llama.cpp's ``/props`` (beside ``/v1``); {} from any other server."""
        try:
            response = await self._transport.client().get(f"{self._transport.root}/props",
                                                          timeout=2.0)
            data = response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError) as exc:
            logger.debug("no /props at %s: %s", self.base_url, type(exc).__name__)
            return {}
        return data if isinstance(data, dict) else {}

    async def _entries(self) -> list[dict[str, Any]]:
        try:
            return _entries(await self._transport.request_json("GET", "/models"))
        except LLMError:
            return []


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    entries = data.get("data")
    return [m for m in entries if isinstance(m, dict)] if isinstance(entries, list) else []


def _model_info(entry: dict[str, Any]) -> ModelInfo:
    meta = entry.get("meta") or {}
    return ModelInfo(name=entry["id"], capabilities=None, size=meta.get("size") or 0,
                     context_length=meta.get("n_ctx_train"))
