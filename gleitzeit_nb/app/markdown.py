"""Make untrusted model text safe for Jupyter's Markdown renderer, keeping code and math intact.

Trusted outputs render HTML inside Markdown live, so :func:`escape_html` turns ``<`` into ``&lt;``
and ``&`` into ``&amp;`` except where the renderer shows text literally: fenced code blocks (an
unclosed one, as while streaming, runs to the end); inline code spans, unless tag-like (``<x``,
``</``, ``<!``, ``<?``): those become ``<code>…</code>`` with escaped content, inert however a
renderer pairs the backticks; and math JupyterLab lifts out before parsing (a port of its
``removeMath``), where only ``<x`` → ``\\lt x`` and ``"`` → ``''`` change: JupyterLab escapes ``&<>``
in math itself but pastes it back even into attributes.

Code stays raw only while both CommonMark and marked (JupyterLab's parser, which also takes lazy
lines into list items and quotes) must see code; from the first line where they could disagree,
everything is escaped (a cosmetic loss, never live HTML). Link reference definitions are
neutralised (marked lets titles span lines) and quotes on fence lines escaped (JupyterLab puts the
language into ``class="language-…"`` unescaped). Linear time.
"""

from __future__ import annotations

import bisect
import functools
import re

from .math_spans import math_spans as _math_spans

__all__ = ["escape_html"]

_PREFIX = r"[ \t>]*+(?:(?:[-+*]|\d{1,9}[.)])[ \t]++[ \t>]*+)*+"  # block quotes and list markers
_FENCEISH = re.compile(_PREFIX + "(?:```|~~~)")
_FENCE_LINE = re.compile("^" + _PREFIX + "(?:```|~~~).*", re.M)
_EVENT = re.compile("^(?:" + _PREFIX + r"(?:```|~~~)| *+(?:[-+*]|\d{1,9}[.)])[ \t])", re.M)
_NEED_ITEMS = re.compile(  # fences indented 4+, or on a line with an ordered-list marker
    "^(?: {4}" + _PREFIX + r"|[ \t>]*+(?:[-+*][ \t]++[ \t>]*+)*+\d{1,9}[.)][ \t]++" + _PREFIX
    + ")(?:```|~~~)", re.M)
_RUN = re.compile(r"`+")
_MARKER = re.compile(r"([-+*]|(\d{1,9})[.)])([ \t]*)")
_HR = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_BQ_OPEN = re.compile(r"((?: {0,3}> ?)+)( *)(`{3,}|~{3,})(.*)")
_FENCE_RUN = re.compile(r"(`+|~+)(.*)")
_INTERRUPTS = ("-", "+", "*", "1")  # list items that may interrupt a paragraph
_RAW, _TEXT, _LINE, _ESC = range(4)
_NOT_FENCE = "not a fence"
_pattern = functools.lru_cache(maxsize=256)(lambda src: re.compile(src, re.M))


def _markers(s: str, col: int) -> tuple[list[int], str | None, str] | None:
    """List markers opening ``s`` (at ``col``): content columns, first marker, rest; None on tabs."""
    cols: list[int] = []
    first, pos = None, 0
    while m := _MARKER.match(s, pos):
        gap = m.group(3)
        if not gap or m.end() == len(s):  # "-x" is no marker; an empty item is not worth tracking
            break
        if "\t" in gap:
            return None
        first = first or m.group(2) or m.group(1)
        if len(gap) > 4:  # the content is indented code: its column is marker + 1
            return cols + [col + len(m.group(1)) + 1], first, s[m.start(3) + 1:]
        col += len(m.group(1)) + len(gap)
        cols.append(col)
        pos = m.end()
    return cols, first, s[pos:]


