"""Ollama's ``/api/chat`` and ``/api/generate``: request validation with
Ollama's error wording, the NDJSON line shapes and load/unload requests."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .endpoints import LOAD_DURATION_NS, not_found_message
from .faults import Fault
from .generation import GenRequest, RequestError, generate, inspect_images
from .replies import ReplyPlan, prompt_token_count
from .scheduling import parse_keep_alive
from .tools import TOOL_FIELDS, ToolScriptError, tool_turn, unsupported_tools

if TYPE_CHECKING:  # pragma: no cover
    from .handler import SimHandler

#: Simulated cost per generated / prompt token (ns), so stats are reproducible.
EVAL_NS_PER_TOKEN = 20_000_000
PROMPT_NS_PER_TOKEN = 500_000
_OVERHEAD_NS = 1_000_000
_THINK_LEVELS = ("low", "medium", "high")
NDJSON = "application/x-ndjson"


def _line(obj: Any) -> bytes:
    """One compact NDJSON line, like Ollama's encoder."""
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


_ts_cache: list[Any] = [0, ""]


def created_at() -> str:
    """RFC 3339 UTC timestamp (cached per millisecond)."""
    now = time.time()
    if int(now * 1000) != _ts_cache[0]:
        stamp = datetime.fromtimestamp(now, timezone.utc).isoformat().replace("+00:00", "Z")
        _ts_cache[:] = [int(now * 1000), stamp]
    return _ts_cache[1]


