"""The key of a model call: a SHA-256 over a canonical form of everything that shapes the reply.

``chat_request_key`` / ``embed_request_key`` build a plain dict from a seam request
(``ChatRequest``) and the API kind; ``key_of`` hashes its sorted-key compact JSON
(``separators=(",", ":")``, ``ensure_ascii=False``, UTF-8) and returns ``"sha256:<hex>"``.

In the key (``None`` values are dropped everywhere):

* ``v`` — the key format version (bumped if this recipe changes, so old recordings miss
  instead of replaying the wrong thing);
* ``api`` — the API that produced the reply (``"ollama"``, ``"openai"``), never the host, so a
  recording replays against any server of that API, or none;
* ``model`` — the model name as the backend spells it canonically (Ollama: ``:latest`` made
  explicit);
* ``messages`` — the full chain (system message and file text included, as sent), each message
  reduced to ``role``, ``content``, ``thinking``, ``images``, ``tool_calls``, ``tool_name``,
  ``tool_call_id``; each image replaced by the hex SHA-256 of its decoded bytes, each tool call
  written as ``{name, arguments, id}`` whatever shape it came in;
* ``sampling`` — temperature, max_tokens, top_k, top_p, repeat_penalty, seed, stop;
* ``format`` (``"json"`` or a JSON-schema dict), ``think``;
* ``tools`` — the schemas of the functions the model may call, so a changed signature or
  docstring misses (absent when there are none, so keys without tools are unchanged);
* ``server`` — a label naming the server, only when a comparison asks one model on several
  servers of one API (their keys would be the same otherwise); absent in every other key;
* ``extra`` — options only one API knows (``num_ctx``, a raw ``options`` dict), so an unknown
  one causes a miss, never a wrong hit.

Not in the key: ``keep_alive`` (it does not change the text), the server URL (but see
``server``), timeouts, display
settings, session names and bookkeeping fields on messages.

Normalised (harmless differences key alike): dict order; float settings given as ints
(``temperature=1`` vs ``1.0``) and integral floats for integer ones (``seed=42.0``); empty
``images`` lists, empty ``stop`` lists and ``format=""``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..core.backend import ChatRequest, ToolCall

__all__ = ["chat_request_key", "embed_request_key", "key_of", "image_sha256", "KEY_VERSION"]

KEY_VERSION = 2

_MESSAGE_FIELDS = ("role", "content", "thinking", "images", "tool_calls", "tool_name",
                   "tool_call_id")
_FLOAT_OPTIONS = frozenset({"temperature", "top_p", "min_p", "typical_p", "repeat_penalty",
                            "presence_penalty", "frequency_penalty"})
_INT_OPTIONS = frozenset({"seed", "num_ctx", "max_tokens", "top_k"})
_UNKEYED = frozenset({"keep_alive"})


def chat_request_key(api: str, request: ChatRequest) -> dict[str, Any]:
    """The canonical dict of a chat call on ``api`` (JSON-ready, images reduced to hashes).

    ``request.model`` should already be the backend's canonical spelling.
    """
    canonical: dict[str, Any] = {"v": KEY_VERSION, "api": api, "model": request.model,
                                 "messages": [_message(m) for m in request.messages]}
    sampling = _numbers(request.sampling())
    if not sampling.get("stop", True):
        del sampling["stop"]
    if sampling:
        canonical["sampling"] = sampling
    fmt = _format(request.format)
    if fmt is not None:
        canonical["format"] = fmt
    if request.think is not None:
        canonical["think"] = request.think
    if request.tools:
        canonical["tools"] = list(request.tools)
    extra = {k: v for k, v in request.extra.items() if k not in _UNKEYED and v is not None}
    if isinstance(extra.get("options"), Mapping):
        extra["options"] = _numbers(extra["options"])
    if extra:
        canonical["extra"] = _numbers(extra)
    return canonical


def embed_request_key(api: str, model: str, text: str) -> dict[str, Any]:
    """The canonical dict of one text's embedding (keyed per text: any batch size replays)."""
    return {"v": KEY_VERSION, "api": api, "model": model, "embed": text}


def key_of(canonical: Mapping[str, Any]) -> str:
    """The key of an already canonical request dict."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=_unkeyable)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def image_sha256(image: Any) -> str:
    """Hex SHA-256 of the bytes an image input stands for (base64 text is decoded first).

    Accepts what the request pipeline puts in messages — base64 strings — and everything
    ``gleitzeit_nb.core.images.image_bytes`` accepts, plus objects with a ``data`` bytes
    attribute (``PreparedImage``).
    """
    data = getattr(image, "data", None)
    if not isinstance(data, (bytes, bytearray)):
        data = _image_bytes(image)
    return hashlib.sha256(data).hexdigest()


def _image_bytes(image: Any) -> bytes:
    if isinstance(image, str) and len(image) >= 4096 and not image.startswith("data:"):
        try:  # fast path for the usual case: long, clean base64 text
            return base64.b64decode(image, validate=True)
        except (binascii.Error, ValueError):
            pass
    from ..core.images import image_bytes

    return image_bytes(image)


def _message(msg: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(msg, Mapping):
        raise TypeError(f"a message must be a dict, not {type(msg).__name__}")
    out: dict[str, Any] = {"role": msg.get("role"), "content": msg.get("content") or ""}
    for field in _MESSAGE_FIELDS[2:]:
        value = msg.get(field)
        if value is None or (field in ("images", "thinking", "tool_calls") and not value):
            continue
        if field == "images":
            value = [image_sha256(i) for i in value]
        elif field == "tool_calls":
            value = [ToolCall.of(c).as_dict() for c in value]
        out[field] = value
    return out


def _numbers(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _number(k, v) for k, v in values.items() if v is not None}


def _number(key: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if key in _FLOAT_OPTIONS:
        return float(value)
    if key in _INT_OPTIONS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _format(fmt: Any) -> Any:
    if fmt is None or fmt == "":
        return None
    schema = getattr(fmt, "model_json_schema", None)  # a pydantic model class
    return schema() if callable(schema) else fmt


def _unkeyable(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"a {type(obj).__name__} value cannot be part of a replay key; "
                    "pass JSON-compatible parameters")
