"""MIME bundles for a reply: escaped Markdown plus a real ``text/plain``, thinking, stats footer."""

from __future__ import annotations

from typing import Any

from .markdown import escape_html

#: While streaming, only the tail of the thinking is shown (keeps each update small).
THINKING_TAIL = 4000

_MARKS = {
    "interrupted": "⏹ *interrupted — partial reply*",
    "stopped": "⏹ *stopped — partial reply*",
    "error": "✖ *failed*",
    "replayed": "↺ *replayed*",
}
_DONE_REASONS = {
    "length": "stopped: length limit (raise max_tokens)",
    "load": "model loaded, no reply",
    "unload": "model unloaded",
}


def stats_line(stats: dict[str, Any] | None, *, status: str = "done") -> str:
    """One line: tokens, speed, load time, prompt tokens, why it stopped."""
    if not stats:
        return ""
    parts = []
    count, ns = stats.get("eval_count"), stats.get("eval_duration")
    if count is not None:
        parts.append(f"{count} tokens")
        if ns and status != "replayed":
            parts.append(f"{count / (ns / 1e9):.1f} tok/s")
    load = stats.get("load_duration")
    if load and load >= 1e8 and status != "replayed":
        parts.append(f"load {load / 1e9:.1f} s")
    if stats.get("prompt_eval_count") is not None:
        parts.append(f"prompt {stats['prompt_eval_count']} tokens")
    reason = stats.get("done_reason")
    if reason in _DONE_REASONS:
        parts.append(_DONE_REASONS[reason])
    return " · ".join(parts)


def reply_bundle(text: str, thinking: str = "", *, model: str, stats: dict[str, Any] | None = None,
                 status: str = "streaming", show_stats: bool = True, note: str = "") -> dict[str, str]:
    """``text/markdown`` (model text escaped) and ``text/plain`` (the real text) for a reply."""
    md: list[str] = []
    plain: list[str] = []
    if thinking:
        md.append(_thinking_block(thinking, streaming=status == "streaming"))
        plain.append(f"[thinking]\n{thinking}\n[/thinking]\n")
    md.append(escape_html(text))
    plain.append(text)
    mark = _MARKS.get(status)
    if mark:
        detail = f": {escape_html(note)}" if note else ""
        md.append(f"\n\n{mark}{detail}")
        plain.append(f"\n[{status}{': ' + note if note else ''}]")
    footer = stats_line(stats, status=status) if show_stats else ""
    if footer:
        md.append(f"\n\n<sub>{escape_html(model)} · {footer}</sub>")
        plain.append(f"\n[{model} · {footer}]")
    return {"text/plain": "".join(plain), "text/markdown": "".join(md)}


def waiting_bundle(model: str, elapsed: float | None = None) -> dict[str, str]:
    """The status line shown until the first token (the model may be loading)."""
    since = f" ({elapsed:.0f} s — the model may be loading)" if elapsed and elapsed >= 1 else ""
    line = f"⏳ waiting for {model}…{since}"
    return {"text/plain": line, "text/markdown": f"*{escape_html(line)}*"}


def _thinking_block(thinking: str, *, streaming: bool) -> str:
    if streaming:
        shown = thinking[-THINKING_TAIL:]
        cut = "…" if len(shown) < len(thinking) else ""
        return (f"<details open><summary>Thinking…</summary>\n\n{cut}{escape_html(shown)}"
                "\n\n</details>\n\n")
    words = len(thinking.split())
    return (f"<details><summary>Thinking ({words} words)</summary>\n\n{escape_html(thinking)}"
            "\n\n</details>\n\n")
