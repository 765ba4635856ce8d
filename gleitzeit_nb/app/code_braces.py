"""Braces in pasted code: a prompt's ``{x}`` inside an f-string literal, as in
``print(f"{x} items")``, is code to send as typed far more often than a variable to fill.

``fill_prompt`` is what the magics do with a prompt: send it as typed (``--no-interpolate``), or
fill its placeholders and warn once when filled ones sit inside an f-string literal. Prose
placeholders (``Summarise {df}``) never warn: only the f-string prefix with its quotes, closed
and followed by what follows a string in code, counts as code.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from .interpolate import interpolate

__all__ = ["CodeBraceWarning", "fill_prompt", "in_fstrings"]


class CodeBraceWarning(UserWarning):
    """A placeholder inside an f-string literal of a prompt was filled from the notebook."""


# f / rf / fr (any case) starting a word, a closed '…', "…" (one line) or triple-quoted literal,
# then what may follow a string in code: a closing bracket, , : ; . + % = * or the line's end.
# The last condition keeps math prose out: in "f'(x) = {d} and g'(x)" a "(" follows the quote.
_FSTRING = re.compile(
    r"""(?<![\w'"])(?:[rR][fF]|[fF][rR]?)
    (?:(?P<q3>'''|\"\"\")(?P<b3>[\s\S]*?)(?P=q3)
      |(?P<q1>['"])(?P<b1>(?:\\.|(?!(?P=q1))[^\\\n])*)(?P=q1))
    (?=[ \t]*(?:[)\]},:;.+%=*\#]|$))""",
    re.VERBOSE | re.MULTILINE)


def in_fstrings(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of ``text`` that lie inside an f-string literal's quotes."""
    bodies = [m.span("b3") if m["q3"] else m.span("b1") for m in _FSTRING.finditer(text)]
    return [(s, e) for s, e in spans if any(b0 <= s and e <= b1 for b0, b1 in bodies)]


def fill_prompt(text: str, namespace: Mapping[str, Any], *, verbatim: bool = False,
                where: str = "prompt", first_line: int = 1) -> str:
    """``text`` with its placeholders filled from ``namespace``, or as typed with ``verbatim``.

    Filled placeholders inside f-string literals give one ``CodeBraceWarning``, located as
    ``where:LINE`` (``first_line`` is the line of the cell where ``text`` starts)."""
    if verbatim:
        return text
    filled: list[tuple[int, int]] = []
    prompt = interpolate(text, namespace, filled=filled)
    suspects = in_fstrings(text, filled)
    if suspects:
        names = list(dict.fromkeys(text[s:e] for s, e in suspects))
        shown, escaped = ", ".join(names), ", ".join("{" + n + "}" for n in names)
        were, it = ("was", "it") if len(names) == 1 else ("were", "them")
        warnings.warn_explicit(
            f'{shown} inside f"…" {were} filled from the notebook; use --no-interpolate or '
            f"{escaped} to send {it} as typed.", CodeBraceWarning, where,
            first_line + text.count("\n", 0, suspects[0][0]))
    return prompt
