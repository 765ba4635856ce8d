"""Seam requests (``ChatRequest``, ``EmbedRequest``) as OpenAI-compatible request bodies.

``top_k`` and ``repeat_penalty`` go as top-level body keys: llama.cpp and vLLM accept these extra
sampling keys, a strict server (OpenAI itself) rejects them with HTTP 400, so leave them unset
there. ``extra["options"]`` is merged into the body as is (raw server options); the named
settings win over it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from ...core.backend import ChatRequest, EmbedRequest, ToolCall
from ...core.errors import InvalidParamsError

logger = logging.getLogger("gleitzeit_nb.providers.openai")

#: Neutral sampling names -> body keys (the only place that maps them).
OPENAI_SAMPLING = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "top_k": "top_k",
    "repeat_penalty": "repeat_penalty",
}
#: Message keys this API knows; others (Ollama's ``thinking``…) are not sent.
MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id")
THINK_LEVELS = ("low", "medium", "high")
_IGNORED = ("num_ctx", "keep_alive")
_ignored_logged: set[str] = set()


def build_chat_body(request: ChatRequest) -> dict[str, Any]:
    """The ``/chat/completions`` body: always streamed, with usage in the last event."""
    body: dict[str, Any] = dict(request.extra.get("options") or {})
    body.update(model=request.model, messages=[to_message(m) for m in request.messages],
                stream=True, stream_options={"include_usage": True})
    for key, value in request.sampling().items():
        body[OPENAI_SAMPLING[key]] = value
    if request.tools:
        body["tools"] = request.tools
    if request.format is not None:
        body["response_format"] = response_format(request.format)
    effort = reasoning_effort(request.think)
    if effort is not None:
        body["reasoning_effort"] = effort
    elif request.think is False:
        # no standard field turns thinking off; llama.cpp, vLLM and SGLang pass this to the
        # chat template (Qwen3 and others read it)
        body.setdefault("chat_template_kwargs", {})["enable_thinking"] = False
    _log_ignored(request.extra)
    return body


def build_embed_body(request: EmbedRequest) -> dict[str, Any]:
    body: dict[str, Any] = dict(request.extra.get("options") or {})
    body.update(model=request.model, input=list(request.input))
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    _log_ignored(request.extra)
    return body


def to_message(message: dict[str, Any]) -> dict[str, Any]:
    """A seam message as an OpenAI message; ``images`` become ``image_url`` content parts."""
    out = {k: message[k] for k in MESSAGE_KEYS if k in message}
    if message.get("tool_calls"):
        out["tool_calls"] = [_call(ToolCall.of(c)) for c in message["tool_calls"]]
    elif "tool_calls" in out:
        del out["tool_calls"]  # an empty list: some servers reject it
    images = message.get("images")
    if images:
        text = message.get("content") or ""
        parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        out["content"] = parts + [{"type": "image_url", "image_url": {"url": image_url(i)}}
                                  for i in images]
    return out


def _call(call: ToolCall) -> dict[str, Any]:
    """A call as this API sends it back: ``arguments`` as JSON text (raw text that never
    parsed goes as it came). The caller gives each call an ``id`` the ``tool`` message names."""
    arguments = call.arguments if isinstance(call.arguments, str) else json.dumps(
        {} if call.arguments is None else call.arguments, ensure_ascii=False)
    out: dict[str, Any] = {"id": call.id, "type": "function",
                           "function": {"name": call.name, "arguments": arguments}}
    if call.id is None:
        del out["id"]
    return out


def image_url(image: str) -> str:
    """A data URL for base64 image bytes (MIME from the magic); URLs go as they are."""
    if image.startswith(("data:", "http://", "https://")):
        return image
    return f"data:{sniff_mime(image)};base64,{image}"


def sniff_mime(b64: str) -> str:
    """The MIME type of base64-encoded PNG, JPEG, GIF or WebP bytes (PNG when unknown)."""
    try:
        head = base64.b64decode(b64[:24] + "=" * (-len(b64[:24]) % 4))
    except (binascii.Error, ValueError):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"


def response_format(fmt: str | dict[str, Any]) -> dict[str, Any]:
    """``"json"`` → JSON mode; a JSON schema dict → a strict ``json_schema`` format."""
    if isinstance(fmt, dict):
        return {"type": "json_schema",
                "json_schema": {"name": "reply", "schema": fmt, "strict": True}}
    if fmt == "json":
        return {"type": "json_object"}
    raise InvalidParamsError(f"format={fmt!r} is not supported; use 'json' or a JSON schema dict.",
                             param="format")


def reasoning_effort(think: bool | str | None) -> str | None:
    """``think`` as ``reasoning_effort``: True → "medium", a level as is, False/None: none."""
    if think is None or think is False:
        return None
    if think is True:
        return "medium"
    if isinstance(think, str) and think.strip():
        return think.strip().lower()
    raise InvalidParamsError(f"think={think!r} is not supported; use True, False or one of "
                             f"{', '.join(THINK_LEVELS)}.", param="think")


def _log_ignored(extra: dict[str, Any]) -> None:
    for key in _IGNORED:
        if extra.get(key) is not None and key not in _ignored_logged:
            _ignored_logged.add(key)
            logger.debug("%s is an Ollama option; OpenAI-compatible servers have none: ignored",
                         key)
