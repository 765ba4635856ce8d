"""One tool call as a collapsed block: name, arguments, result preview, duration, error.

Everything in it came from the model or from a function the model steered, so all of it is
escaped: the block is one line of HTML (every line end, ``\r`` included, becomes an entity, so
no blank line, fence or math in a result can break it open, and ``$`` / ``\\`` are entities so
JupyterLab's math pass leaves them alone). A DataFrame result previews as a small table whose
cells are escaped text.
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["tool_block", "html_text", "one_kind_of_newline", "PREVIEW_CHARS", "PREVIEW_ROWS"]

PREVIEW_CHARS = 600
PREVIEW_ROWS = 5
#: How each outcome is marked in the summary line.
_MARKS = {"pending": "❔ waiting for approval", "running": "⏳ running", "ok": "✓",
          "error": "⚠ error", "invalid": "⚠ invalid call", "refused": "✗ refused",
          "interrupted": "⏹ interrupted", "skipped": "⏭ not run"}
_ENTITIES = str.maketrans({"$": "&#36;", "\\": "&#92;", "\n": "&#10;", "`": "&#96;"})


def html_text(value: Any) -> str:
    """``value`` as HTML-escaped text on one line: line ends, ``$``, ``\\`` and backticks as
    entities (no Markdown block or math pass can act on it; ``white-space:pre-wrap`` shows the
    line ends)."""
    return html.escape(one_kind_of_newline(str(value)), quote=True).translate(_ENTITIES)


def one_kind_of_newline(text: str) -> str:
    """``\r\n``, ``\r`` and the Unicode line / paragraph separators as ``\n``: a Markdown
    parser reads each as a line end (two make a blank line, which ends an HTML block)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n") \
        .replace("\u2029", "\n")


def tool_block(run: Any) -> tuple[str, str]:
    """The Markdown (a one-line ``<details>`` block) and the plain text of ``run``."""
    args = run.arguments_text()
    head = f"🔧 {run.name}({args if len(args) <= 80 else args[:79] + '…'})"
    mark = _MARKS.get(run.status, run.status)
    timing = f" · {run.seconds:.2f} s" if run.seconds is not None else ""
    body = [f"<b>arguments</b><pre>{html_text(args or '(none)')}</pre>"]
    if run.error:
        body.append(f"<b>{html_text(mark)}</b><pre>{html_text(run.error)}</pre>")
    elif run.status == "ok":
        body.append(f"<b>result</b>{_preview_html(run)}")
    md = (f"<details><summary><code>{html_text(head)}</code> {html_text(mark)}{html_text(timing)}</summary>"
          f"{''.join(body)}</details>\n\n")
    plain = f"[{head} → {mark}{timing}]"
    if run.error:
        plain += f"\n  {run.error}"
    elif run.status == "ok":
        plain += "\n  " + _cut(run.result).replace("\n", "\n  ")
    return md, plain


def _preview_html(run: Any) -> str:
    value = run.value
    if callable(getattr(value, "to_frame", None)) and hasattr(value, "index"):  # a Series
        value = value.to_frame()
    if hasattr(value, "columns") and callable(getattr(value, "itertuples", None)):
        return _table(value)
    return f"<pre>{html_text(_cut(run.result))}</pre>"


def _table(frame: Any) -> str:
    """The first rows of a DataFrame as an HTML table of escaped text, with its shape."""
    head = frame.head(PREVIEW_ROWS)
    cols = "".join(f"<th>{html_text(c)}</th>" for c in ["", *map(str, frame.columns)])
    rows = "".join("<tr>" + "".join(f"<td>{html_text(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in head.itertuples(index=True, name=None))
    shape = getattr(frame, "shape", (len(frame), len(frame.columns)))
    more = f"first {PREVIEW_ROWS} of " if shape[0] > PREVIEW_ROWS else ""
    return (f"<table><thead><tr>{cols}</tr></thead><tbody>{rows}</tbody></table>"
            f"<sub>{more}{shape[0]} rows × {shape[1]} columns</sub>")


def _cell(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _cut(text: str) -> str:
    return text if len(text) <= PREVIEW_CHARS else (
        f"{text[:PREVIEW_CHARS]}… ({len(text) - PREVIEW_CHARS:,} more characters)")
