"""OpenAI-compatible shapes: a ``/v1/chat/completions`` body parsed into a
``GenRequest``, ``chat.completion`` objects, the SSE chunk framing that
llama.cpp's ``llama-server`` and vLLM send, and OpenAI-style error bodies."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

from .generation import GenRequest, RequestError, inspect_images
from .models import MODIFIED_AT, ModelSpec
from .replies import ReplyPlan, prompt_token_count
from .scheduling import DEFAULT_KEEP_ALIVE
from .tools import TOOL_FIELDS, ToolScriptError, call_id, split_arguments, tool_turn, unsupported_tools

SSE = "text/event-stream"
SYSTEM_FINGERPRINT = "fp_simulator"
#: ``created`` of every entry in ``/v1/models`` (the catalogue's ``MODIFIED_AT``).
MODELS_CREATED = int(datetime.fromisoformat(MODIFIED_AT.replace("Z", "+00:00")).timestamp())
#: The 401 body for a missing or wrong ``Authorization: Bearer`` key.
INVALID_KEY = {"error": {"message": "Invalid API key", "type": "authentication_error",
                         "code": "invalid_api_key"}}
_ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def error_body(message: str, status: int, code: Any = None) -> dict[str, Any]:
    """``{"error": {message, type, code}}``; ``code`` defaults to the status, as vLLM and
    llama.cpp send it; ``type`` follows OpenAI (4xx invalid_request_error, 5xx server_error)."""
    kind = _ERROR_TYPES.get(status) or ("server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "code": status if code is None else code}}


def sse(obj: Any) -> bytes:
    """One server-sent event ``data: {json}`` and its blank line."""
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def find_model(sim: Any, body: dict[str, Any], capability: str, purpose: str) -> ModelSpec:
    """The requested model if it exists and has ``capability``; else RequestError."""
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise RequestError(400, "you must provide a model parameter")
    spec = sim.catalog.get(name)
    if spec is None:
        raise RequestError(404, f"The model `{name}` does not exist.", "model_not_found")
    if not spec.has(capability):
        raise RequestError(400, f"The model `{name}` does not support {purpose}.")
    return spec


def _data_url(value: Any) -> str:
    url = value.get("url") if isinstance(value, dict) else value
    head, comma, data = url.partition(",") if isinstance(url, str) else ("", "", "")
    if not (comma and head.startswith("data:image/") and head.endswith(";base64")):
        raise RequestError(400, "image_url must be a data:image/...;base64 URL "
                                "(the simulator fetches nothing)")
    return data


def _content(msg: dict[str, Any], i: int) -> tuple[str, list[str]]:
    """The text (parts joined by newlines) and base64 images of one message."""
    content = msg.get("content")
    if content is None or isinstance(content, str):
        return content or "", []
    if not isinstance(content, list):
        raise RequestError(400, f"messages[{i}].content must be a string or an array of parts")
    texts, images = [], []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            images.append(_data_url(part.get("image_url")))
        else:
            raise RequestError(400, f"messages[{i}].content: unsupported part type {kind!r}")
    return "\n".join(texts), images


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RequestError(400, "'messages' must be a non-empty array")
    out = []
    for i, msg in enumerate(raw):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise RequestError(400, f"messages[{i}] must be an object with a 'role'")
        text, images = _content(msg, i)
        out.append({"role": msg["role"], "content": text, "images": images,
                    **{k: msg[k] for k in TOOL_FIELDS if msg.get(k)}})
    return out


def _format(value: Any) -> Any:
    """``response_format`` as the simulator's ``fmt``: None, "json" or a schema dict."""
    kind = value.get("type") if isinstance(value, dict) else None
    if value is None or kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema" and isinstance(value.get("json_schema"), dict):
        schema = value["json_schema"].get("schema")
        return schema if isinstance(schema, dict) else "json"
    raise RequestError(400, "response_format must be {'type': 'text' | 'json_object' | "
                            "'json_schema', 'json_schema': {'name': ..., 'schema': {...}}}")


def _think(spec: ModelSpec, body: dict[str, Any]) -> bool:
    """Thinking models think unless told not to (llama.cpp and vLLM's default):
    ``chat_template_kwargs.enable_thinking: false`` or ``reasoning_effort: "none"``."""
    if not spec.has("thinking"):
        return False
    kwargs = body.get("chat_template_kwargs")
    if isinstance(kwargs, dict) and "enable_thinking" in kwargs:
        return bool(kwargs["enable_thinking"])
    return body.get("reasoning_effort") != "none"


