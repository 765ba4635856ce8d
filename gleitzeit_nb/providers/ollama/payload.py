"""Turn validated ``llm/v1`` params into Ollama request bodies."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ...core.errors import InvalidParamsError
from ...core.images import encode_image

# Named parameters that go into Ollama's `options` (the design guide's OLLAMA_OPTIONS, plus
# max_tokens, which Ollama calls num_predict).
OLLAMA_OPTIONS = {
    "temperature": "temperature",
    "top_k": "top_k",
    "top_p": "top_p",
    "repeat_penalty": "repeat_penalty",
    "seed": "seed",
    "num_ctx": "num_ctx",
    "stop": "stop",
    "max_tokens": "num_predict",
}

MAX_FILE_BYTES = 2_000_000


def build_options(params: dict[str, Any]) -> dict[str, Any]:
    """Ollama ``options`` from ``params``: the raw ``options`` dict, then the named ones on top."""
    options = dict(params.get("options") or {})
    for key, ollama_key in OLLAMA_OPTIONS.items():
        if params.get(key) is not None:
            value = params[key]
            options[ollama_key] = [value] if key == "stop" and isinstance(value, str) else value
    return options


def build_chat_body(method: str, params: dict[str, Any], *, stream: bool = True) -> dict[str, Any]:
    """The ``/api/chat`` body for ``chat`` or ``vision``; never mutates the caller's messages."""
    messages = [dict(m) for m in params["messages"]]
    if params.get("system") is not None:
        messages.insert(0, {"role": "system", "content": params["system"]})
    if params.get("file_path") is not None:
        target = _last_user(messages, "file_path")
        target["content"] = f"{read_text_file(params['file_path'])}\n\n{target['content']}"
    if method == "vision":
        sources = list(params.get("images") or [])
        if params.get("image_path") is not None:
            sources.insert(0, params["image_path"])
        target = _last_user(messages, "images")
        target["images"] = list(target.get("images") or []) + [encode_image(s) for s in sources]

    body: dict[str, Any] = {"model": params["model"], "messages": messages, "stream": stream}
    options = build_options(params)
    if options:
        body["options"] = options
    for key in ("format", "think", "keep_alive"):
        if params.get(key) is not None:
            body[key] = params[key]
    return body


def build_embed_body(params: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": params["model"], "input": params["input"]}
    if isinstance(body["input"], tuple):
        body["input"] = list(body["input"])
    for key in ("truncate", "dimensions", "keep_alive", "options"):
        if params.get(key) is not None:
            body[key] = params[key]
    return body


def read_text_file(path: str | os.PathLike[str]) -> str:
    """A text file's content for prompt injection; a clear error for anything else."""
    p = Path(path).expanduser()
    try:
        info = p.stat()
        size = info.st_size
        if stat.S_ISDIR(info.st_mode):
            raise InvalidParamsError(f"file_path '{path}' is a directory, not a text file.",
                                     param="file_path")
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            raise InvalidParamsError(f"file_path '{path}' is not a regular file.",
                                     param="file_path")
        if size > MAX_FILE_BYTES:
            raise InvalidParamsError(
                f"file_path '{path}' is {size / 1e6:.1f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB "
                "of text. Pass an excerpt instead (models have a limited context window).",
                param="file_path")
        data = p.read_bytes()
    except FileNotFoundError:
        raise InvalidParamsError(f"file_path '{path}' does not exist.", param="file_path") from None
    except PermissionError:
        raise InvalidParamsError(f"file_path '{path}' cannot be read (permission denied).",
                                 param="file_path") from None
    except OSError as exc:
        raise InvalidParamsError(f"file_path '{path}' cannot be read: {exc.strerror}.",
                                 param="file_path") from exc
    if b"\x00" in data[:8192]:
        raise InvalidParamsError(
            f"file_path '{path}' looks binary; only text files can be put into a prompt "
            "(for images use the vision method).", param="file_path")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidParamsError(
            f"file_path '{path}' is not UTF-8 text (byte {exc.start}); convert it first.",
            param="file_path") from None


def _last_user(messages: list[dict[str, Any]], param: str) -> dict[str, Any]:
    for msg in reversed(messages):
        if msg.get("role") == "user":
            return msg
    raise InvalidParamsError(f"'{param}' needs a user message to attach to; messages has none.",
                             param=param)
