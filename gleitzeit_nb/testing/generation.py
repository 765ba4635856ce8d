"""The generation engine shared by both API families: the validated request,
the parallel gate, model loading, and sending the planned reply streamed or
whole with pacing and faults. How a reply is framed (Ollama's NDJSON,
OpenAI's SSE) is up to a ``Framing`` from ``ollama_api`` / ``openai_api``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

from .faults import TERMINAL_KINDS, Fault
from .images import ImageError, ImageInfo, inspect_image
from .models import ModelSpec
from .replies import ReplyPlan, ScriptedReply, plan_reply
from .wire import ClientGone, ServerStopping

if TYPE_CHECKING:  # pragma: no cover
    from .handler import SimHandler

_COALESCE_BYTES = 64 * 1024


class RequestError(Exception):
    """A 4xx answer: ``status``, a message and (OpenAI shape only) a ``code``."""

    def __init__(self, status: int, message: str, code: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass
class GenRequest:
    """A validated generation request (``kind`` "chat" or "generate")."""

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
    tools: list[Any] = field(default_factory=list)
    tool_reply: ScriptedReply | None = None


def inspect_images(req: GenRequest) -> None:
    """Decode every message's ``images`` (base64), note their digests for the
    reply seed and describe the last user message's; raise RequestError(400)."""
    for msg in req.messages:
        try:
            infos = [inspect_image(img) for img in msg["images"]]
        except ImageError as exc:
            raise RequestError(400, str(exc)) from None
        msg["_image_digest"] = ",".join(i.digest for i in infos) or None
        if msg["role"] == "user":
            req.images = infos


class Framing(Protocol):
    """How one API family frames a reply; each method returns wire bytes or a JSON body."""

    content_type: str

    def opening(self) -> bytes:
        """Sent right after the stream's headers (b"" for none)."""

    def delta(self, kind: str, text: str) -> bytes:
        """A "content" or "thinking" delta."""

    def tool_calls(self, calls: list[dict[str, Any]]) -> list[bytes]:
        """The reply's tool calls, as one or more stream events."""

    def final(self, plan: ReplyPlan) -> bytes:
        """Everything after the last delta (stats, finish reason, terminator)."""

    def error_event(self, message: str) -> bytes:
        """An in-stream error (``mid_stream_error``)."""

    def malformed(self, stream: bool) -> bytes:
        """A cut-off line (stream) or body (whole reply) for ``malformed_line``."""

    def whole(self, plan: ReplyPlan) -> Any:
        """The JSON body of a non-streamed reply."""

    def error_body(self, message: str) -> Any:
        """The JSON body of a 500 answer (``mid_stream_error`` without streaming)."""


def _terminal(faults: dict[str, Fault]) -> Fault | None:
    present = [faults[k] for k in TERMINAL_KINDS if k in faults]
    return min(present, key=lambda f: int(f.after)) if present else None


def _finish_with_fault(h: SimHandler, fault: Fault, framing: Framing) -> None:
    if fault.kind == "drop":
        h.wire.abort()
        h.close_connection = True
        return
    if fault.kind == "mid_stream_error":
        h.wire.send_chunk(framing.error_event(str(fault.message)))
    else:
        h.wire.send_chunk(framing.malformed(True))
    h.wire.end_chunks()


def _token_delay(h: SimHandler, faults: dict[str, Fault]) -> float:
    return float(faults["slow"].token_delay) if "slow" in faults else float(h.sim.token_delay)


def stream_reply(h: SimHandler, req: GenRequest, plan: ReplyPlan, framing: Framing,
                 faults: dict[str, Fault], finish: Callable[[], None]) -> None:
    """Send ``plan`` as a chunked stream, applying pacing and stream faults.

    A fault's ``after`` counts deltas (not the opening). ``finish()`` frees the
    generation slot; it is called before the last write so ``active``/``ps``
    are up to date once the client has the whole reply."""
    wire = h.wire
    events: list[tuple[str, Any]] = [("thinking", t) for t in plan.thinking]
    events += [("content", t) for t in plan.content]
    if plan.tool_calls and req.kind == "chat":
        events += [("raw", line) for line in framing.tool_calls(plan.tool_calls)]
    body_count = len(events)
    events.append(("final", None))
    delay = _token_delay(h, faults)
    stall = faults.get("stall_after")
    stall_at = min(int(stall.after), body_count) if stall else -1
    terminal = _terminal(faults)
    term_at = min(int(terminal.after), body_count) if terminal else -1
    throttled = delay > 0 or stall is not None
    opening = framing.opening()
    pending: list[bytes] = [opening] if opening else []
    size = 0

    def flush() -> None:
        nonlocal size
        if pending:
            wire.send_chunk(b"".join(pending))
            h.lines_sent += len(pending)
            pending.clear()
            size = 0

    h.start_stream(framing.content_type)
    if throttled:
        flush()
    start = time.monotonic()
    for i, (kind, payload) in enumerate(events):
        if i == stall_at:
            flush()
            wire.wait(float(stall.seconds))
            start += float(stall.seconds)
        if i == term_at:
            flush()
            finish()
            _finish_with_fault(h, terminal, framing)
            return
        if delay > 0 and 0 < i < body_count:
            wire.wait_until(start + i * delay)
        if kind == "final":
            finish()
            line = framing.final(plan)
        elif kind == "raw":
            line = payload
        else:
            line = framing.delta(kind, payload)
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


def single_reply(h: SimHandler, req: GenRequest, plan: ReplyPlan, framing: Framing,
                 faults: dict[str, Fault], finish: Callable[[], None]) -> None:
    """Send ``plan`` as one JSON body (``stream: false``); see ``stream_reply``."""
    delay = _token_delay(h, faults)
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
        h.send_json(500, framing.error_body(str(terminal.message)))
    elif terminal is not None:
        h.send_bytes(200, framing.malformed(False), "application/json")
    else:
        h.send_json(200, framing.whole(plan))


def generate(h: SimHandler, req: GenRequest, framing: Framing, faults: dict[str, Fault]) -> None:
    """Take a slot (FIFO, given up if the client leaves), load the model, plan
    the reply and send it with ``framing``."""
    sim = h.sim
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
                          scripted=sim.take_script() or req.tool_reply)
        send = stream_reply if req.stream else single_reply
        send(h, req, plan, framing, faults, finish)
    finally:
        finish()
