"""Seam requests (``ChatRequest``, ``EmbedRequest``) as Ollama request bodies."""

from __future__ import annotations

from typing import Any

from ...core.backend import ChatRequest, EmbedRequest, ToolCall

#: Neutral sampling names -> Ollama's ``options`` keys (the only place that maps them).
OLLAMA_OPTIONS = {
    "temperature": "temperature",
    "top_k": "top_k",
    "top_p": "top_p",
    "repeat_penalty": "repeat_penalty",
    "seed": "seed",
    "stop": "stop",
    "max_tokens": "num_predict",
}


def build_options(request: ChatRequest) -> dict[str, Any]:
    """Ollama ``options``: the raw ``extra["options"]`` dict, then ``num_ctx`` and the named
    sampling settings on top."""
    options = dict(request.extra.get("options") or {})
    if request.extra.get("num_ctx") is not None:
        options["num_ctx"] = request.extra["num_ctx"]
    for key, value in request.sampling().items():
        options[OLLAMA_OPTIONS[key]] = value
    return options


def build_chat_body(request: ChatRequest, *, stream: bool = True) -> dict[str, Any]:
    """The ``/api/chat`` body (messages keep Ollama's own shape: ``images`` as base64)."""
    body: dict[str, Any] = {"model": request.model,
                            "messages": [to_message(m) for m in request.messages],
                            "stream": stream}
    if request.tools:
        body["tools"] = request.tools
    options = build_options(request)
    if options:
        body["options"] = options
    if request.format is not None:
        body["format"] = request.format
    if request.think is not None:
        body["think"] = request.think
    if request.extra.get("keep_alive") is not None:
        body["keep_alive"] = request.extra["keep_alive"]
    return body


def to_message(message: dict[str, Any]) -> dict[str, Any]:
    """A seam message as Ollama takes it: an assistant's calls as ``{"function": {"name",
    "arguments": {...}}}``; a tool result names its tool (``tool_name``, Ollama 0.9+) and drops
    ``tool_call_id``, which Ollama has no field for. Other messages go as they are."""
    calls = message.get("tool_calls")
    if not calls and "tool_call_id" not in message:
        return message
    out = {k: v for k, v in message.items() if k != "tool_call_id"}
    if calls:
        out["tool_calls"] = [_call(ToolCall.of(c)) for c in calls]
        out["content"] = out.get("content") or ""  # (OpenAI-style histories may hold None)
    return out


def _call(call: ToolCall) -> dict[str, Any]:
    # Ollama takes arguments as an object only; text that never parsed goes as an empty one
    arguments = call.arguments if isinstance(call.arguments, dict) else {}
    return {"function": {"name": call.name, "arguments": arguments}}


def build_embed_body(request: EmbedRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "input": list(request.input)}
    if request.truncate is not None:
        body["truncate"] = request.truncate
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    for key in ("keep_alive", "options"):
        if request.extra.get(key) is not None:
            body[key] = request.extra[key]
    return body
