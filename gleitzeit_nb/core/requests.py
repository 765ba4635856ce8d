"""``llm/v1`` params to seam requests, and seam results back to the protocol's result dicts.

The one place where the design guide's dict API meets :mod:`.backend`: ``system`` becomes the
first message, ``file_path`` text goes before the last user message, ``image_path`` / ``images``
are encoded and attached to it. Call after ``validate_params``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from .backend import SAMPLING, ChatRequest, EmbedRequest, EmbedResult
from .errors import InvalidParamsError
from .images import encode_image
from .reply_stream import ReplyStream
from .tools import tool_schemas

#: ``llm/v1`` parameters one API knows; they travel in ``ChatRequest.extra``.
EXTRA_PARAMS = ("num_ctx", "keep_alive", "options")
MAX_FILE_BYTES = 2_000_000


def chat_request(method: str, params: dict[str, Any]) -> ChatRequest:
    """A :class:`ChatRequest` from validated ``chat`` / ``vision`` params (messages copied)."""
    messages = [dict(m) for m in params["messages"]]
    if params.get("system") is not None:
        messages.insert(0, {"role": "system", "content": params["system"]})
    if params.get("file_path") is not None:
        target = _last_user(messages, "file_path")
        target["content"] = f"{read_text_file(params['file_path'])}\n\n{target['content']}"
    for msg in messages:  # base64 text (what the pipelines send) goes as is
        if msg.get("images"):
            msg["images"] = [i if isinstance(i, str) else encode_image(i) for i in msg["images"]]
    if method == "vision":
        sources = list(params.get("images") or [])
        if params.get("image_path") is not None:
            sources.insert(0, params["image_path"])
        target = _last_user(messages, "images")
        target["images"] = list(target.get("images") or []) + [encode_image(s) for s in sources]
    sampling = {k: params[k] for k in SAMPLING if params.get(k) is not None}
    if isinstance(sampling.get("stop"), str):
        sampling["stop"] = [sampling["stop"]]
    extra = {k: params[k] for k in EXTRA_PARAMS if params.get(k) is not None}
    return ChatRequest(model=params["model"], messages=messages, format=params.get("format"),
                       think=params.get("think"), tools=tool_schemas(params.get("tools")),
                       extra=extra, **sampling)


def embed_request(params: dict[str, Any]) -> EmbedRequest:
    """An :class:`EmbedRequest` from validated ``embed`` params."""
    texts = params["input"]
    extra = {k: params[k] for k in ("keep_alive", "options") if params.get(k) is not None}
    return EmbedRequest(model=params["model"], input=[texts] if isinstance(texts, str) else
                        list(texts), truncate=params.get("truncate"),
                        dimensions=params.get("dimensions"), extra=extra)


def chat_result(method: str, params: dict[str, Any], stream: ReplyStream) -> dict[str, Any]:
    """The protocol's result dict for a finished chat / vision stream."""
    usage = stream.usage
    result: dict[str, Any] = {
        "response": stream.text,
        "model": stream.model,
        "tokens_used": usage.output_tokens or 0,
        "finish_reason": usage.finish_reason,
        "usage": usage.as_dict(),
    }
    if params.get("think"):
        result["thinking"] = stream.thinking
    if stream.tool_calls:
        result["tool_calls"] = list(stream.tool_calls)
    if method == "vision" and params.get("image_path") is not None:
        result["image_analyzed"] = params["image_path"]
    return result


def embed_result(result: EmbedResult) -> dict[str, Any]:
    return {"embeddings": result.vectors, "model": result.model,
            "input_tokens": result.input_tokens}


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
                f"file_path '{path}' is {size / 1e6:.1f} MB; the limit is "
                f"{MAX_FILE_BYTES / 1e6:.0f} MB of text. Pass an excerpt instead (models have a "
                "limited context window).", param="file_path")
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
