"""One panel request: the ``ask_async`` pipeline with a caller-supplied display.

Mirrors :func:`gleitzeit_nb.notebook.chat.ask_async` (sessions, model choice, replay, streaming),
which builds its own display; a ``display=`` hook there would let this module go.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .. import replay
from ..core.errors import StreamError
from ..notebook.chat import Request, _finish, _GENERATION_KEYS, _replayed, _warn_if_blind
from ..notebook.connection import CONNECTIONS, Connections, stream_reply
from ..notebook.replies import Reply
from .stream import WidgetStream


async def run_request(req: Request, display: WidgetStream,
                      conn: Connections = CONNECTIONS) -> Reply:
    """Stream ``req`` into ``display``; the session gets the turn (partial if stopped)."""
    provider = conn.provider(req.host, req.timeout)
    capability = "vision" if req.images else "completion"
    model = req.model or await conn.pick_model(provider, capability)
    display.model = model
    session = conn.sessions.get(req.session)
    user: dict[str, Any] = {"role": "user", "content": req.prompt}
    if req.images:
        user["images"] = [img.b64 for img in req.images]
    history = session.request_messages() if req.remember else []
    params: dict[str, Any] = {"model": model, "messages": history + [user]}
    params.update({k: v for k, v in req.options.items() if k in _GENERATION_KEYS and v is not None})
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
        reply = await stream_reply(provider, "chat", params, display)  # type: ignore[arg-type]
    except (KeyboardInterrupt, asyncio.CancelledError):
        if req.remember:
            session.add_turn(user, display.text, interrupted=True, model=model)
        raise
    except StreamError as exc:
        if req.remember:
            session.add_turn(user, exc.partial, interrupted=True, model=model)
        raise
    _finish(req, session, user, model, reply)
    if key is not None:
        replayer.save(key, text=reply.text, thinking=reply.thinking, stats=reply.stats,
                      model=reply.model, status=reply.status)
    return reply