def _opener(line: str, ind: int, s: str, items: list[int], prev_blank: bool, prev_c: int):
    """A fence-like line: (quote depth, lo, hi, amb, char, run), _NOT_FENCE, or None if unsure."""
    if "\t" in line[: _FENCEISH.match(line).end()]:
        return None
    depth = 0
    if s[0] == ">":
        m = _BQ_OPEN.fullmatch(line)
        if ind or not m or len(m.group(2)) > 3:
            return None
        depth, lo, parent, run, info = m.group(1).count(">"), len(m.group(2)), 0, m.group(3), m.group(4)
    elif s[0] in "`~":
        lo, parent = ind, items[-1] if items else 0
        if lo - parent > 3:
            return None
        run, info = _FENCE_RUN.match(s).groups()
    else:
        parsed = _markers(s, ind)
        if not parsed or not parsed[0] or ind - (items[-1] if items else 0) > 3:
            return None
        cols, first, rest = parsed
        if not (first in _INTERRUPTS or prev_blank or prev_c > ind) or rest[:3] not in ("```", "~~~"):
            return None
        items.extend(cols)
        lo = parent = cols[-1]
        run, info = _FENCE_RUN.match(rest).groups()
    if run[0] == "`" and "`" in info:
        return _NOT_FENCE
    # Content must stay indented >= lo; a clean closer indented lo..hi closes it in every reading.
    return depth, lo, parent + 3, lo + 3, run[0], len(run)


def _fence_line(line: str, fence: tuple) -> str:
    """'content', 'close', 'end' (its block quote ended) or 'unsure' for a line in a fence."""
    depth, lo, hi, amb, ch, n = fence
    rel = line
    if depth:
        m = _pattern(r"(?: {0,3}> ?)" * depth).match(line)
        if not m:
            return "end" if not line.strip(" \t") else "unsure"
        rel = line[m.end():]
    s = rel.lstrip(" ")
    if not s.strip(" \t"):
        return "content"
    if s[0] == "\t":  # columns become uncertain; harmless only in a top-level fence
        return "content" if not depth and not lo else "unsure"
    ind = len(rel) - len(s)
    if ind < lo:
        return "unsure"
    tail = s.lstrip(ch)
    if len(s) - len(tail) >= max(n, 3):
        if not tail.strip(" ") and ind <= hi:
            return "close"
        if not tail.strip(" \t~`") and ind <= amb:  # marked and CommonMark may disagree
            return "unsure"
    return "content"


def _pop(view: str, items: list[int], a: int, b: int) -> None:
    """Forget the list items a less indented non-blank line in ``view[a:b]`` may close."""
    while items:
        m = _pattern(r"^ {0,%d}[^ \n]" % (items[-1] - 1)).search(view, a, b)
        if not m:
            return
        while items and items[-1] > m.end() - m.start() - 1:
            items.pop()
        a = m.start()


def _blocks(view: str) -> tuple[list[list[int]], tuple | None]:
    """[mode, start, end] pieces, and the fence still open at the end (only lines that can change
    the state are looked at)."""
    n = len(view)
    if "```" not in view and "~~~" not in view:
        return [[_TEXT, 0, n]], None
    out: list[list[int]] = []

    def emit(mode: int, a: int, b: int) -> None:  # merges with the previous piece of that mode
        if a < b and out and out[-1][0] == mode:
            out[-1][2] = b
        elif a < b:
            out.append([mode, a, b])

    items: list[int] = []  # content columns of the list items certainly open here
    track = _NEED_ITEMS.search(view) is not None  # open items matter only to such fences
    fence, pos = None, 0
    while pos < n:
        if fence is None:
            m = (_EVENT if track else _FENCE_LINE).search(view, pos)
            at = m.start() if m else n
            _pop(view, items, pos, at)
            emit(_TEXT, pos, at)
        elif fence[0]:  # inside a block quote every line matters
            at, m = pos, True
        else:
            _, lo, _, amb, ch, run = fence
            src = r"^(?: {0,%d}%s{%d}[ \t~`]*$" % (amb, ch, run) + (r"| {0,%d}[^ \n])" % (lo - 1) if lo else ")")
            m = _pattern(src).search(view, pos)
            at = m.start() if m else n
            emit(_RAW, pos, at)
        if not m:
            break
        eol = view.find("\n", at)
        nxt = n if eol < 0 else eol + 1
        line = view[at:nxt].rstrip("\n")
        if fence is not None:
            verdict = _fence_line(line, fence)
            if verdict == "unsure":
                emit(_ESC, at, n)
                return out, None
            if verdict == "close":
                _pop(view, items, at, nxt)
            fence = fence if verdict == "content" else None
            emit(_RAW, at, nxt)
            pos = nxt
            continue
        prev = view[view.rfind("\n", 0, max(at - 1, 0)) + 1:at] if at and track else ""
        prev_blank, prev_c = not prev.strip(" \t\n"), items[-1] if items else 0
        s = line.lstrip(" ")
        ind = len(line) - len(s)
        _pop(view, items, at, nxt)
        mode = _TEXT
        if ("```" in line or "~~~" in line) and _FENCEISH.match(line):
            res = _opener(line, ind, s, items, prev_blank, prev_c)
            if res is None:
                emit(_ESC, at, n)
                return out, None
            if res is not _NOT_FENCE:
                fence, mode = res, _LINE
        elif not _HR.match(line):
            parsed = _markers(s, ind)
            if parsed and parsed[0] and ind - (items[-1] if items else 0) <= 3 and (
                    parsed[1] in _INTERRUPTS or prev_blank or prev_c > ind):
                items.extend(parsed[0])
        emit(mode, at, nxt)
        pos = nxt
    return out, fence


