"""Make untrusted model text safe to render as Markdown.

Outside code, ``&`` and ``<`` become entities, so ``<script>``, ``<img onerror=…>``,
``<iframe>``, ``<style>``, comments and entity tricks show as text, while Markdown syntax
(headings, lists, tables, emphasis, links, ``>`` quotes, math) still renders. Fenced code blocks
and inline code spans are left untouched: renderers show their content literally, so escaping
there would put ``&lt;`` on screen. An unclosed fence (a reply still streaming) runs to the end.
The scan is linear in the length of the text.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_TICKS = re.compile(r"`+")


def escape_html(text: str) -> str:
    """``text`` with HTML neutralised outside code (see the module docstring)."""
    out: list[str] = []
    prose: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        if fence is None:
            m = _FENCE.match(line.rstrip("\r\n"))
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                out.append(_escape_prose("".join(prose)))
                prose.clear()
                fence = m.group(1)
                out.append(line)
            else:
                prose.append(line)
        else:
            out.append(line)
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]} and len(line) - len(line.lstrip(" ")) <= 3:
                fence = None
    out.append(_escape_prose("".join(prose)))
    return "".join(out)


def _escape_prose(text: str) -> str:
    """Escape outside inline code spans (a backtick run closed by a run of the same length)."""
    if "`" not in text:
        return _entities(text)
    runs = [(m.start(), m.end()) for m in _TICKS.finditer(text)]
    # For each run length, the positions (in `runs`) of runs with that length, in order.
    by_len: dict[int, list[int]] = {}
    for i, (s, e) in enumerate(runs):
        by_len.setdefault(e - s, []).append(i)
    cursor = {n: 0 for n in by_len}
    out: list[str] = []
    pos = 0
    i = 0
    while i < len(runs):
        s, e = runs[i]
        n = e - s
        candidates = by_len[n]
        k = cursor[n]
        while k < len(candidates) and candidates[k] <= i:
            k += 1
        cursor[n] = k
        if k == len(candidates):  # no closing run: literal backticks
            i += 1
            continue
        close = candidates[k]
        out.append(_entities(text[pos:s]))
        out.append(text[s:runs[close][1]])
        pos = runs[close][1]
        i = close + 1
    out.append(_entities(text[pos:]))
    return "".join(out)


def _entities(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")