def _parse_think(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value in _THINK_LEVELS + ("true", "false", ""):
        return value not in ("false", "")
    raise RequestError(400, f'invalid think value: {json.dumps(value)} '
                            '(must be "high", "medium", "low", true, or false)')


def _messages(kind: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    if kind == "generate":
        prompt, system = body.get("prompt") or "", body.get("system") or ""
        if not isinstance(prompt, str) or not isinstance(system, str):
            raise RequestError(400, "json: cannot unmarshal into Go struct field of type string")
        msgs = [{"role": "system", "content": system, "images": []}] if system else []
        if prompt or body.get("images"):
            msgs.append({"role": "user", "content": prompt, "images": body.get("images") or []})
        out = msgs
    else:
        out = _chat_messages(body)
    for msg in out:
        if not isinstance(msg["images"], list):
            raise RequestError(400, "json: cannot unmarshal string into Go struct field "
                                    "Message.messages.images of type []api.ImageData")
    return out


def _chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("messages") or []
    if not isinstance(raw, list) or not all(isinstance(m, dict) for m in raw):
        raise RequestError(400, "json: cannot unmarshal into Go struct field "
                                "ChatRequest.messages of type []api.Message")
    out = []
    for msg in raw:
        content = msg.get("content") or ""
        if not isinstance(content, str):
            raise RequestError(400, "json: cannot unmarshal into Go struct field "
                                    "Message.messages.content of type string")
        out.append({"role": str(msg.get("role") or "user"), "content": content,
                    "images": msg.get("images") or [],
                    **{k: msg[k] for k in TOOL_FIELDS if msg.get(k)}})
    return out


def validate(sim: Any, kind: str, body: dict[str, Any]) -> GenRequest:
    """Check a chat/generate body the way Ollama does; raise RequestError."""
    name = body.get("model")
    if not name or not isinstance(name, str):
        raise RequestError(400, "model is required")
    spec = sim.catalog.get(name)
    if spec is None:
        raise RequestError(404, not_found_message(name))
    if not spec.has("completion"):
        raise RequestError(400, f'"{name}" does not support {kind}')
    think = _parse_think(body.get("think"))
    if think and not spec.has("thinking"):
        raise RequestError(400, f'"{name}" does not support thinking')
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise RequestError(400, "json: cannot unmarshal into Go struct field "
                                "ChatRequest.tools of type api.Tools")
    refusal = unsupported_tools(spec, name, tools) if kind == "chat" else None
    if refusal:
        raise RequestError(400, refusal)
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise RequestError(400, "json: cannot unmarshal options into map[string]interface {}")
    fmt = body.get("format") or None
    if fmt is not None and fmt != "json" and not isinstance(fmt, dict):
        raise RequestError(400, 'invalid format: expected "json" or a valid JSON schema')
    try:
        keep_alive = parse_keep_alive(body.get("keep_alive"))
    except ValueError as exc:
        raise RequestError(400, str(exc)) from None
    stream = body.get("stream")
    messages = _messages(kind, body)
    req = GenRequest(kind, name, spec, messages, options, think, fmt,
                     True if stream is None else bool(stream), keep_alive,
                     is_load=not messages or (kind == "generate" and messages[-1]["role"] != "user"),
                     tools=tools if kind == "chat" else [])
    if any(m["images"] for m in messages):
        if not spec.has("vision"):
            raise RequestError(400, "model does not support images: "
                                    f'"{name}" lacks the vision capability')
        inspect_images(req)
    return req


def _stats(plan: ReplyPlan, req: GenRequest) -> dict[str, Any]:
    prompt_count = prompt_token_count(req.messages)
    prompt_ns = prompt_count * PROMPT_NS_PER_TOKEN
    eval_ns = plan.eval_count * EVAL_NS_PER_TOKEN
    return {
        "done_reason": plan.done_reason,
        "done": True,
        "total_duration": LOAD_DURATION_NS + prompt_ns + eval_ns + _OVERHEAD_NS,
        "load_duration": LOAD_DURATION_NS,
        "prompt_eval_count": prompt_count,
        "prompt_eval_duration": prompt_ns,
        "eval_count": plan.eval_count,
        "eval_duration": eval_ns,
    }


class LineMaker:
    """Ollama's framing: the NDJSON lines (or whole object) of one response."""

    content_type = NDJSON

    def __init__(self, req: GenRequest) -> None:
        self.req = req
        self.model = json.dumps(req.name, ensure_ascii=False)

    def _head(self) -> str:
        return f'{{"model":{self.model},"created_at":"{created_at()}",'

    def opening(self) -> bytes:
        return b""

    def delta(self, kind: str, text: str) -> bytes:
        """A ``done: false`` chunk carrying a content or thinking delta."""
        d = json.dumps(text, ensure_ascii=False)
        if self.req.kind == "chat":
            body = (f'"message":{{"role":"assistant","content":{d}}}' if kind == "content" else
                    f'"message":{{"role":"assistant","content":"","thinking":{d}}}')
        else:
            body = f'"response":{d}' if kind == "content" else f'"response":"","thinking":{d}'
        return f'{self._head()}{body},"done":false}}\n'.encode()

    def tool_calls(self, calls: list[dict[str, Any]]) -> list[bytes]:
        """One chat chunk carrying every ``message.tool_calls`` (as Ollama sends them)."""
        obj = {"model": self.req.name, "created_at": created_at(),
               "message": {"role": "assistant", "content": "", "tool_calls": calls},
               "done": False}
        return [_line(obj)]

    def final(self, plan: ReplyPlan) -> bytes:
        return _line(self.done_object(plan))

    def whole(self, plan: ReplyPlan) -> dict[str, Any]:
        return self.done_object(plan, whole=True)

    def error_event(self, message: str) -> bytes:
        return _line({"error": message})

    def error_body(self, message: str) -> dict[str, Any]:
        return {"error": message}

    def malformed(self, stream: bool) -> bytes:
        text = f'{{"model": {json.dumps(self.req.name)}, "mess'
        return (text + "\n" if stream else text).encode()

    def done_object(self, plan: ReplyPlan, whole: bool = False) -> dict[str, Any]:
        """The ``done: true`` object; ``whole`` includes the full text (stream=false)."""
        obj: dict[str, Any] = {"model": self.req.name, "created_at": created_at()}
        text = plan.text if whole else ""
        if self.req.kind == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if whole and plan.thinking:
                message["thinking"] = plan.thinking_text
            if whole and plan.tool_calls:
                message["tool_calls"] = plan.tool_calls
            obj["message"] = message
        else:
            obj["response"] = text
            if whole and plan.thinking:
                obj["thinking"] = plan.thinking_text
        obj.update(_stats(plan, self.req))
        return obj


def _load_only(h: SimHandler, req: GenRequest) -> None:
    residency = h.sim.residency
    if req.keep_alive != 0 and not residency.is_loaded(req.spec.name):
        h.wire.wait(h.sim.load_delay)
    residency.acquire(req.spec.name)
    residency.release(req.spec.name, req.keep_alive)
    obj: dict[str, Any] = {"model": req.name, "created_at": created_at()}
    if req.kind == "chat":
        obj["message"] = {"role": "assistant", "content": ""}
    else:
        obj["response"] = ""
    obj.update(done_reason="unload" if req.keep_alive == 0 else "load", done=True)
    h.send_json(200, obj)


def handle_generation(h: SimHandler, path: str, body: dict[str, Any],
                      faults: dict[str, Fault]) -> None:
    """Serve one ``/api/chat`` or ``/api/generate`` request."""
    try:
        req = validate(h.sim, "chat" if path == "/api/chat" else "generate", body)
    except RequestError as exc:
        h.send_json(exc.status, {"error": exc.message})
        return
    try:
        req.tool_reply = tool_turn(req.messages, req.tools, h.sim.tool_rule(req.spec.name))
    except ToolScriptError as exc:
        h.send_json(400, {"error": str(exc)})
        return
    if req.is_load:
        _load_only(h, req)
    else:
        generate(h, req, LineMaker(req), faults)
