"""JupyterLab's math pre-pass (rendermime ``latex.ts`` ``removeMath``), ported.

``math_spans(text)`` gives the ranges JupyterLab lifts out as math before parsing Markdown, so
:mod:`gleitzeit_nb.app.markdown` can leave them (almost) as they are.
"""

from __future__ import annotations

import bisect
import itertools
import re

__all__ = ["math_spans"]

_JS_SPACE = "\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# MATHSPLIT minus its newline tokens (a paragraph break between tokens is found with _PARAGRAPH);
# the lookahead and the spelled-out /i only make it faster.
_MATHSPLIT = re.compile(r"(?=[$\\{}@])(\$\$?|\\(?:[bB][eE][gG][iI][nN]|[eE][nN][dD])\{[a-zA-Z]*\*?\}"
                        r"|\\[{}$]|[{}]|@@\d+@@|\\\\(?:\(|\)|\[|\]))", re.A)
_PARAGRAPH = re.compile(r"\n[" + _JS_SPACE + r"]*\n")
_JS_CODE_SPAN = re.compile(r"(^|[^\\])(`+)([^\n]*?[^`\n])\2(?!`)", re.M)
_JS_FENCE_LINE = re.compile(r"^(`{3,}|~{3,})([^\n]*)$", re.M)
_BACKTICK_LINE = re.compile(r"^[^\n`]*`[^\n]*", re.M)
_RUN = re.compile(r"`+")
_COST_LIMIT = 5_000_000  # ~10 ms of _JS_CODE_SPAN backtracking (cost model in _math_spans)


def _fence_protected(text: str) -> list[tuple[int, int]]:
    """Ranges removeMath's fenced-code replace covers (a ``$`` there is no math)."""
    cands = []  # (start, end, char, run, opener?, length it closes or 0)
    for m in _JS_FENCE_LINE.finditer(text):
        run, info = m.groups()
        closes = len(run) if not (info if run[0] == "`" else info.strip("`")) else 0
        cands.append((m.start(), m.end(), run[0], len(run), "`" not in info and m.end() < len(text), closes))
    bt_max = [*itertools.accumulate((c[5] if c[2] == "`" else 0 for c in reversed(cands)), max)][::-1] + [0]
    tilde: dict[int, list[int]] = {}  # length it closes -> tilde candidates
    for i in (i for i, c in enumerate(cands) if c[2] == "~" and c[5]):
        tilde.setdefault(cands[i][5], []).append(i)
    lengths = sorted(tilde, reverse=True)
    out, i = [], 0
    while i < len(cands):
        start, _, ch, run, opener, _ = cands[i]
        j = None
        if opener and ch == "`" and bt_max[i + 1] >= run:
            j = i + 1
            while not (cands[j][2] == "`" and cands[j][5] >= run):
                j += 1
        elif opener and ch == "~":
            for n in (n for n in lengths if n <= run):  # the regex backtracks from long to short
                k = bisect.bisect_right(tilde[n], i)
                if k < len(tilde[n]):
                    j = tilde[n][k]
                    break
        out += [] if j is None else [(start, cands[j][1])]
        i = i + 1 if j is None else j + 1
    return out


def _end_for(token: str) -> str | None:
    """The token that closes math opened by ``token``; None if it opens none."""
    if token in ("$", "$$"):
        return token
    if token in ("\\\\(", "\\\\["):
        return "\\\\)" if token[-1] == "(" else "\\\\]"
    return "\\end" + token[6:] if token[1:6] == "begin" else None


def _math_spans(text: str) -> list[tuple[int, int]] | None:
    """Ranges JupyterLab's removeMath takes as math; None if the input is pathological."""
    if "$" not in text and "\\begin{" not in text and "\\\\(" not in text and "\\\\[" not in text:
        return []
    t = text
    if "`" in text or "~~~" in text:  # removeMath first hides $ inside code
        hidden = _fence_protected(text)
        lines = [(m.start(), m.end(), m.group().count("`")) for m in _BACKTICK_LINE.finditer(text)
                 if "$" in m.group()]
        # _JS_CODE_SPAN starts at every backtick and retries shorter runs: ~ length x sum(run²)
        if sum((b - a) * k * k for a, b, k in lines) > _COST_LIMIT and sum(
                (b - a) * sum(len(r) ** 2 for r in _RUN.findall(text, a, b)) for a, b, _ in lines) > _COST_LIMIT:
            return None
        hidden += [m.span() for a, b, _ in lines for m in _JS_CODE_SPAN.finditer(text, a, b)]
        parts, last = [], 0
        for a, b in sorted(hidden):  # same length as text; a hidden $ becomes a non-token
            parts += [t[last:max(a, last)], t[max(a, last):b].replace("$", "\x01")]
            last = max(last, b)
        t = "".join(parts) + t[last:]
    blocks = _MATHSPLIT.split(t)
    offs = [0, *itertools.accumulate(map(len, blocks))]  # block i is t[offs[i]:offs[i + 1]]
    starts = [i for i in range(1, len(blocks), 2) if blocks[i][0] in "$\\" and _end_for(blocks[i])]
    spans: list[tuple[int, int]] = []
    start = end = last = None
    braces, i, n, nxt = 0, 1, len(blocks), 0
    while i < n or start is not None:
        if start is None:  # outside math only start tokens matter: jump to the next one
            nxt = bisect.bisect_left(starts, i, nxt)
            if nxt == len(starts):
                break
            i = starts[nxt]
        elif _PARAGRAPH.search(t, offs[i - 1], offs[min(i, n)]):  # a paragraph break ends it
            if last is not None:
                spans.append((start, last))
                i = last + 2
            start = end = last = None
            braces = 0
            continue
        elif i >= n:
            if last is not None:
                if bisect.bisect_right(starts, last) < len(starts):
                    return None  # a blank line after the text would rescan from `last`: ambiguous
                spans.append((start, last))
            break
        block = blocks[i]  # (removeMath's "@@n@@" markers are neither starts nor ends: ignored)
        if start is not None:
            if block == end and braces:
                last = i
            elif block == end:
                spans.append((start, i))
                start = end = last = None
            elif block == "{":
                braces += 1
            elif block == "}" and braces:
                braces -= 1
        else:  # a start token: _end_for(block) is not None
            start, end, braces = i, _end_for(block), 0
        i += 2
    return [(offs[a], offs[b + 1]) for a, b in spans]


# --- block structure: which lines are certainly inside a fenced code block --------------------


math_spans = _math_spans