# --- inline: code spans and escaping ----------------------------------------------------------
_PARA_BREAK = re.compile(r"\n[ \t]*(?=\n)")
_DANGER = re.compile(r"<[A-Za-z/!?]")  # what can start a tag, comment, declaration or autolink
_DEF = re.compile("^(" + _PREFIX + r")\[(?=(?:\\.|[^\[\]\\])*\]:)", re.M)
_CODE_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;",
                            **{c: f"&#{ord(c)};" for c in "!\"'()*.:[]^_`|~"}})
_NO_CONVERT = frozenset("$\\{}@\x00\n")  # converting these would change what removeMath sees
_SENTINEL = re.compile("\x00(\\d+)\x00")
_MATH_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_SEP = "\n\n\x00\n\n"


def _esc(s: str) -> str:
    s = s.replace("&", "&amp;").replace("<", "&lt;")
    if "](" in s:
        s = _LINK.sub(_inert_link, s)
    return _DEF.sub(r"\1&#91;", s) if "]:" in s else s


_LINK = re.compile(r"\]\((?=\s*+([^\s()]*))")  # an inline link's start (its destination)
_SCRIPT_SCHEMES = ("javascript", "vbscript", "data")


def _inert_link(m: re.Match[str]) -> str:
    """``[x](javascript:…)`` stays text: ``&#40;`` is a literal "(", so no link is parsed."""
    scheme, colon, _ = m[1].replace("\\", "").partition(":")
    return "]&#40;" if colon and scheme.lower() in _SCRIPT_SCHEMES else m[0]


def _script_link(s: str) -> bool:
    return any(_inert_link(m) != m[0] for m in _LINK.finditer(s))


def _fence_quotes(s: str) -> str:
    """Escape quotes on the fence-like lines of ``s`` (whole lines outside code)."""
    if ("```" in s or "~~~" in s) and ('"' in s or "'" in s):
        s = _FENCE_LINE.sub(lambda m: m.group().replace('"', "&quot;").replace("'", "&#39;"), s)
    return s


def _code_spans(s: str) -> list[tuple[int, int, int, int]]:
    """CommonMark code spans within paragraphs: (opener start, opener end, closer start, end)."""
    runs = [m.span() for m in _RUN.finditer(s)]
    by_len: dict[int, list[int]] = {}
    breaks: list[int] | None = None
    spans, i, n = [], 0, len(runs)
    while i < n:
        a, b = runs[i]
        if a and s[a - 1] == "\\":
            k = a - 1
            while k and s[k - 1] == "\\":
                k -= 1
            a += (a - k) % 2  # an odd number of backslashes escapes the first backtick
        j = i + 1
        if j >= n or runs[j][1] - runs[j][0] != b - a:  # not simply the next run: look it up
            if not by_len:
                for idx, (x, y) in enumerate(runs):
                    by_len.setdefault(y - x, []).append(idx)
            lst = by_len.get(b - a, ())
            k = bisect.bisect_right(lst, i)
            j = lst[k] if a < b and k < len(lst) else n
        if j < n and s.find("\n", b, runs[j][0]) >= 0:  # a span cannot cross a blank line
            breaks = [m.start() for m in _PARA_BREAK.finditer(s)] if breaks is None else breaks
            j = j if bisect.bisect(breaks, b) == bisect.bisect(breaks, runs[j][0]) else n
        if j < n:
            spans.append((a, b, *runs[j]))
        i = j + 1 if j < n else i + 1
    return spans


