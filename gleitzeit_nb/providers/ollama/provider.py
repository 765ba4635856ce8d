"""``OllamaProvider``: the ``llm/v1`` protocol on Ollama's native HTTP API."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from ...core.errors import InvalidParamsError, LLMError
from ...core.provider import ProtocolProvider
from .host import host_from_env, parse_host
from .payload import build_chat_body, build_embed_body, build_options
from .stream import ChatStream
from .transport import OllamaTransport, RetryPolicy, Timeouts

logger = logging.getLogger("gleitzeit_nb.providers.ollama")


@dataclass
class ModelInfo:
    """An installed model with what it can do and whether it is loaded."""

    name: str
    size: int = 0
    family: str = ""
    parameter_size: str = ""
    quantization: str = ""
    capabilities: list[str] = field(default_factory=list)
    loaded: bool = False
    context_length: int | None = None
    digest: str = ""


class OllamaProvider(ProtocolProvider):
    """Provider for an Ollama server: chat, vision and embed, streamed or not.

    ``base_url=None`` reads ``OLLAMA_HOST`` like Ollama's own tools. ``timeout`` is the time
    allowed for a reply to start (model load included) and for sending the request (at least
    30 s); ``connect_timeout`` and
    ``chunk_timeout`` bound connecting and each later wait for data. Transient failures
    (refused, reset, 429/502/503/504) are retried ``max_retries`` times before any output.
    """

    def __init__(self, provider_id: str = "ollama-1", base_url: str | None = None,
                 timeout: float = 120, *, connect_timeout: float = 5.0,
                 chunk_timeout: float = 60.0, max_retries: int = 2, retry_backoff: float = 0.25,
                 headers: dict[str, str] | None = None, **client_kwargs: Any) -> None:
        super().__init__(
            provider_id=provider_id,
            protocol_id="llm/v1",
            name="Ollama LLM Provider",
            description="LLM provider using Ollama backend",
        )
        self.base_url = parse_host(base_url) if base_url else host_from_env()
        self.timeout = timeout
        # Sending (a large image over a slow link) may take as long as a reply may take to start.
        self.timeouts = Timeouts(connect=connect_timeout, first_byte=timeout, chunk=chunk_timeout,
                                 write=max(30.0, timeout))
        self.retry = RetryPolicy(retries=max_retries, backoff=retry_backoff)
        self._transport = OllamaTransport(self.base_url, self.timeouts, self.retry,
                                          headers=headers, **client_kwargs)

    # -- lifecycle -----------------------------------------------------------------------------
    async def initialize(self) -> None:
        """Open the pool and log whether the server answers (an absent server is not fatal)."""
        status = await self.health_check()
        if status["healthy"]:
            logger.info("Ollama %s available at %s", status.get("version"), self.base_url)
        else:
            logger.warning("Ollama not reachable: %s", status["error"])
        await super().initialize()

    async def shutdown(self) -> None:
        await self._transport.aclose()
        await super().shutdown()

    async def health_check(self) -> dict[str, Any]:
        try:
            data = await self._transport.request_json("GET", "/api/version", retry=False)
        except LLMError as exc:
            return {"healthy": False, "url": self.base_url, "error": str(exc)}
        return {"healthy": True, "url": self.base_url, "version": data.get("version")}

    # -- protocol methods ----------------------------------------------------------------------
    async def handle_request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run ``chat``, ``vision`` or ``embed`` (``llm/`` prefix optional) to completion.

        Chat replies are always read as a stream, whatever ``stream`` says, so the per-chunk
        timeout applies and a broken stream keeps its partial text on the error.
        """
        name = self.validate_params(method, params)
        if name == "embed":
            return await self._embed(params)
        stream = self._open_stream(name, params)
        await stream.collect()
        return self._result(name, params, stream)

    def stream_request(self, method: str, params: dict[str, Any]) -> ChatStream:
        """A streamed ``chat`` / ``vision`` reply; ``await`` it to connect before iterating.

        Parameter and image errors raise here, before any request.
        """
        name = self.validate_params(method, params)
        if name == "embed":
            raise InvalidParamsError("embed does not stream; use handle_request('embed', …).",
                                     param="method")
        return self._open_stream(name, params)

    def _open_stream(self, name: str, params: dict[str, Any]) -> ChatStream:
        body = build_chat_body(name, params, stream=True)
        logger.debug("%s request to %s with model %s", name, self.base_url, params["model"])
        return ChatStream(self._transport, body, model=params["model"])

    async def _embed(self, params: dict[str, Any]) -> dict[str, Any]:
        logger.debug("embed request to %s with model %s", self.base_url, params["model"])
        data = await self._transport.request_json("POST", "/api/embed", build_embed_body(params),
                                                  model=params["model"])
        return {
            "embeddings": data.get("embeddings", []),
            "model": data.get("model", params["model"]),
            "total_duration": data.get("total_duration"),
            "prompt_eval_count": data.get("prompt_eval_count"),
        }

    @staticmethod
    def _result(name: str, params: dict[str, Any], stream: ChatStream) -> dict[str, Any]:
        stats = stream.stats
        result = {
            "response": stream.text,
            "model": stats.get("model", params["model"]),
            "total_duration": stats.get("total_duration"),
            "tokens_used": stats.get("eval_count") or 0,
            "done_reason": stats.get("done_reason"),
            "prompt_eval_count": stats.get("prompt_eval_count"),
            "eval_count": stats.get("eval_count"),
            "eval_duration": stats.get("eval_duration"),
            "load_duration": stats.get("load_duration"),
        }
        if params.get("think"):
            result["thinking"] = stream.thinking
        if name == "vision" and params.get("image_path") is not None:
            result["image_analyzed"] = params["image_path"]
        return result

    # -- models --------------------------------------------------------------------------------
    async def list_models(self) -> list[str]:
        """Names of the installed models."""
        data = await self._transport.request_json("GET", "/api/tags")
        return [m["name"] for m in data.get("models", [])]

    async def show_model(self, name: str) -> dict[str, Any]:
        """``/api/show`` for one model: details, model_info, capabilities…"""
        return await self._transport.request_json("POST", "/api/show", {"model": name}, model=name)

    async def running_models(self) -> list[dict[str, Any]]:
        """The models loaded in memory now (``/api/ps``)."""
        data = await self._transport.request_json("GET", "/api/ps")
        return list(data.get("models", []))

    async def models_info(self) -> list[ModelInfo]:
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

    # -- the design guide's helpers ------------------------------------------------------------
    def _build_options(self, params: dict[str, Any]) -> dict[str, Any]:
        """Ollama ``options`` from named parameters (temperature, top_k, … max_tokens)."""
        return build_options(params)

    async def _retry_request(self, method: str, params: dict[str, Any],
                             max_retries: int = 3) -> dict[str, Any]:
        """``handle_request`` with up to ``max_retries`` attempts for retryable errors only."""
        attempts = max(1, max_retries)
        for attempt in range(attempts):
            try:
                return await self.handle_request(method, params)
            except LLMError as exc:
                if not exc.retryable or attempt == attempts - 1:
                    raise
                delay = self.retry.delay(attempt)
                logger.warning("%s failed (%s); attempt %d/%d, retrying in %.2fs", method,
                               type(exc).__name__, attempt + 1, attempts, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")
