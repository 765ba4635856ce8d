"""``OllamaProvider``: the ``llm/v1`` protocol on Ollama's native HTTP API."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from ...core.backend import ChatRequest, ContextInfo, EmbedRequest, EmbedResult, ModelInfo
from ...core.errors import InvalidParamsError
from ...core.pull import PullEvent
from ..base import HttpProvider
from ...core.secret import Secret
from .context import context_info
from .host import host_from_env, is_loopback, parse_host
from .payload import build_chat_body, build_embed_body
from .pull import pull_events
from .stream import ChatStream
from .transport import OllamaTransport, RetryPolicy, Timeouts

logger = logging.getLogger("gleitzeit_nb.providers.ollama")

#: What to pull when a server has no model for a job.
_SUGGESTED = {"completion": "llama3.2", "vision": "llava", "embedding": "nomic-embed-text"}


class OllamaProvider(HttpProvider):
    """Provider for an Ollama server: chat, vision and embed, streamed or not.

    ``base_url=None`` reads ``OLLAMA_HOST`` like Ollama's own tools. ``timeout`` is the time
    allowed for a reply to start (model load included) and for sending the request (at least
    30 s); ``connect_timeout`` and ``chunk_timeout`` bound connecting and each later wait for
    data. Transient failures (refused, reset, 429/502/503/504) are retried ``max_retries``
    times before any output. ``api_key`` (an Ollama behind an authenticating proxy) is sent as a
    bearer token to this server only and never shown.
    """

    kind = "ollama"
    can_pull = True

    def __init__(self, provider_id: str = "ollama-1", base_url: str | None = None,
                 timeout: float = 120, *, connect_timeout: float = 5.0,
                 chunk_timeout: float = 60.0, max_retries: int = 2, retry_backoff: float = 0.25,
                 headers: dict[str, str] | None = None, api_key: str | Secret | None = None,
                 **client_kwargs: Any) -> None:
        super().__init__(provider_id=provider_id, name="Ollama LLM Provider",
                         description="LLM provider using Ollama backend")
        self.base_url = parse_host(base_url) if base_url else host_from_env()
        self.timeout = timeout
        # Sending (a large image over a slow link) may take as long as a reply may take to start.
        self.timeouts = Timeouts(connect=connect_timeout, first_byte=timeout, chunk=chunk_timeout,
                                 write=max(30.0, timeout))
        self.retry = RetryPolicy(retries=max_retries, backoff=retry_backoff)
        self._transport = OllamaTransport(self.base_url, self.timeouts, self.retry,
                                          headers=headers, api_key=api_key, **client_kwargs)

    health_path = "/api/version"
    logger = logger

    def _health(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"version": data.get("version")}

    # -- the seam ------------------------------------------------------------------------------
    def stream_chat(self, request: ChatRequest) -> ChatStream:
        logger.debug("chat request to %s with model %s", self.base_url, request.model)
        return ChatStream(self._transport, build_chat_body(request), model=request.model)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        logger.debug("embed request to %s with model %s", self.base_url, request.model)
        data = await self._transport.request_json("POST", "/api/embed",
                                                  build_embed_body(request), model=request.model)
        return EmbedResult(vectors=data.get("embeddings", []),
                           model=data.get("model", request.model),
                           input_tokens=data.get("prompt_eval_count"))

    def pull(self, model: str) -> AsyncIterator[PullEvent]:
        """Download ``model`` from Ollama's registry (``/api/pull``), with progress."""
        if not isinstance(model, str) or not model.strip():
            raise InvalidParamsError("Name the model to pull, e.g. 'llama3.2'.", param="model")
        logger.debug("pull request to %s for model %s", self.base_url, model)
        return pull_events(self._transport, model.strip())

    def canonical_model(self, name: str) -> str:
        """``llama3.2`` → ``llama3.2:latest``; a tag (or a registry port before a ``/``) is kept."""
        name = name.strip()
        return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"

    def suggest_model(self, capability: str) -> tuple[str, str] | None:
        name = _SUGGESTED.get(capability)
        return (name, f"`ollama pull {name}`") if name else None

    async def capacity_hint(self) -> int | None:
        """``OLLAMA_NUM_PARALLEL`` from this environment, for a loopback server (a local
        server started from the same environment reads the same variable); else unknown."""
        value = os.environ.get("OLLAMA_NUM_PARALLEL", "").strip()
        if not (value and is_loopback(self.base_url)):
            return None
        try:
            return int(value) if int(value) > 0 else None
        except ValueError:
            return None

    async def context_size(self, model: str, num_ctx: int | None = None) -> ContextInfo:
        """From ``/api/show`` and ``/api/ps`` (see :mod:`.context` for Ollama's rules)."""
        show, running = await asyncio.gather(self.show_model(model), self.running_models())
        return context_info(show, running, model, self.base_url, num_ctx)

    # -- models --------------------------------------------------------------------------------
    async def show_model(self, name: str) -> dict[str, Any]:
        """``/api/show`` for one model: details, model_info, capabilities…"""
        return await self._transport.request_json("POST", "/api/show", {"model": name}, model=name)

    async def running_models(self) -> list[dict[str, Any]]:
        """The models loaded in memory now (``/api/ps``)."""
        data = await self._transport.request_json("GET", "/api/ps")
        return list(data.get("models", []))

    async def list_models(self) -> list[ModelInfo]:
        """Every installed model with capabilities, size, family and loaded state."""
        tags, running = await asyncio.gather(
            self._transport.request_json("GET", "/api/tags"), self.running_models())
        models = tags.get("models", [])
        shows = await asyncio.gather(*(self.show_model(m["name"]) for m in models),
                                     return_exceptions=True)
        loaded = {m.get("name") for m in running}
        infos = []
        for m, show in zip(models, shows):
            show = show if isinstance(show, dict) else {}
            details = m.get("details") or {}
            ctx = next((v for k, v in (show.get("model_info") or {}).items()
                        if k.endswith(".context_length")), None)
            infos.append(ModelInfo(
                name=m["name"], size=m.get("size", 0), family=details.get("family", ""),
                parameter_size=details.get("parameter_size", ""),
                quantization=details.get("quantization_level", ""),
                capabilities=list(show.get("capabilities") or []),
                loaded=m["name"] in loaded, context_length=ctx, digest=m.get("digest", "")))
        return infos
