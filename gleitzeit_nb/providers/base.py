"""``HttpProvider``: the lifecycle every HTTP backend shares (pool, health, logging)."""

from __future__ import annotations

import logging
from typing import Any

from ..core.errors import LLMError
from ..core.provider import BackendProvider
from .http import HttpTransport


class HttpProvider(BackendProvider):
    """A ``BackendProvider`` talking to its server through ``_transport``.

    A subclass sets ``_transport``, ``health_path`` (a cheap GET that only the right kind of
    server answers) and ``_health`` (the facts worth logging from its reply).
    """

    _transport: HttpTransport
    health_path = ""
    logger = logging.getLogger("gleitzeit_nb.providers")

    def _health(self, data: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def initialize(self) -> None:
        """Open the pool and log whether the server answers (an absent server is not fatal)."""
        status = await self.health_check()
        if status["healthy"]:
            facts = ", ".join(f"{k} {v}" for k, v in status.items()
                              if k not in ("healthy", "url"))
            self.logger.info("%s answers%s", self._transport.server,
                             f" ({facts})" if facts else "")
        else:
            self.logger.warning("%s not reachable: %s", self._transport.server, status["error"])
        await super().initialize()

    async def shutdown(self) -> None:
        await self._transport.aclose()
        await super().shutdown()

    async def health_check(self) -> dict[str, Any]:
        try:
            data = await self._transport.request_json("GET", self.health_path, retry=False)
        except LLMError as exc:
            return {"healthy": False, "url": self.base_url, "error": str(exc)}
        return {"healthy": True, "url": self.base_url, **self._health(data)}
