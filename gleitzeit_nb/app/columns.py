"""MIME bundles for several replies side by side (a model comparison): an HTML table, and the
same replies as plain-text blocks one after the other.

Markdown cannot make columns, so the table is HTML whose cells hold the replies as escaped text
(:func:`.tool_render.html_text`: line ends, ``$`` and ``\\`` as entities; the table has the
classes MathJax skips, so JupyterLab's math pass leaves them alone), never the model's Markdown
or HTML: a column shows its reply as typed, indentation kept and long words wrapped
(``white-space:pre-wrap;overflow-wrap:anywhere``). The tags and styles around it are ours. Pure
functions; the display decides where the bundles go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .render import footer_text, status_mark, thinking_block, waiting_bundle
from .tool_render import html_text

__all__ = ["Column", "column_block", "column_footer", "columns_bundle"]

_CELL = ("text-align:left;vertical-align:top;padding:4px 8px;border:1px solid rgba(128,128,128,.35);"
         "white-space:pre-wrap;overflow-wrap:anywhere")
#: Classes MathJax skips: it typesets an HTML output's text, where entities are plain ``$``.
_NO_MATH = "tex2jax_ignore mathjax_ignore"
_TABLE = "table-layout:fixed;width:100%;border-collapse:collapse;margin:0"


class Column(Protocol):
    """What a column shows: one model's reply so far (``status``: "waiting", "streaming" or a
    final status of :data:`.render.STATUSES`; ``note``: an error message)."""

    label: str
    host: str
    text: str
    thinking: str
    status: str
    stats: Mapping[str, Any] | None
    note: str

    def waited(self) -> float | None: ...


def column_footer(col: Column, *, show_stats: bool = True) -> str:
    """``tokens · tok/s · first token · load`` as one plain line ("" while streaming)."""
    return footer_text(col.stats, status=col.status, show_stats=show_stats, first_token=True)


def _cell(col: Column) -> str:
    if col.status == "waiting" or (col.status == "streaming" and not (col.text or col.thinking)):
        body = html_text(waiting_bundle(col.label, col.waited())["text/plain"])
        return f'<span style="opacity:.6">{body}</span>'
    parts = []
    if col.thinking:
        parts.append(thinking_block(col.thinking, streaming=col.status == "streaming")[0].strip())
    parts.append(html_text(col.text))
    if mark := status_mark(col.status, col.note):
        parts.append(f"&#10;&#10;{mark[0]} <em>{html_text(mark[1])}</em>")
    return "".join(parts)


def _header(col: Column) -> str:
    replayed = ' <span style="opacity:.6">↺ replayed</span>' if col.status == "replayed" else ""
    return (f"<b>{html_text(col.label)}</b>"
            f'<br><span style="opacity:.6;font-weight:normal">{html_text(col.host)}</span>'
            + replayed)


def column_block(col: Column, *, show_stats: bool = True) -> str:
    """One column as plain text: a heading line, the reply, its mark and footer."""
    replayed = " (replayed)" if col.status == "replayed" else ""
    lines = [f"── {col.label} · {col.host}{replayed} ──"]
    if col.thinking:
        lines.append(f"[thinking]\n{col.thinking}\n[/thinking]")
    if col.status == "waiting":
        lines.append(waiting_bundle(col.label, col.waited())["text/plain"])
    elif col.text or not col.note:
        lines.append(col.text)
    if mark := status_mark(col.status, col.note):
        lines.append(f"[{mark[1]}]")
    if footer := column_footer(col, show_stats=show_stats):
        lines.append(f"[{footer}]")
    return "\n".join(lines)


def columns_bundle(columns: Sequence[Column], *, show_stats: bool = True) -> dict[str, str]:
    """``text/html`` (one table: a column per reply, footers in the last row) and
    ``text/plain`` (the blocks one after the other) for the current state."""
    width = f"{100 / max(1, len(columns)):.2f}%"
    rows = [_row("th", [_header(c) for c in columns], width),
            _row("td", [_cell(c) for c in columns], width)]
    footers = [column_footer(c, show_stats=show_stats) for c in columns]
    if any(footers):
        rows.append(_row("td", [f'<sub style="opacity:.75">{html_text(f)}</sub>'
                                for f in footers], width))
    table = (f'<table class="gleitzeit-compare {_NO_MATH}" style="{_TABLE}">' + "".join(rows)
             + "</table>")
    plain = "\n\n".join(column_block(c, show_stats=show_stats) for c in columns)
    return {"text/plain": plain, "text/html": table}


def _row(tag: str, cells: Sequence[str], width: str) -> str:
    return "<tr>" + "".join(f'<{tag} style="{_CELL};width:{width}">{c}</{tag}>'
                            for c in cells) + "</tr>"
