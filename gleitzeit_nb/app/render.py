"""MIME bundles for one reply: escaped Markdown for the notebook and the real text as text/plain.

Pure functions; :mod:`.display` decides where the bundles go. Model text only ever reaches the
Markdown through :func:`.markdown.escape_html` (or fully escaped HTML for the thinking); the
``<details>`` / ``<sub>`` wrapper around it is ours.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from .markdown import escape_html
from .tool_render import one_kind_of_newline, tool_block

__all__ = ["STATUSES", "THINKING_TAIL", "footer_text", "reply_bundle", "stats_line",
           "status_mark", "thinking_block", "waiting_bundle"]

STATUSES = ("streaming", "done", "interrupted", "stopped", "error", "replayed")
#: While streaming, only the end of the thinking is shown, to keep each update small.
THINKING_TAIL = 4000

_MARKS = {"interrupted": ("⏹", "interrupted — partial reply"), "stopped": ("⏹", "stopped — partial reply"),
          "error": ("⚠", "error")}
_DONE_REASONS = {"length": "stopped: length limit (max_tokens or the context size)",
                 "max_tokens": "stopped: max_tokens reached (raise --max-tokens / max_tokens=)",
                 "context": "stopped: the context size is full (raise --num-ctx / num_ctx=, or "
                            "the server's; --new starts afresh)",
                 "max_tool_rounds": "stopped: tool round limit (raise max_tool_rounds)",
                 "load": "model loaded, nothing generated", "unload": "model unloaded"}
# Entities for what Markdown, HTML or JupyterLab's math pass would act on: shown as typed.
_LITERAL = str.maketrans({c: f"&#{ord(c)};" for c in "&<>\"'\\`*_[]{}$@|~!#"})


def _literal(text: str) -> str:
    return " ".join(str(text).split()).translate(_LITERAL)


def _number(stats: Mapping[str, Any], key: str) -> float | None:
    value = stats.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def stats_line(stats: Mapping[str, Any] | None, *, status: str = "done",
               first_token: bool = False) -> str:
    """One plain line from a reply's usage (``Usage.as_dict()``), e.g.
    ``"llama.cpp · 52 tokens · 41.3 tok/s · prompt 26 tokens"`` (the server software first,
    so a footer says which model on which server wrote the reply, also when replayed).

    Load time shows from 0.1 s; finish reason "stop" adds nothing, "length" says which limit
    was hit (``length_limit``: "max_tokens" or "context", see :func:`.fit.length_limit`) and how
    to get more.
    ``first_token`` adds the time to the first token (``"first token 0.21 s"``).
    """
    stats = stats or {}
    parts = [str(stats["server"])] if stats.get("server") else []
    if status == "replayed":
        parts.append("replayed")
    tokens, secs = _number(stats, "output_tokens"), _number(stats, "generation_seconds")
    if tokens is not None:
        parts.append(f"{tokens:.0f} tokens")
        if secs:
            parts.append(f"{tokens / secs:.1f} tok/s")
    ttft = _number(stats, "first_token_seconds") if first_token else None
    if ttft is not None:
        parts.append(f"first token {ttft:.2f} s")
    load = _number(stats, "load_seconds")
    if load is not None and load >= 0.1:
        parts.append(f"load {load:.1f} s")
    prompt = _number(stats, "input_tokens")
    if prompt is not None:
        parts.append(f"prompt {prompt:.0f} tokens")
    reason = stats.get("finish_reason")
    if reason == "length":
        reason = stats.get("length_limit") or reason
    if reason and reason != "stop":
        parts.append(_DONE_REASONS.get(reason, f"stopped: {reason}"))
    return " · ".join(parts)


def status_mark(status: str, note: str = "") -> tuple[str, str] | None:
    """(icon, label with ``note``) for an interrupted, stopped or error reply; None otherwise."""
    if status not in _MARKS:
        return None
    icon, label = _MARKS[status]
    return icon, label + (f": {note}" if note else "")


def footer_text(stats: Mapping[str, Any] | None, *, status: str, show_stats: bool = True,
                first_token: bool = False) -> str:
    """A finished reply's footer (:func:`stats_line`, or just "replayed"); "" while streaming."""
    if status in ("waiting", "streaming"):
        return ""
    footer = stats_line(stats, status=status, first_token=first_token) if show_stats else ""
    return footer or ("replayed" if status == "replayed" else "")


