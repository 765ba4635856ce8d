"""Which servers a batch or an embedding runs on, and how many requests they take at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from ..app.connections import CONNECTIONS
from ..core.errors import InvalidParamsError
from ..core.provider import BackendProvider
from .limiter import Limit, choose_limit


@dataclass(frozen=True)
class Servers:
    """``host`` and/or ``hosts`` (URLs or server names; None: the configured server), with the
    API, key variable and timeouts for each (None: the settings)."""

    host: str | None = None
    hosts: Sequence[str] | None = None
    api: str | None = None
    api_key_env: str | None = None
    timeout: float | None = None
    chunk_timeout: float | None = None

    def backends(self) -> list[BackendProvider]:
        """One backend per distinct server (shared with the magics, so connections are
        reused); all of one API, since a row's model name and replay key follow the API."""
        wanted = ([self.host] if self.host or not self.hosts else []) + list(self.hosts or [])
        backends: dict[str, BackendProvider] = {}
        for h in wanted:
            b = CONNECTIONS.backend(h, api=self.api, api_key_env=self.api_key_env,
                                    timeout=self.timeout, chunk_timeout=self.chunk_timeout)
            backends.setdefault(b.base_url, b)
        kinds = {b.kind for b in backends.values()}
        if len(kinds) > 1:
            raise InvalidParamsError(
                "The hosts of one batch must speak one API, not " + " and ".join(sorted(kinds))
                + " (give Ollama servers their /v1 URL to use them with OpenAI-compatible ones).",
                param="hosts")
        return list(backends.values())


async def capacity(backends: Sequence[BackendProvider], concurrency: int | None) -> Limit:
    """The limit (see ``limiter``); each backend's hint is kept for the registry's choice."""
    hints = await asyncio.gather(*(b.capacity_hint() for b in backends)) \
        if concurrency is None else [None] * len(backends)
    for b, hint in zip(backends, hints):
        b.capacity = hint
    return choose_limit(concurrency, list(hints))
