"""Prompts that fit: every live request is checked against the context size before sending,
and a reply that stopped at "length" says which limit it hit.

The prompt's size is an estimate (:mod:`.tokens`); the check refuses only when the prompt is
too long even if the estimate is :data:`~.tokens.OVERSHOOT` times too high, and warns when it
may be too long (the true count up to :data:`~.tokens.UNDERSHOOT` times the estimate).
"""

from __future__ import annotations

from typing import Any

from ..core.backend import ChatRequest, ContextInfo
from ..core.errors import ContextLengthError
from ..core.provider import BackendProvider
from .connections import Connections
from .tables import tables_in
from .tokens import OVERSHOOT, UNDERSHOOT, estimate_messages, estimate_tokens
from .warn import warn_user

__all__ = ["check_fit", "length_limit", "reply_room"]

#: Tokens kept for the reply when max_tokens is not set (at most a quarter of the context).
REPLY_ROOM = 256
_warned_fixed: set[str] = set()


def reply_room(max_tokens: int | None, context: int) -> int:
    """The part of the context kept for the reply: ``max_tokens`` (or :data:`REPLY_ROOM`), at
    most a quarter of the context."""
    return min(max_tokens or REPLY_ROOM, context // 4)


async def check_fit(conn: Connections, backend: BackendProvider, request: ChatRequest, *,
                    warn: bool = True) -> ContextInfo | None:
    """Raise :class:`ContextLengthError` when ``request`` cannot fit the model's context; warn
    (``warn``) when it may not, and once per server when it ignores the ``num_ctx`` asked for.
    Returns the context found (None: the server does not say; nothing is checked)."""
    num_ctx = request.extra.get("num_ctx")
    info = await conn.context_size(backend, request.model, num_ctx)
    if info is None:
        return None
    if num_ctx is not None and not info.adjustable and backend.base_url not in _warned_fixed:
        _warned_fixed.add(backend.base_url)
        size = f"{info.tokens:,} tokens ({info.source})" if info.tokens else "its own size"
        warn_user(f"num_ctx={num_ctx} has no effect on the server at {backend.base_url}: its "
                  f"context is fixed when it starts, here {size}. To change it, {info.hint}.")
    if not info.tokens:
        return info
    estimate = estimate_messages(request.messages, request.tools)
    reserved = reply_room(request.max_tokens, info.tokens)
    room = info.tokens - reserved
    if estimate > room * OVERSHOOT:
        raise ContextLengthError(_too_long(request, info, estimate, reserved),
                                 tokens=estimate, limit=info.tokens, reserved=reserved,
                                 url=backend.base_url)
    if warn and estimate * UNDERSHOOT > room:
        warn_user(f"The prompt is about {estimate:,} tokens (estimated), close to the context "
                  f"size of {info.tokens:,} ({info.source}) with {reserved:,} kept for the "
                  f"reply: the server may cut it or stop early. {_fixes(request, info, estimate)}")
    return info


def _too_long(request: ChatRequest, info: ContextInfo, estimate: int, reserved: int) -> str:
    return (f"The prompt is about {estimate:,} tokens (estimated), more than fits the context "
            f"size of {info.tokens:,} tokens ({info.source}) with {reserved:,} kept for the "
            f"reply; nothing was sent. {_fixes(request, info, estimate)}")


def _fixes(request: ChatRequest, info: ContextInfo, estimate: int) -> str:
    """The ways out, the likeliest first."""
    needed = _power_of_two(round(estimate * UNDERSHOOT) + reply_room(request.max_tokens, 1 << 30))
    fixes = []
    if info.adjustable and not (info.trained and needed > info.trained):
        fixes.append(f"a larger context: --num-ctx {needed} (num_ctx= in chat() and batch(), "
                     f"%config LLMMagics.num_ctx = {needed})")
    elif info.adjustable:
        fixes.append(f"a model with a longer context ('{request.model}' takes at most "
                     f"{info.trained:,} tokens)")
    elif info.hint:
        fixes.append(info.hint)
    fixes.append(_shorter(request.messages))
    if _history_share(request.messages) > 0.25:
        fixes.append("--new (or new=True) to leave the earlier conversation out")
    return "Fixes: " + "; ".join(fixes) + "."


def _shorter(messages: list[dict[str, Any]]) -> str:
    """A shorter prompt: for a table put in as rows, its summary or first rows."""
    prompt = str(messages[-1].get("content") or "") if messages else ""
    forms = [f"{{{name}:summary}} or {{{name}:head(20)}}" for name in tables_in(prompt)]
    return f"a shorter prompt ({'; '.join(forms)} instead of the rows)" if forms \
        else "a shorter prompt"


def _history_share(messages: list[dict[str, Any]]) -> float:
    """How much of the conversation is earlier turns (all but the last message)."""
    sizes = [estimate_tokens(str(m.get("content") or "")) for m in messages
             if m.get("role") != "system"]
    return (sum(sizes) - sizes[-1]) / sum(sizes) if sizes and sum(sizes) else 0.0


def _power_of_two(n: int) -> int:
    return 1 << max(n - 1, 1).bit_length()


def length_limit(stats: dict[str, Any], max_tokens: int | None) -> str | None:
    """Which limit a reply that ended with ``finish_reason`` "length" hit: "max_tokens" when
    it produced ``max_tokens`` tokens, else "context" (the context size filled up); None
    when it did not stop at a limit or the token count is unknown."""
    if stats.get("finish_reason") != "length":
        return None
    produced = stats.get("output_tokens")
    if max_tokens is None:
        return "context"
    if produced is None:
        return None
    return "max_tokens" if produced >= max_tokens else "context"