def thinking_block(thinking: str, *, streaming: bool) -> tuple[str, str]:
    """The collapsible thinking block (Markdown) and its plain form.

    Shown as escaped HTML on one line: a single HTML block that no fence, blank line or math in
    the thinking can break open, so the answer after it is parsed exactly as on its own.
    """
    shown, note = thinking, ""
    if streaming and len(thinking) > THINKING_TAIL:
        shown = thinking[-THINKING_TAIL:]
        note = f" (last {THINKING_TAIL:,} of {len(thinking):,} characters)"
    body = html.escape(one_kind_of_newline(shown)).replace("\n", "<br>")
    if streaming:
        head = f"<details open><summary>Thinking…{note}</summary>"
    else:
        head = f"<details><summary>Thinking ({len(thinking.split())} words)</summary>"
    md = f'{head}<div style="opacity:.75">{"…" if note else ""}{body}</div></details>\n\n'
    return md, f"[thinking]\n{shown}\n[/thinking]"


def reply_bundle(text: str, thinking: str = "", *, model: str, stats: Mapping[str, Any] | None = None,
                 status: str = "streaming", show_stats: bool = True, note: str = "",
                 tools: Sequence[tuple[int, Any]] = ()) -> dict[str, str]:
    """``text/markdown`` (escaped reply) and ``text/plain`` (the reply itself) for one state.

    ``status`` is one of :data:`STATUSES`; interrupted, stopped and error add a mark after the
    text (error with ``note``), replayed a small mark in the footer. ``tools`` are tool calls
    (:class:`~.tool_runs.ToolRun`) with the position in ``text`` where each was made: each
    shows there as a collapsed block.
    """
    if status not in STATUSES:
        raise ValueError(f"status {status!r}: use one of {', '.join(STATUSES)}")
    streaming = status == "streaming"
    md, plain = [], [text]
    if thinking:
        think_md, think_plain = thinking_block(thinking, streaming=streaming)
        md.append(think_md)
        plain.append(("\n\n" if text else "") + think_plain)
    if tools:
        md.extend(_with_tools(text, tools, close_fence=not streaming))
        plain[0] = "\n".join(_plain_with_tools(text, tools))
    else:
        md.append(escape_html(text, close_fence=not streaming))
    if mark := status_mark(status, note):
        md.append(f"\n\n{mark[0]} *{_literal(mark[1])}*")
        plain.append(f"\n[{mark[1]}]")
    if footer := footer_text(stats, status=status, show_stats=show_stats):
        md.append(f"\n\n<sub>{_literal(model)} · {_literal(footer)}</sub>")
        plain.append(f"\n[{model} · {footer}]")
    return {"text/plain": "".join(plain), "text/markdown": "".join(md)}


def _with_tools(text: str, tools: Sequence[tuple[int, Any]], *, close_fence: bool) -> list[str]:
    """The text escaped piece by piece, each tool call's block at its place."""
    out, start = [], 0
    for at, run in tools:
        if text[start:at].strip():
            out.append(escape_html(text[start:at], close_fence=True) + "\n\n")
        out.append(tool_block(run)[0])
        start = max(start, at)
    out.append(escape_html(text[start:], close_fence=close_fence))
    return out


def _plain_with_tools(text: str, tools: Sequence[tuple[int, Any]]) -> list[str]:
    out, start = [], 0
    for at, run in tools:
        if text[start:at].strip():
            out.append(text[start:at].strip("\n"))
        out.append(tool_block(run)[1])
        start = max(start, at)
    out.append(text[start:])
    return out


def waiting_bundle(model: str, elapsed: float | None = None) -> dict[str, str]:
    """The status line shown until the first token arrives."""
    since = ""
    if elapsed is not None:
        since = f" ({elapsed:.0f} s{' — loading the model?' if elapsed >= 3 else ''})"
    return {"text/plain": f"⏳ waiting for {model}…{since}",
            "text/markdown": f"⏳ *waiting for* **{_literal(model)}**…{since}"}
