"""Backends per server for this process, cached model facts, and model choice.

A single instance (``CONNECTIONS``) serves the magics, ``chat()``, the panels, ``batch()`` and
``embed()``, so they share connection pools and the model list.
"""

from __future__ import annotations

import hashlib
import logging
import time

from ..core.backend import ContextInfo, ModelInfo
from ..core.errors import InvalidParamsError, LLMError, ModelNotFoundError, ProviderUnavailableError
from ..core.provider import BackendProvider
from ..core.secret import Secret, as_secret
from ..providers.servers import open_backend
from .sessions import SessionStore
from .settings import SETTINGS, Server, Settings, api_key

logger = logging.getLogger(__name__)

#: What a capability is called in messages.
CAPABILITY_NAMES = {"completion": "chat", "vision": "vision", "embedding": "embedding"}


class Connections:
    """One backend per (server, API, key, timeouts), the session store, cached model lists."""

    def __init__(self, settings: Settings = SETTINGS) -> None:
        self.settings = settings
        self._backends: dict[tuple[object, ...], BackendProvider] = {}
        self._models: dict[str, tuple[float, list[ModelInfo]]] = {}
        self._contexts: dict[tuple[object, ...], tuple[float, ContextInfo | None]] = {}
        self.sessions = SessionStore()

    def backend(self, host: str | None = None, *, api: str | None = None,
                api_key_env: str | None = None, key: str | Secret | None = None,
                timeout: float | None = None,
                chunk_timeout: float | None = None) -> BackendProvider:
        """The backend for ``host`` (a URL or a server name; None: the configured one).

        ``key`` (an API key given in Python code) wins over ``api_key_env``.
        """
        s = self.settings
        server: Server = s.server(host, api=api, api_key_env=api_key_env)
        secret = as_secret(key) or api_key(server)
        timeout = s.timeout if timeout is None else timeout
        chunk_timeout = s.chunk_timeout if chunk_timeout is None else chunk_timeout
        # the key's hash, never the key, in a dict that a debugger may print
        digest = hashlib.sha256(secret.reveal().encode()).hexdigest() if secret else ""
        cache_key = (server.url, server.api, digest, float(timeout), float(chunk_timeout))
        backend = self._backends.get(cache_key)
        if backend is None:
            backend = open_backend(server.url or None, api=server.api, api_key=secret,
                                   timeout=timeout, chunk_timeout=chunk_timeout)
            self._backends[cache_key] = backend
        return backend

    async def models(self, backend: BackendProvider, *, max_age: float = 30.0) -> list[ModelInfo]:
        """The server's models, cached for ``max_age`` seconds."""
        cached = self._models.get(backend.base_url)
        if cached and time.monotonic() - cached[0] < max_age:
            return cached[1]
        infos = await backend.list_models()
        self._models[backend.base_url] = (time.monotonic(), infos)
        return infos

    async def context_size(self, backend: BackendProvider, model: str,
                           num_ctx: int | None = None, *,
                           max_age: float = 30.0) -> ContextInfo | None:
        """The context a request for ``model`` gets (cached like the models); None when the
        server does not say or cannot be asked (the request itself will report that)."""
        key = (backend.base_url, model, num_ctx)
        cached = self._contexts.get(key)
        if cached and time.monotonic() - cached[0] < max_age:
            return cached[1]
        try:
            info = await backend.context_size(model, num_ctx)
        except LLMError as exc:  # (cached too: a batch's rows do not all ask again)
            logger.debug("no context size from %s for %s: %s", backend.base_url, model, exc)
            info = None
        self._contexts[key] = (time.monotonic(), info)
        return info

    async def pick_model(self, backend: BackendProvider, capability: str) -> str:
        """A model that can do ``capability``: known-capable and loaded first, then known-capable,
        then one whose capabilities the server does not publish."""
        from .. import replay

        try:
            infos = await self.models(backend)
        except ProviderUnavailableError as exc:
            if replay.current().mode != "replay":
                raise
            raise InvalidParamsError(
                "No model is named, and with no server none can be picked. In replay mode name "
                "the model the answers were recorded with: -m MODEL, %config LLMMagics.model = "
                f"'…', or model=. ({exc.message})", param="model") from None
        ranked = sorted((i for i in infos if i.can(capability) is not False),
                        key=lambda i: (i.can(capability) is not True, not i.loaded))
        if not ranked:
            suggestion = backend.suggest_model(capability)
            raise ModelNotFoundError(
                suggestion[0] if suggestion else "", url=backend.base_url,
                installed=[i.name for i in infos], job=CAPABILITY_NAMES.get(capability, capability),
                install_hint=suggestion[1] if suggestion else "",
                pullable=backend.can_pull and suggestion is not None)
        return ranked[0].name

    async def capable_models(self, backend: BackendProvider, model: str,
                             capability: str) -> list[str] | None:
        """None if ``model`` can do ``capability`` (or nobody knows); else the models that can."""
        try:
            infos = await self.models(backend)
        except LLMError:
            return None  # the request itself will say what is wrong
        wanted = backend.canonical_model(model)
        info = next((i for i in infos if backend.canonical_model(i.name) == wanted), None)
        if info is None or info.can(capability) is not False:
            return None
        return [i.name for i in infos if i.can(capability)]


CONNECTIONS = Connections()
