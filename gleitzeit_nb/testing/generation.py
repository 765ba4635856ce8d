"""``/api/chat`` and ``/api/generate``: request validation, the parallel
gate, model loading, and streaming the planned reply (with faults)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from .endpoints import LOAD_DURATION_NS, not_found_message
from .faults import TERMINAL_KINDS, Fault
from .images import ImageError, ImageInfo, inspect_image
from .models import ModelSpec
from .replies import ReplyPlan, plan_reply, prompt_token_count
from .scheduling import parse_keep_alive
from .wire import ClientGone, ServerStopping

if TYPE_CHECKING:  # pragma: no cover
    from .handler import SimHandler

#: Simulated cost per generated / prompt token (ns), so stats are reproducible.
EVAL_NS_PER_TOKEN = 20_000_000
PROMPT_NS_PER_TOKEN = 500_000
_OVERHEAD_NS = 1_000_000
_COALESCE_BYTES = 64 * 1024
_THINK_LEVELS = ("low", "medium", "high")


def _line(obj: Any) -> bytes:
    """One compact NDJSON line, like Ollama's encoder."""
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


class RequestError(Exception):
    """A 4xx answer: ``status`` and Ollama-style ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class GenRequest:
    """A validated chat/generate request."""

    kind: str
    name: str
    spec: ModelSpec
    messages: list[dict[str, Any]]
    options: dict[str, Any]
    think: bool
    fmt: Any
    stream: bool
    keep_alive: float | None
    images: list[ImageInfo] = field(default_factory=list)
    is_load: bool = False


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
                    "images": msg.get("images") or []})
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
    if body.get("tools") and not spec.has("tools"):
        raise RequestError(400, f'"{name}" does not support tools')
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
                     is_load=not messages or (kind == "generate" and messages[-1]["role"] != "user"))
    if any(m["images"] for m in messages):
        if not spec.has("vision"):
            raise RequestError(400, "model does not support images: "
                                    f'"{name}" lacks the vision capability')
        for msg in messages:
            try:
                infos = [inspect_image(img) for img in msg["images"]]
            except ImageError as exc:
                raise RequestError(400, str(exc)) from None
            msg["_image_digest"] = ",".join(i.digest for i in infos) or None
            if msg["role"] == "user":
                req.images = infos
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
    """Builds the NDJSON lines of one streamed response."""

    def __init__(self, req: GenRequest) -> None:
        self.req = req
        self.model = json.dumps(req.name, ensure_ascii=False)

    def _head(self) -> str:
        return f'{{"model":{self.model},"created_at":"{created_at()}",'

    def delta(self, kind: str, text: str) -> bytes:
        """A ``done: false`` chunk carrying a content or thinking delta."""
        d = json.dumps(text, ensure_ascii=False)
        if self.req.kind == "chat":
            body = (f'"message":{{"role":"assistant","content":{d}}}' if kind == "content" else
                    f'"message":{{"role":"assistant","content":"","thinking":{d}}}')
        else:
            body = f'"response":{d}' if kind == "content" else f'"response":"","thinking":{d}'
        return f'{self._head()}{body},"done":false}}\n'.encode()

    def tool_calls(self, calls: list[dict[str, Any]]) -> bytes:
        """A chat chunk carrying ``message.tool_calls``."""
        obj = {"model": self.req.name, "created_at": created_at(),
               "message": {"role": "assistant", "content": "", "tool_calls": calls},
               "done": False}
        return _line(obj)

    def final(self, plan: ReplyPlan, whole: bool = False) -> dict[str, Any]:
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


def _terminal(faults: dict[str, Fault]) -> Fault | None:
    present = [faults[k] for k in TERMINAL_KINDS if k in faults]
    return min(present, key=lambda f: int(f.after)) if present else None


def _finish_with_fault(h: SimHandler, fault: Fault, req: GenRequest) -> None:
    if fault.kind == "drop":
        h.wire.abort()
        h.close_connection = True
    elif fault.kind == "mid_stream_error":
        h.wire.send_chunk(_line({"error": fault.message}))
        h.wire.end_chunks()
    else:
        h.wire.send_chunk(f'{{"model": {json.dumps(req.name)}, "mess\n'.encode())
        h.wire.end_chunks()


def stream_reply(h: SimHandler, req: GenRequest, plan: ReplyPlan,
                 faults: dict[str, Fault], finish: Callable[[], None]) -> None:
    """Send ``plan`` as chunked NDJSON, applying pacing and stream faults.

    ``finish()`` frees the generation slot; it is called before the last write
    so ``active``/``ps`` are up to date once the client has the whole reply."""
    wire, lines = h.wire, LineMaker(req)
    events: list[tuple[str, Any]] = [("thinking", t) for t in plan.thinking]
    events += [("content", t) for t in plan.content]
    if plan.tool_calls and req.kind == "chat":
        events.append(("tools", plan.tool_calls))
    body_count = len(events)
    events.append(("final", None))
    delay = float(faults["slow"].token_delay) if "slow" in faults else float(h.sim.token_delay)
    stall = faults.get("stall_after")
    stall_at = min(int(stall.after), body_count) if stall else -1
    terminal = _terminal(faults)
    term_at = min(int(terminal.after), body_count) if terminal else -1
    throttled = delay > 0 or stall is not None
    pending: list[bytes] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if pending:
            wire.send_chunk(b"".join(pending))
            h.lines_sent += len(pending)
            pending.clear()
            size = 0

    h.start_stream()
    start = time.monotonic()
    for i, (kind, payload) in enumerate(events):
        if i == stall_at:
            flush()
            wire.wait(float(stall.seconds))
            start += float(stall.seconds)
        if i == term_at:
            flush()
            finish()
            _finish_with_fault(h, terminal, req)
            return
        if delay > 0 and 0 < i < body_count:
            wire.wait_until(start + i * delay)
        if kind == "final":
            finish()
            line = _line(lines.final(plan))
        elif kind == "tools":
            line = lines.tool_calls(payload)
        else:
            line = lines.delta(kind, payload)
        if throttled:
            wire.send_chunk(line)
            h.lines_sent += 1
        else:
            pending.append(line)
            size += len(line)
            if size >= _COALESCE_BYTES:
                flush()
    flush()
    wire.end_chunks()


def single_reply(h: SimHandler, req: GenRequest, plan: ReplyPlan,
                 faults: dict[str, Fault], finish: Callable[[], None]) -> None:
    """Send ``plan`` as one JSON object (``stream: false``); see ``stream_reply``."""
    delay = float(faults["slow"].token_delay) if "slow" in faults else float(h.sim.token_delay)
    if delay > 0:
        h.wire.wait(max(0, plan.eval_count - 1) * delay)
    if "stall_after" in faults:
        h.wire.wait(float(faults["stall_after"].seconds))
    terminal = _terminal(faults)
    finish()
    if terminal is not None and terminal.kind == "drop":
        h.wire.abort()
        h.close_connection = True
    elif terminal is not None and terminal.kind == "mid_stream_error":
        h.send_json(500, {"error": terminal.message})
    elif terminal is not None:
        h.send_bytes(200, f'{{"model": {json.dumps(req.name)}, "mess'.encode(), "application/json")
    else:
        h.send_json(200, LineMaker(req).final(plan, whole=True))


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
    sim = h.sim
    try:
        req = validate(sim, "chat" if path == "/api/chat" else "generate", body)
    except RequestError as exc:
        h.send_json(exc.status, {"error": exc.message})
        return
    if req.is_load:
        _load_only(h, req)
        return
    if not sim.gate.acquire(lambda: sim.stopping.is_set() or h.wire.peer_closed()):
        raise ServerStopping() if sim.stopping.is_set() else ClientGone()
    state = {"loaded": False, "done": False}

    def finish() -> None:
        if not state["done"]:
            state["done"] = True
            if state["loaded"]:
                sim.residency.release(req.spec.name, req.keep_alive)
            sim.gate.release()

    try:
        if not sim.residency.is_loaded(req.spec.name):
            h.wire.wait(sim.load_delay)
        sim.residency.acquire(req.spec.name)
        state["loaded"] = True
        plan = plan_reply(model=req.spec.name, messages=req.messages, options=req.options,
                          think=req.think, fmt=req.fmt,
                          image_descriptions=[i.describe() for i in req.images],
                          scripted=sim.take_script())
        (stream_reply if req.stream else single_reply)(h, req, plan, faults, finish)
    finally:
        finish()