def _inline(s: str) -> str:
    if "`" not in s:
        return _esc(s)
    out, last, ls = [], 0, 0
    plain_line: dict[int, bool] = {}
    for a, b, c, d in _code_spans(s):
        out.append(_esc(s[last:a]))
        body, last = s[b:c], d
        ls = max(ls, s.rfind("\n", ls, a) + 1)  # start of the span's line
        if not _DANGER.search(body) and not ("](" in body and _script_link(body)):
            out.append(s[a:d])
            continue
        if ls not in plain_line:  # no math, no fence: a <code> there changes nothing else
            le = s.find("\n", a)
            line = s[ls:] if le < 0 else s[ls:le]
            plain_line[ls] = "$" not in line and "\x00" not in line and not _FENCEISH.match(line)
        if plain_line[ls] and _NO_CONVERT.isdisjoint(body):
            if body[:1] == " " and body[-1:] == " " and body.strip(" "):
                body = body[1:-1]
            out.append("<code>" + body.translate(_CODE_HTML) + "</code>")
        else:
            body = body.replace("&", "&amp;").replace("<", "&lt;")
            out.append(s[a:b] + (_LINK.sub(_inert_link, body) if "](" in body else body) + s[c:d])
    out.append(_esc(s[last:]))
    return "".join(out)


def escape_html(text: str, *, close_fence: bool = False) -> str:
    """Return ``text`` as Markdown in which no model-written HTML can become live (see module doc).

    With ``close_fence``, a fence left open at the end is closed, so Markdown appended after a
    blank line is not swallowed by it. Whatever follows must hold no ``$``, backslash, braces or
    fence lines: they would change what JupyterLab's removeMath extracts from this text.
    """
    if "\r" in text or "\u2028" in text or "\u2029" in text:
        text = re.sub(r"\r\n?|[\u2028\u2029]", "\n", text)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    out, fence = _escape(text, close_fence)
    if fence:  # re-escaped with the closer, so the analysis covers it too
        depth, lo, _, _, ch, run = fence
        out = _escape(text + ("" if text.endswith("\n") else "\n") + "> " * depth + " " * lo + ch * run)[0]
    return out


def _escape(text: str, want_fence: bool = False) -> tuple[str, tuple | None]:
    """The escaped text, and (if wanted) the fence it leaves open."""
    if "<" not in text and "&" not in text and not ("]" in text and _script_link(text)) and not (
            ('"' in text or "'" in text) and ("```" in text or "~~~" in text or "$" in text or "\\" in text)):
        return text, _blocks(text)[1] if want_fence else None  # no HTML, no quote for an attribute
    spans = _math_spans(text)
    if spans is None:  # escape all; quotes too, as math may still end up inside attributes
        out = text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
        return (_LINK.sub(_inert_link, out) if "](" in out else out), None
    maths: list[str] = []
    view, last, parts = text, 0, []
    for a, b in spans:
        parts += [text[last:a], f"\x00{len(maths)}\x00"]
        math = text[a:b]
        maths.append(_MATH_TAG.sub(r"\\lt ", math).replace('"', "''") if "<" in math or '"' in math else math)
        last = b
    if spans:
        view = "".join(parts) + text[last:]
    blocks, fence = _blocks(view)
    # One inline pass over all prose; the separator is a paragraph break no span can cross.
    prose = iter(_inline(_SEP.join(view[a:b] for mode, a, b in blocks if mode == _TEXT)).split(_SEP))
    out = "".join(view[a:b] if mode == _RAW else _fence_quotes(next(prose) if mode == _TEXT else _esc(view[a:b]))
                  for mode, a, b in blocks)
    return (_SENTINEL.sub(lambda m: maths[int(m.group(1))], out) if maths else out), fence if want_fence else None
