"""``ProtocolProvider``: the base every provider builds on (identity, lifecycle, validation)."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from typing import Any

from . import protocol as _protocol
from .protocol import LLM_PROTOCOL_V1

KNOWN_PROTOCOLS: dict[str, dict[str, Any]] = {LLM_PROTOCOL_V1["id"]: LLM_PROTOCOL_V1}


class ProtocolProvider(abc.ABC):
    """A server-backed implementation of one protocol.

    Use as ``async with provider: …`` or call ``initialize()`` / ``shutdown()`` yourself.
    ``in_flight`` counts running requests; the registry uses it to spread load.
    """

    def __init__(self, provider_id: str, protocol_id: str, name: str, description: str = "",
                 protocol_spec: dict[str, Any] | None = None) -> None:
        self.provider_id = provider_id
        self.protocol_id = protocol_id
        self.name = name
        self.description = description
        self.protocol_spec = protocol_spec or KNOWN_PROTOCOLS.get(protocol_id)
        self.is_initialized = False
        self.in_flight = 0

    async def initialize(self) -> None:
        """Acquire resources; subclasses call ``super().initialize()`` last."""
        self.is_initialized = True

    async def shutdown(self) -> None:
        """Release resources; safe to call twice."""
        self.is_initialized = False

    async def health_check(self) -> dict[str, Any]:
        """``{"healthy": bool, …}``; the base class only reports its lifecycle state."""
        return {"healthy": self.is_initialized, "provider_id": self.provider_id}

    @abc.abstractmethod
    async def handle_request(self, method: str, params: dict[str, Any]) -> Any:
        """Run one protocol method and return its result."""

    async def __aenter__(self) -> "ProtocolProvider":
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    def get_supported_methods(self) -> list[str]:
        return list(self.protocol_spec["methods"]) if self.protocol_spec else []

    def get_required_params(self, method: str) -> list[str]:
        if not self.protocol_spec:
            return []
        return _protocol.required_params(self.protocol_spec, method)

    def validate_params(self, method: str, params: dict[str, Any]) -> str:
        """Validate against the protocol spec; return the bare method name."""
        if not self.protocol_spec:
            return method
        return _protocol.validate_params(self.protocol_spec, method, params)

    @contextlib.contextmanager
    def track_request(self) -> Iterator[None]:
        """Count a request as in flight for the duration of the block."""
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider_id!r} protocol={self.protocol_id!r}>"
