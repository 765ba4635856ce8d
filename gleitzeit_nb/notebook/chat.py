"""One request from a notebook: sessions, model choice, streaming display, structured results.

``ask`` is what ``%%llm``, ``%vision`` and ``gleitzeit_nb.chat`` share; it runs the coroutine on
the kernel's loop through the bridge.
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import ProviderTimeoutError, StreamError
from .. import replay
from ..core.image_prep import PreparedImage
from . import bridge
from .connection import CONNECTIONS, Connections, stream_reply
from .display import ReplyDisplay
from .replies import Reply
from .structured import format_for, parse_reply

_GENERATION_KEYS = ("system", "temperature", "max_tokens", "seed", "file_path", "think",
                    "format", "keep_alive", "num_ctx", "top_k", "top_p", "stop")


@dataclass
class Request:
    """Everything one reply depends on, gathered from magic options, config and keywords."""

    prompt: str
    model: str | None = None
    host: str | None = None
    timeout: float = 120.0
    session: str | None = None
    remember: bool = True
    new: bool = False
    images: list[PreparedImage] = field(default_factory=list)
    json: bool = False
    schema: Any = None
    display: str | None = "auto"
    show_stats: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    partial: str | None = None  # set when the reply broke off: the text that did arrive


def ask(req: Request, conn: Connections = CONNECTIONS) -> Reply:
    """Run ``req`` to completion from synchronous code (a cell, a script)."""
    return bridge.run(ask_async(req, conn))


async def ask_async(req: Request, conn: Connections = CONNECTIONS, display: Any = None) -> Reply:
    """The request pipeline. ``display`` (an object with start/add/tick/finish, e.g. a widget
    panel's) replaces the display ``req.display`` would build; its ``model`` is set once known."""
    provider = conn.provider(req.host, req.timeout)
    capability = "vision" if req.images else "completion"
    model = req.model or await conn.pick_model(provider, capability)
    session = conn.sessions.get(req.session)
    if req.new:
        session.reset()
    user: dict[str, Any] = {"role": "user", "content": req.prompt}
    if req.images:
        user["images"] = [img.b64 for img in req.images]
    history = session.request_messages() if req.remember else []
    params: dict[str, Any] = {"model": model, "messages": history + [user]}
    params.update({k: v for k, v in req.options.items() if k in _GENERATION_KEYS and v is not None})
    if req.schema is not None:
        params["format"] = format_for(req.schema)
    elif req.json:
        params["format"] = "json"

    if display is not None:
        display.model = model
    elif req.display:
        display = ReplyDisplay(model=model, mode=req.display, show_stats=req.show_stats)
    else:
        display = _Silent()
    replayer = replay.current()
    key = None
    if replayer.active:
        request = {"provider": "ollama", "model": model, "messages": params["messages"],
                   "options": {k: v for k, v in params.items() if k not in ("model", "messages")}}
        key = replayer.key(**request)
        hit = replayer.lookup(**request, key=key)
        if hit is not None:
            return _finish(req, session, user, model, _replayed(hit, model, display))
    if req.images and req.model:
        await _warn_if_blind(conn, provider, model)
    try:
        reply = await stream_reply(provider, "chat", params, display)
    except (KeyboardInterrupt, asyncio.CancelledError):
        req.partial = display.text
        if req.remember:
            session.add_turn(user, display.text, interrupted=True, model=model)
        raise
    except (StreamError, ProviderTimeoutError) as exc:  # broke off: keep what arrived
        req.partial = exc.partial
        if req.remember and (exc.partial or isinstance(exc, StreamError)):
            session.add_turn(user, exc.partial, interrupted=True, model=model)
        raise
    _finish(req, session, user, model, reply)
    if key is not None:  # after parsing succeeded: a bad reply is never recorded
        replayer.save(key, text=reply.text, thinking=reply.thinking, stats=reply.stats,
                      model=reply.model, status=reply.status)
    return reply


def _finish(req: Request, session: Any, user: dict[str, Any], model: str, reply: Reply) -> Reply:
    if req.remember:
        session.add_turn(user, reply.text, model=model)
    if req.json or req.schema is not None:
        reply.value = parse_reply(reply.text, req.schema, done_reason=reply.stats.get("done_reason"))
    return reply


async def _warn_if_blind(conn: Connections, provider: Any, model: str) -> None:
    """Warn (naming the installed vision models) when ``model`` cannot see images."""
    others = await conn.missing_capability(provider, model, "vision")
    if others is not None:
        hint = (f"installed vision models: {', '.join(others)}" if others
                else "install one with `ollama pull llava`")
        warnings.warn(f"'{model}' has no vision capability and may ignore the image; {hint}.",
                      stacklevel=2)


def _replayed(hit: Any, model: str, display: Any) -> Reply:
    """Show a recorded reply exactly as a live one ends, with its recorded stats."""
    display.add(hit.text, hit.thinking)
    display.finish(stats=hit.stats, status="replayed")
    return Reply(hit.text, thinking=hit.thinking, stats=hit.stats, model=hit.model or model,
                 status="replayed")


class _Silent:
    """A display that shows nothing (``chat(..., display=None)``) but keeps the text."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._thinking: list[str] = []

    text = property(lambda self: "".join(self._parts))
    thinking = property(lambda self: "".join(self._thinking))

    def start(self) -> None:
        pass

    def tick(self) -> None:
        pass

    def add(self, content: str, thinking: str = "") -> None:
        self._parts.append(content)
        if thinking:
            self._thinking.append(thinking)

    def finish(self, **_: Any) -> None:
        pass


def chat(prompt: str, *, model: str | None = None, session: str | None = None, new: bool = False,
         system: str | None = None, temperature: float | None = None,
         max_tokens: int | None = None, seed: int | None = None, file: str | None = None,
         json: bool = False, schema: Any = None, think: bool | str | None = None,
         images: list[Any] | None = None, max_image_edge: int | None = 1024,
         host: str | None = None, timeout: float = 120.0, display: str | None = None,
         remember: bool = True) -> Reply:
    """Ask a model from Python code (scripts, loops): the twin of ``%%llm``.

    Returns a ``Reply`` (a ``str`` with ``.thinking``, ``.stats``, ``.value`` for JSON/schema
    replies). Record/replay follows ``gleitzeit_nb.replay_mode`` / ``GLEITZEIT_REPLAY``. ``display`` is None (show nothing), "auto", "live", "final" or "terminal".
    Conversation memory works as in the magic: ``session`` names it, ``new`` restarts it.
    """
    from ..core.image_prep import prepare_image

    prepared = [prepare_image(i, max_edge=max_image_edge) for i in images or []]
    req = Request(prompt=prompt, model=model, host=host, timeout=timeout, session=session,
                  new=new, images=prepared, json=json, schema=schema, display=display,
                  remember=remember,
                  options={"system": system, "temperature": temperature, "max_tokens": max_tokens,
                           "seed": seed, "file_path": file, "think": think})
    return ask(req)
