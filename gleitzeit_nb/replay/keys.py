"""The key of a model call: a SHA-256 over a canonical form of everything that shapes the reply.

``canonical_request`` builds a plain dict; ``call_key`` hashes its sorted-key compact JSON
(``separators=(",", ":")``, ``ensure_ascii=False``, UTF-8) and returns ``"sha256:<hex>"``.

In the key (``None`` values are dropped everywhere):

* ``v`` — the key format version (bumped if this recipe changes, so old recordings miss
  instead of replaying the wrong thing);
* ``provider`` — the provider kind, e.g. ``"ollama"`` (anything after ``@`` is dropped, so a
  provider id such as ``ollama@http://host:11434`` keys like ``ollama``: the host is not keyed);
* ``model`` — the model name with an implied ``:latest`` tag made explicit;
* ``model_digest`` — only when the caller passes one (see below);
* ``messages`` — the full chain, each message reduced to the fields Ollama reads (``role``,
  ``content``, ``thinking``, ``images``, ``tool_calls``, ``tool_name``); each image replaced by
  the hex SHA-256 of its decoded bytes. A ``system`` option becomes the first message, exactly as
  the Ollama payload builder inserts it, so both spellings key alike;
* ``options`` — Ollama generation options: the raw ``options`` dict with the named parameters
  on top (``temperature``, ``seed``, ``max_tokens`` → ``num_predict``, ``num_ctx``, ``top_k``,
  ``top_p``, ``repeat_penalty``, ``stop``, and whatever else the raw dict holds);
* ``format`` (``"json"`` or a JSON-schema dict), ``think``;
* ``file`` — for ``file_path``, the SHA-256 of the file's bytes (its content, not its name);
* ``extra`` — any other top-level parameter, so an unknown one causes a miss, never a wrong hit.

Not in the key: ``keep_alive`` and ``stream`` (they do not change the text), the server URL,
timeouts, display settings, session names and bookkeeping fields on messages.

Normalised (harmless differences key alike): dict order; ``llama3.2`` vs ``llama3.2:latest``;
``stop="x"`` vs ``["x"]``; float options given as ints (``temperature=1`` vs ``1.0``) and
integral floats for integer options (``seed=42.0``); empty ``images`` lists, empty ``stop``
lists and ``format=""`` (all mean "none" to Ollama).

About ``model_digest``: pass it only if it is known identically when recording and when
replaying. A CI machine without a server cannot ask for the digest, so keying on it there would
miss every recording; storing the digest in the record (``Recording.model_digest``) instead keeps
the provenance without that cost.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["call_key", "canonical_request", "key_of", "image_sha256", "normalise_model",
           "KEY_VERSION"]

KEY_VERSION = 1

_MESSAGE_FIELDS = ("role", "content", "thinking", "images", "tool_calls", "tool_name")
_NAMED_OPTIONS = {"temperature": "temperature", "top_k": "top_k", "top_p": "top_p",
                  "repeat_penalty": "repeat_penalty", "seed": "seed", "num_ctx": "num_ctx",
                  "stop": "stop", "max_tokens": "num_predict", "num_predict": "num_predict"}
_FLOAT_OPTIONS = frozenset({"temperature", "top_p", "min_p", "typical_p", "repeat_penalty",
                            "presence_penalty", "frequency_penalty", "tfs_z", "mirostat_tau",
                            "mirostat_eta"})
_INT_OPTIONS = frozenset({"seed", "num_ctx", "num_predict", "top_k", "repeat_last_n",
                          "mirostat", "num_keep", "num_batch"})
_UNKEYED = frozenset({"keep_alive", "stream"})
_SPECIAL = frozenset({"options", "system", "format", "think", "file_path", "images",
                      "image_path", "model", "messages"})


def call_key(*, provider: str, model: str, messages: list[dict[str, Any]],
             options: Mapping[str, Any] | None = None, model_digest: str | None = None) -> str:
    """``"sha256:<hex>"`` of the canonical request (see the module docstring for its contents).

    ``options`` are the call's parameters besides model and messages, as given to the provider:
    named ones (``temperature``, ``max_tokens``, ``system``, ``format``, ``think``, …) and/or a
    raw Ollama ``options`` dict.
    """
    return key_of(canonical_request(provider=provider, model=model, messages=messages,
                                    options=options, model_digest=model_digest))


def key_of(canonical: Mapping[str, Any]) -> str:
    """The key of an already canonical request dict."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=_unkeyable)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_request(*, provider: str, model: str, messages: list[dict[str, Any]],
                      options: Mapping[str, Any] | None = None,
                      model_digest: str | None = None) -> dict[str, Any]:
    """The dict that ``call_key`` hashes; JSON-ready, images reduced to hashes."""
    params = {k: v for k, v in (options or {}).items() if v is not None}
    chain = [_message(m) for m in messages]
    if params.get("system") is not None:
        chain.insert(0, {"role": "system", "content": str(params["system"])})
    extra_images = list(params.get("images") or [])
    if params.get("image_path") is not None:
        extra_images.insert(0, params["image_path"])
    if extra_images:  # vision-method parameters: attached to the last user message on the wire
        target = next((m for m in reversed(chain) if m.get("role") == "user"), None)
        if target is None:
            raise ValueError("images need a user message to attach to; messages has none")
        target["images"] = target.get("images", []) + [image_sha256(i) for i in extra_images]

    canonical: dict[str, Any] = {
        "v": KEY_VERSION,
        "provider": provider.split("@", 1)[0].strip().lower(),
        "model": normalise_model(model),
        "messages": chain,
    }
    if model_digest:
        canonical["model_digest"] = model_digest
    opts = _options(params)
    if opts:
        canonical["options"] = opts
    fmt = _format(params.get("format"))
    if fmt is not None:
        canonical["format"] = fmt
    if params.get("think") is not None:
        canonical["think"] = params["think"]
    if params.get("file_path") is not None:
        canonical["file"] = _file_digest(params["file_path"])
    extra = {k: v for k, v in params.items()
             if k not in _UNKEYED and k not in _SPECIAL and k not in _NAMED_OPTIONS}
    if extra:
        canonical["extra"] = extra
    return canonical


def normalise_model(name: str) -> str:
    """``llama3.2`` → ``llama3.2:latest``; a tag (or a registry port before a ``/``) is kept."""
    name = name.strip()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


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
        out[field] = [image_sha256(i) for i in value] if field == "images" else value
    return out


def _options(params: Mapping[str, Any]) -> dict[str, Any]:
    raw = params.get("options") or {}
    if not isinstance(raw, Mapping):
        raise TypeError(f"options must be a dict, not {type(raw).__name__}")
    merged = {k: v for k, v in raw.items() if v is not None}
    for key, ollama_key in _NAMED_OPTIONS.items():
        if params.get(key) is not None:
            merged[ollama_key] = params[key]
    out: dict[str, Any] = {}
    for key, value in merged.items():
        value = _number(key, value)
        if key == "stop":
            value = [value] if isinstance(value, str) else list(value)
            if not value:
                continue
        out[key] = value
    return out


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


def _file_digest(path: Any) -> dict[str, str]:
    try:
        return {"sha256": hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()}
    except OSError:
        # the live call fails on an unreadable file too, so no recording can carry this key
        return {"missing": str(path)}


def _unkeyable(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"a {type(obj).__name__} value cannot be part of a replay key; "
                    "pass JSON-compatible parameters")
