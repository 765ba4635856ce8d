"""``ProtocolProviderRegistry``: protocols, the providers serving them, and which one to use."""

from __future__ import annotations

import logging
from typing import Any

from .errors import LLMError
from .provider import ProtocolProvider

logger = logging.getLogger(__name__)


class RegistryError(LLMError, LookupError):
    """A protocol or provider is not registered (or registered twice)."""


class ProtocolProviderRegistry:
    """Holds protocol specs and providers; picks a provider per request.

    Selection policy: providers marked healthy first, then the fewest requests in flight,
    then registration order.
    """

    def __init__(self) -> None:
        self._protocols: dict[str, dict[str, Any]] = {}
        self._providers: dict[str, ProtocolProvider] = {}
        self._protocol_of: dict[str, str] = {}
        self._healthy: dict[str, bool] = {}

    def register_protocol(self, spec: dict[str, Any]) -> None:
        if "id" not in spec or "methods" not in spec:
            raise RegistryError("A protocol spec needs an 'id' and 'methods' (see LLM_PROTOCOL_V1).")
        self._protocols[spec["id"]] = spec

    def get_protocol(self, protocol_id: str) -> dict[str, Any]:
        try:
            return self._protocols[protocol_id]
        except KeyError:
            raise RegistryError(
                f"Protocol '{protocol_id}' is not registered; call "
                f"registry.register_protocol(spec) first (known: {', '.join(self._protocols) or 'none'})."
            ) from None

    def register_provider(self, provider_id: str, protocol_id: str,
                          provider_instance: ProtocolProvider) -> None:
        spec = self.get_protocol(protocol_id)
        if provider_id in self._providers:
            raise RegistryError(f"A provider with id '{provider_id}' is already registered; "
                                "unregister it first or choose another id.")
        if provider_instance.protocol_spec is None:
            provider_instance.protocol_spec = spec
        self._providers[provider_id] = provider_instance
        self._protocol_of[provider_id] = protocol_id
        self._healthy[provider_id] = True
        logger.debug("registered provider %s for %s", provider_id, protocol_id)

    def unregister_provider(self, provider_id: str) -> ProtocolProvider:
        provider = self.get_provider(provider_id)
        del self._providers[provider_id], self._protocol_of[provider_id], self._healthy[provider_id]
        return provider

    def get_provider(self, provider_id: str) -> ProtocolProvider:
        try:
            return self._providers[provider_id]
        except KeyError:
            raise RegistryError(f"No provider with id '{provider_id}' is registered.") from None

    def get_providers(self, protocol_id: str) -> list[ProtocolProvider]:
        return [p for pid, p in self._providers.items() if self._protocol_of[pid] == protocol_id]

    def mark_health(self, provider_id: str, healthy: bool) -> None:
        if provider_id in self._healthy:
            self._healthy[provider_id] = healthy

    def is_healthy(self, provider_id: str) -> bool:
        return self._healthy.get(provider_id, False)

    async def check_health(self) -> dict[str, dict[str, Any]]:
        """Run every provider's ``health_check`` and record the outcome."""
        report = {}
        for pid, provider in list(self._providers.items()):  # (un)registering may go on meanwhile
            try:
                status = await provider.health_check()
            except Exception as exc:  # a failing check means unhealthy, whatever it raised
                status = {"healthy": False, "error": str(exc)}
            if self._providers.get(pid) is provider:
                self._healthy[pid] = bool(status.get("healthy"))
            report[pid] = status
        return report

    def select_provider(self, protocol_id: str,
                        exclude: set[str] | frozenset[str] = frozenset()) -> ProtocolProvider:
        """The provider to use next for ``protocol_id`` under the selection policy."""
        self.get_protocol(protocol_id)
        candidates = [(pid, p) for pid, p in self._providers.items()
                      if self._protocol_of[pid] == protocol_id and pid not in exclude]
        if not candidates:
            raise RegistryError(
                f"No provider is registered for protocol '{protocol_id}'"
                + (" (all failed)" if exclude else "")
                + "; register one with registry.register_provider(provider_id=…, "
                  f"protocol_id='{protocol_id}', provider_instance=…)."
            )
        order = {pid: i for i, (pid, _) in enumerate(candidates)}
        pid, provider = min(
            candidates,
            key=lambda c: (not self._healthy[c[0]], c[1].in_flight / (c[1].capacity or 1),
                           order[c[0]]),
        )
        return provider
