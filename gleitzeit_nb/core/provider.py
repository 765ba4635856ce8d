"""``ProtocolProvider``: the base every provider builds on (identity, lifecycle, validation).

``BackendProvider`` is a ``ProtocolProvider`` whose ``llm/v1`` methods run on the backend seam
(:mod:`.backend`): a server API implements ``stream_chat``, ``embed``, ``list_models``,
``capacity_hint``, ``context_size`` and ``aclose`` (and ``pull`` where it can download
models), and gets ``handle_request`` / ``stream_request`` for free.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from . import protocol as _protocol
from .backend import ChatRequest, ContextInfo, EmbedRequest, EmbedResult, ModelInfo
from .errors import InvalidParamsError, PullError
from .protocol import LLM_PROTOCOL_V1
from .pull import PullEvent
from .reply_stream import ReplyStream
from .requests import chat_request, chat_result, embed_request, embed_result

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
        #: Requests the server runs at once, when known; the registry spreads load by it.
        self.capacity: int | None = None

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


class BackendProvider(ProtocolProvider):
    """An ``llm/v1`` provider on one server API (see the module docstring)."""

    #: The API this provider speaks ("ollama", "openai"); replay keys name it.
    kind: str = ""
    base_url: str = ""
    #: Whether ``pull`` can download models onto this server.
    can_pull: bool = False

    def __init__(self, provider_id: str, name: str, description: str = "") -> None:
        super().__init__(provider_id=provider_id, protocol_id=LLM_PROTOCOL_V1["id"], name=name,
                         description=description)

    # -- the seam ------------------------------------------------------------------------------
    @abc.abstractmethod
    def stream_chat(self, request: ChatRequest) -> ReplyStream:
        """A streamed reply; ``await`` it to connect before iterating."""

    @abc.abstractmethod
    async def embed(self, request: EmbedRequest) -> EmbedResult:
        """One vector per input text."""

    @abc.abstractmethod
    async def list_models(self) -> list[ModelInfo]:
        """The models the server offers, with capabilities when it publishes them."""

    async def capacity_hint(self) -> int | None:
        """Requests the server runs at once, when it says; None: unknown."""
        return None

    async def context_size(self, model: str, num_ctx: int | None = None) -> ContextInfo | None:
        """The context size a chat request to ``model`` gets (``num_ctx``: the size the request
        asks for, where the API takes one); None: unknown."""
        return None

    async def aclose(self) -> None:
        """Close connections (the seam's name for ``shutdown``)."""
        await self.shutdown()

    def canonical_model(self, name: str) -> str:
        """The one spelling of a model name on this API (replay keys and lookups use it)."""
        return name.strip()

    def pull(self, model: str) -> AsyncIterator[PullEvent]:
        """Download ``model`` onto the server: progress events (:mod:`.pull`) up to "success".
        Closing the iterator stops the download; the server keeps what it has, so a later pull
        resumes. A server that cannot download models raises :class:`PullError` here."""
        raise PullError(f"Cannot pull '{model}': the server at {self.base_url} cannot download "
                        "models; put the model where the server loads models from and restart "
                        "it.", model=model, reason="unsupported", url=self.base_url)

    def suggest_model(self, capability: str) -> tuple[str, str] | None:
        """A model to get for ``capability`` and how (``("llava", "`ollama pull llava`")``),
        where the server can install models; None where it serves what it was started with."""
        return None

    # -- the llm/v1 façade ---------------------------------------------------------------------
    async def handle_request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run ``chat``, ``vision`` or ``embed`` (``llm/`` prefix optional) to completion.

        Chat replies are always read as a stream, whatever ``stream`` says, so the per-chunk
        timeout applies and a broken stream keeps its partial text on the error.
        """
        name = self.validate_params(method, params)
        if name == "embed":
            return embed_result(await self.embed(embed_request(params)))
        stream = self.stream_chat(chat_request(name, params))
        await stream.collect()
        return chat_result(name, params, stream)

    def stream_request(self, method: str, params: dict[str, Any]) -> ReplyStream:
        """A streamed ``chat`` / ``vision`` reply; ``await`` it to connect before iterating.

        Parameter and image errors raise here, before any request.
        """
        name = self.validate_params(method, params)
        if name == "embed":
            raise InvalidParamsError("embed does not stream; use handle_request('embed', …).",
                                     param="method")
        return self.stream_chat(chat_request(name, params))
