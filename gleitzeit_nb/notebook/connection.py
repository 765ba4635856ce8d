"""Providers per server for the notebook, default models, and the streaming pipeline."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..core.errors import (InvalidParamsError, LLMError, ModelNotFoundError,
                           ProviderUnavailableError, StreamError)
from ..providers import OllamaProvider
from ..providers.ollama import ModelInfo, host_from_env, parse_host
from .display import ReplyDisplay
from .replies import Reply
from .sessions import SessionStore

#: What to pull when a server has no model for a job.
PULL_HINTS = {"completion": "llama3.2", "vision": "llava", "embedding": "nomic-embed-text"}


class Connections:
    """One provider per (host, timeout), the session store, and cached model facts.

    A single instance serves the magics, ``gleitzeit_nb.chat`` and the widget panels of a kernel.
    """

    def __init__(self) -> None:
        self._providers: dict[tuple[str, float], OllamaProvider] = {}
        self._models: dict[str, tuple[float, list[ModelInfo]]] = {}
        self.sessions = SessionStore()

    def provider(self, host: str | None = None, timeout: float = 120) -> OllamaProvider:
        url = parse_host(host) if host else host_from_env()
        key = (url, float(timeout))
        if key not in self._providers:
            self._providers[key] = OllamaProvider(provider_id=f"ollama@{url}", base_url=url,
                                                  timeout=timeout)
        return self._providers[key]

    async def models(self, provider: OllamaProvider, *, max_age: float = 30.0) -> list[ModelInfo]:
        """The server's models with capabilities, cached for ``max_age`` seconds."""
        cached = self._models.get(provider.base_url)
        if cached and time.monotonic() - cached[0] < max_age:
            return cached[1]
        infos = await provider.models_info()
        self._models[provider.base_url] = (time.monotonic(), infos)
        return infos

    async def pick_model(self, provider: OllamaProvider, capability: str) -> str:
        """A model with ``capability``: a loaded one first, else the first installed."""
        try:
            infos = [i for i in await self.models(provider) if capability in i.capabilities]
        except ProviderUnavailableError as exc:
            from .. import replay

            if replay.current().mode != "replay":
                raise
            raise InvalidParamsError(
                "No model is named, and with no server none can be picked. In replay mode name "
                "the model the answers were recorded with: -m MODEL, %config LLMMagics.model = "
                f"'…', or model=. ({exc.message})", param="model") from None
        if not infos:
            raise ModelNotFoundError(
                PULL_HINTS.get(capability, "a model"), url=provider.base_url,
                installed=[i.name for i in await self.models(provider)])
        return next((i.name for i in infos if i.loaded), infos[0].name)

    async def missing_capability(self, provider: OllamaProvider, model: str,
                                 capability: str) -> list[str] | None:
        """None if ``model`` has ``capability``; else the installed models that do."""
        try:
            show = await provider.show_model(model)
        except LLMError:
            return None  # the request itself will say what is wrong
        if capability in (show.get("capabilities") or [capability]):
            return None
        return [i.name for i in await self.models(provider) if capability in i.capabilities]


async def stream_reply(provider: OllamaProvider, method: str, params: dict[str, Any],
                       display: ReplyDisplay) -> Reply:
    """Stream a reply into ``display``; on any failure the partial text stays on screen.

    Interrupts and cancellation mark the display interrupted and propagate; errors after the
    stream began carry the partial text (``StreamError.partial``).
    """
    display.start()
    ticker = asyncio.ensure_future(_tick(display)) if getattr(display, "mode", "") == "live" \
        else None
    stream = None
    try:
        stream = await provider.stream_request(method, params)
        async for chunk in stream:
            display.add(chunk.content, chunk.thinking)
    except (KeyboardInterrupt, asyncio.CancelledError):
        display.finish(stats=None, status="interrupted")
        raise
    except LLMError as exc:
        note = exc.message.split(". ")[0] if isinstance(exc, StreamError) else ""
        display.finish(stats=None, status="error", note=note or str(exc))
        raise
    finally:
        if ticker is not None:
            ticker.cancel()
        if stream is not None:
            await stream.aclose()
    display.finish(stats=stream.stats, status="done")
    return Reply(stream.text, thinking=stream.thinking, stats=stream.stats,
                 model=stream.stats.get("model") or params["model"], status="done")


async def _tick(display: ReplyDisplay) -> None:
    """Age the 'waiting for the model' line; once text flows, show what the throttle held back
    when the stream pauses (a slow token, a stall) instead of waiting for the next chunk."""
    while True:
        await asyncio.sleep(display.min_interval)
        display.tick()


CONNECTIONS = Connections()