def parse_chat(sim: Any, body: dict[str, Any]) -> tuple[GenRequest, bool]:
    """A chat-completions body as a GenRequest, plus whether to send a usage chunk."""
    spec = find_model(sim, body, "completion", "chat completions")
    name = body["model"]
    if body.get("n") not in (None, 1):
        raise RequestError(400, "Only one completion choice is allowed")
    limit = body.get("max_completion_tokens")
    limit = body.get("max_tokens") if limit is None else limit
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise RequestError(400, f"max_tokens must be an integer >= 1, got {limit!r}")
    options = {k: body[k] for k in ("temperature", "top_p", "seed", "stop") if body.get(k) is not None}
    if limit is not None:
        options["num_predict"] = limit
    stream = body.get("stream") is True
    usage = body.get("stream_options")
    include_usage = stream and isinstance(usage, dict) and usage.get("include_usage") is True
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise RequestError(400, "'tools' must be an array of {type: 'function', function: {...}}")
    refusal = unsupported_tools(spec, name, tools)
    if refusal:
        raise RequestError(400, refusal)
    req = GenRequest("chat", name, spec, _messages(body), options, _think(spec, body),
                     _format(body.get("response_format")), stream, DEFAULT_KEEP_ALIVE,
                     tools=tools)
    try:
        req.tool_reply = tool_turn(req.messages, tools, sim.tool_rule(spec.name))
    except ToolScriptError as exc:
        raise RequestError(400, str(exc)) from None
    if any(m["images"] for m in req.messages):
        if not spec.has("vision"):
            raise RequestError(400, f"The model `{name}` does not support image input.")
        inspect_images(req)
    return req, include_usage


def _tool_call(req: GenRequest, call: dict[str, Any], i: int) -> dict[str, Any]:
    """One call in OpenAI's shape: a deterministic id, the arguments as a JSON string."""
    fn = call.get("function", call)
    args = fn.get("arguments", {})
    return {"id": call_id(req.name, req.messages, i), "type": "function",
            "function": {"name": fn.get("name"),
                         "arguments": args if isinstance(args, str)
                         else json.dumps(args, ensure_ascii=False)}}


def finish_reason(plan: ReplyPlan) -> str:
    """"tool_calls", "length" (max_tokens reached) or "stop"."""
    if plan.tool_calls:
        return "tool_calls"
    return "length" if plan.done_reason == "length" else "stop"


class ChunkFraming:
    """OpenAI framing of one completion: ``chat.completion.chunk`` SSE events or a
    ``chat.completion`` object. Thinking goes to ``reasoning_content``."""

    content_type = SSE

    def __init__(self, req: GenRequest, include_usage: bool = False) -> None:
        self.req = req
        self.include_usage = include_usage
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self._head = (f'data: {{"id":"{self.id}","object":"chat.completion.chunk",'
                      f'"created":{self.created},"model":{json.dumps(req.name, ensure_ascii=False)},'
                      f'"system_fingerprint":"{SYSTEM_FINGERPRINT}","choices":[{{"index":0,"delta":')

    def _chunk(self, delta: str, finish: str = "null") -> bytes:
        return f'{self._head}{delta},"logprobs":null,"finish_reason":{finish}}}]}}\n\n'.encode()

    def _object(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.req.name,
                "system_fingerprint": SYSTEM_FINGERPRINT, **fields}

    def usage(self, plan: ReplyPlan) -> dict[str, Any]:
        """Token counts; ``completion_tokens`` includes reasoning (as OpenAI counts it)."""
        prompt = prompt_token_count(self.req.messages)
        out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": plan.eval_count,
                               "total_tokens": prompt + plan.eval_count}
        if plan.thinking:
            out["completion_tokens_details"] = {"reasoning_tokens": len(plan.thinking)}
        return out

    def opening(self) -> bytes:
        return self._chunk('{"role":"assistant","content":""}')

    def delta(self, kind: str, text: str) -> bytes:
        key = "content" if kind == "content" else "reasoning_content"
        return self._chunk(f'{{"{key}":{json.dumps(text, ensure_ascii=False)}}}')

    def tool_calls(self, calls: list[dict[str, Any]]) -> list[bytes]:
        """Per call: a chunk with its index, id, type, name and the first piece of its
        arguments, then one chunk per further piece (``{"index", "function": {"arguments"}}``),
        as OpenAI and llama.cpp stream them; calls follow one another."""
        out = []
        for i, call in enumerate(calls):
            whole = _tool_call(self.req, call, i)
            first, *rest = split_arguments(whole["function"]["arguments"])
            whole["function"]["arguments"] = first
            items = [{"index": i, **whole}]
            items += [{"index": i, "function": {"arguments": piece}} for piece in rest]
            out += [self._chunk(json.dumps({"tool_calls": [item]}, ensure_ascii=False,
                                           separators=(",", ":")))
                    for item in items]
        return out

    def final(self, plan: ReplyPlan) -> bytes:
        """The finish_reason chunk, the usage chunk if asked for, and ``[DONE]``."""
        out = self._chunk("{}", f'"{finish_reason(plan)}"')
        if self.include_usage:
            out += sse(self._object("chat.completion.chunk", choices=[], usage=self.usage(plan)))
        return out + b"data: [DONE]\n\n"

    def whole(self, plan: ReplyPlan) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": plan.text}
        if plan.thinking:
            message["reasoning_content"] = plan.thinking_text
        if plan.tool_calls:
            message["content"] = plan.text or None
            message["tool_calls"] = [_tool_call(self.req, c, i)
                                     for i, c in enumerate(plan.tool_calls)]
        choice = {"index": 0, "message": message, "logprobs": None,
                  "finish_reason": finish_reason(plan)}
        return self._object("chat.completion", choices=[choice], usage=self.usage(plan))

    def error_event(self, message: str) -> bytes:
        return sse(error_body(message, 500))

    def error_body(self, message: str) -> dict[str, Any]:
        return error_body(message, 500)

    def malformed(self, stream: bool) -> bytes:
        text = f'{{"id":"{self.id}","object":"chat.completion.ch'
        return f"data: {text}\n\n".encode() if stream else text.encode()
