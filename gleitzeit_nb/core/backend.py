"""The backend seam's types: what every server API takes and gives, backend-neutral.

Everything above ``providers/`` (sessions, magics, panels, batch, replay) talks to a server only
through a :class:`~gleitzeit_nb.core.provider.BackendProvider`, which each API subclasses::

    kind                         "ollama" | "openai": the API (replay keys name it, never the host)
    base_url                     where the server is
    stream_chat(ChatRequest)  -> ReplyStream   (await it to connect; async-iterate StreamChunks)
    await embed(EmbedRequest) -> EmbedResult
    await list_models()       -> [ModelInfo]   (capabilities None when the server does not say)
    await capacity_hint()     -> int | None    (parallel slots, when the server publishes them)
    await context_size(model, num_ctx=None) -> ContextInfo | None   (the context a request gets)
    pull(model)               -> async iterator of PullEvent (see .pull; only where can_pull)
    await aclose()

Requests and usage name no server's option or stats keys: ``max_tokens``, ``input_tokens``,
``output_tokens``, ``finish_reason`` and timings in seconds. Options only one API knows
(Ollama's ``num_ctx``, ``keep_alive``, a raw ``options`` dict) travel in ``extra``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .reply_stream import ReplyStream, StreamChunk

__all__ = ["ChatRequest", "ContextInfo", "EmbedRequest", "EmbedResult", "ModelInfo", "ReplyStream",
           "StreamChunk", "ToolCall", "Usage", "SAMPLING"]

#: Sampling settings every API takes by these names (one table; replay keys use it too).
SAMPLING = ("temperature", "max_tokens", "top_k", "top_p", "repeat_penalty", "seed", "stop")


@dataclass(slots=True)
class ToolCall:
    """A function call the model asked for.

    ``arguments`` is the decoded JSON when it parses; otherwise the raw text as sent, with
    ``arguments_error`` saying why it did not parse. In a message's ``tool_calls`` a call may be
    a ToolCall, a neutral dict (``name``, ``arguments``, ``id``) or either API's
    ``{"id", "function": {"name", "arguments"}}``; :meth:`of` reads all three.
    """

    name: str
    arguments: Any = None
    id: str | None = None
    arguments_error: str | None = None

    @classmethod
    def parsed(cls, name: str, arguments: Any, id: str | None = None) -> "ToolCall":
        """A call whose ``arguments`` may be JSON text (decoded here) or already an object."""
        if not isinstance(arguments, str):
            return cls(name=name, arguments=arguments, id=id)
        if not arguments.strip():
            return cls(name=name, arguments={}, id=id)
        try:
            decoded = json.loads(arguments)
            if isinstance(decoded, str) and decoded.lstrip().startswith("{"):
                decoded = json.loads(decoded)  # some models encode the arguments twice
            return cls(name=name, arguments=decoded, id=id)
        except ValueError as exc:
            return cls(name=name, arguments=arguments, id=id,
                       arguments_error=f"not valid JSON: {exc}")

    @classmethod
    def of(cls, call: Any) -> "ToolCall":
        """A ToolCall from any of the shapes a message's ``tool_calls`` may hold."""
        if isinstance(call, ToolCall):
            return call
        if not isinstance(call, dict):
            raise TypeError(f"a tool call must be a dict or ToolCall, not {type(call).__name__}")
        function = call.get("function")
        source = function if isinstance(function, dict) else call
        return cls.parsed(str(source.get("name") or ""), source.get("arguments"), call.get("id"))

    def as_dict(self) -> dict[str, Any]:
        """The neutral dict (``name``, ``arguments``, and ``id`` when there is one)."""
        out: dict[str, Any] = {"name": self.name, "arguments": self.arguments}
        if self.id is not None:
            out["id"] = self.id
        return out


@dataclass(slots=True)
class Usage:
    """Tokens, why generation ended, timings (seconds) and the server software of one reply;
    None: not reported.

    ``first_token_seconds`` (from sending the request to the first text or thinking) is
    measured by the client, on every API; so is ``total_seconds`` (to the last chunk) when the
    server reports none.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    load_seconds: float | None = None
    prompt_seconds: float | None = None
    generation_seconds: float | None = None
    total_seconds: float | None = None
    first_token_seconds: float | None = None
    server: str | None = None  # what answered: "Ollama", "llama.cpp", "simulator"…

    def as_dict(self) -> dict[str, Any]:
        """The reported fields only (what recordings store)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Usage":
        """From :meth:`as_dict` output; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})

    @property
    def tokens_per_second(self) -> float | None:
        if self.output_tokens and self.generation_seconds:
            return self.output_tokens / self.generation_seconds
        return None


@dataclass
class ChatRequest:
    """One chat turn to send: the whole conversation plus settings.

    ``messages`` are dicts with ``role`` and ``content``; a message's ``images`` are base64
    strings of encoded images (PNG or JPEG), attached to that message. An assistant message may
    carry ``tool_calls`` (see :class:`ToolCall`); a ``tool`` message carries one result as
    ``content`` with ``tool_name`` and ``tool_call_id``. ``tools`` are the schemas of the
    functions the model may call (``{"type": "function", "function": {...}}``, as
    :meth:`~gleitzeit_nb.core.tools.Tool.to_schema` gives them).
    """

    model: str
    messages: list[dict[str, Any]]
    temperature: float | None = None
    max_tokens: int | None = None
    top_k: int | None = None
    top_p: float | None = None
    repeat_penalty: float | None = None
    seed: int | None = None
    stop: list[str] | None = None
    format: str | dict[str, Any] | None = None  # "json" or a JSON schema
    think: bool | str | None = None
    tools: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def sampling(self) -> dict[str, Any]:
        """The sampling settings that are set, by their neutral names."""
        values = {name: getattr(self, name) for name in SAMPLING}
        return {k: v for k, v in values.items() if v is not None}


@dataclass
class EmbedRequest:
    """Texts to embed with ``model``; ``extra`` holds options only one API knows."""

    model: str
    input: list[str]
    truncate: bool | None = None
    dimensions: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class EmbedResult:
    """One vector per input text, in order."""

    vectors: list[list[float]]
    model: str
    input_tokens: int | None = None


@dataclass
class ModelInfo:
    """A model a server offers. ``capabilities`` ("completion", "vision", "embedding",
    "thinking", "tools") is None when the server does not say."""

    name: str
    capabilities: list[str] | None = None
    size: int = 0
    family: str = ""
    parameter_size: str = ""
    quantization: str = ""
    loaded: bool = False
    context_length: int | None = None
    digest: str = ""

    def can(self, capability: str) -> bool | None:
        """True or False when known, None when the server does not publish capabilities."""
        return None if self.capabilities is None else capability in self.capabilities


@dataclass(frozen=True)
class ContextInfo:
    """The context size (prompt and reply, in tokens) a request to a model gets on a server.

    ``tokens`` is None when the server does not say. ``source`` says where the number comes
    from, for messages ("this request's num_ctx", "the server's slots"). ``adjustable``: a
    request may set it (the ``num_ctx`` option); False: fixed when the server started.
    ``trained`` is the model's trained maximum when known; ``hint`` says how to raise the size
    on this server (for messages).
    """

    tokens: int | None
    source: str = ""
    adjustable: bool = False
    trained: int | None = None
    hint: str = ""
