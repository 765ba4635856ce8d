"""Let ``%llm What is 2+2?`` reach the magic instead of IPython's ``?`` help.

IPython reads a line ending in ``?`` or ``??`` as a help request (``HelpEnd`` in
``IPython.core.inputtransformer2``), so ``%llm What is it?`` shows help on ``it``. ``register``
adds a *cleanup* transform (``shell.input_transformers_cleanup``), which runs on the raw lines
before IPython's token transforms, and rewrites such lines to
``get_ipython().run_line_magic('llm', 'What is it?')``. A text-level transform is used rather than
a token transformer because free text is not Python: an apostrophe (``What's``) breaks the
tokenizer, which then loses the line's end.

A line is rewritten when all hold:

* it starts a statement (not inside a string, brackets or a ``\\`` continuation of Python code),
  and the cell is not a cell magic (``%%…``: its body is not subject to help);
* it is ``%name text?`` (leading whitespace allowed; ``\\``-continued lines are joined as IPython
  does), or an assignment ``x = %name text?``, where ``name`` is registered;
* ``text`` is non-empty once its trailing question marks are removed, so ``%llm?``, ``%llm??``
  and ``llm?`` still show help on the magic.

With automagic on, a single-line cell ``name text?`` is rewritten too, when ``name`` is a known
magic not shadowed by a variable (IPython's own automagic rule). The magic receives the text
after the name with surrounding whitespace removed, question marks included.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Iterable
from typing import Any

from IPython.core.inputtransformer2 import assemble_continued_line, find_end_of_continued_line

from ..errors import InvalidParamsError

__all__ = ["register", "unregister", "HelpEscape"]

_ESCAPES = ("%", "!", "?", ",", ";", "/")
_MAGIC_LINE = re.compile(
    r"""(?P<head>[ \t]*
        (?:[A-Za-z_(\[][\w.\[\]'"(),: \t]*?=[ \t]*)?  # optional assignment target
    )%(?P<name>\w+)(?P<rest>(?:[ \t].*)?)\Z""",
    re.VERBOSE | re.DOTALL,
)
_SPECIAL_ASSIGN = re.compile(r"[ \t]*[A-Za-z_(\[][\w.\[\]'\"(),: \t]*?=[ \t]*[%!]")
_AUTOMAGIC_LINE = re.compile(r"(?P<name>[^\W\d]\w*)(?P<rest>[ \t].*)\Z", re.DOTALL)


class HelpEscape:
    """The cleanup transform installed by ``register``: ``lines`` in, ``lines`` out."""

    has_side_effects = False  # check_complete may run it too
    _gleitzeit_help_escape = True  # identifies it across module reloads

    def __init__(self, shell: Any, names: Iterable[str]) -> None:
        self.shell = shell
        self.names: set[str] = set(names)

    def __call__(self, lines: list[str]) -> list[str]:
        if not lines or lines[0].startswith("%%") or not any("?" in line for line in lines):
            return lines
        if len(lines) == 1:
            call = self._automagic_call(lines[0])
            if call is not None:
                return [call]
        out: list[str] = []
        scanner = _PythonScanner()
        i = 0
        while i < len(lines):
            line = lines[i]
            if scanner.at_statement_start() and _is_special(line):
                end = find_end_of_continued_line(lines, i)
                call = self._magic_call(assemble_continued_line(lines, (i, 0), end))
                out.extend([call] if call is not None else lines[i:end + 1])
                i = end + 1
                continue
            scanner.feed(line)
            out.append(line)
            i += 1
        return out

    def _magic_call(self, line: str) -> str | None:
        """``line`` (one logical line, no newline) rewritten to a magic call, or None."""
        m = _MAGIC_LINE.match(line)
        if not m or m["name"] not in self.names:
            return None
        text = _question_text(m["rest"])
        if text is None:
            return None
        return f"{m['head']}get_ipython().run_line_magic({m['name']!r}, {text!r})\n"

    def _automagic_call(self, line: str) -> str | None:
        """A single-line cell ``name text?`` rewritten when IPython would run it as automagic."""
        m = _AUTOMAGIC_LINE.match(line.rstrip("\r\n"))
        if not m or m["name"] not in self.names or not getattr(self.shell, "automagic", False):
            return None
        name = m["name"]
        if m["rest"].lstrip()[:1] in ("=", ",") or self._shadowed(name):  # as IPython's prefilter
            return None
        find = getattr(self.shell, "find_line_magic", None)
        if find is not None and find(name) is None:
            return None
        text = _question_text(m["rest"])
        if text is None:
            return None
        return f"get_ipython().run_line_magic({name!r}, {text!r})\n"

    def _shadowed(self, name: str) -> bool:
        """Whether a variable hides the magic, as IPython's prefilter decides."""
        shell = self.shell
        spaces = (getattr(shell, "user_ns", {}), getattr(shell, "user_global_ns", {}))
        return (any(name in ns for ns in spaces) or hasattr(builtins, name)
                or keyword.iskeyword(name))


def register(shell: Any, magic_names: Iterable[str]) -> None:
    """Make ``%name text?`` run the line magics in ``magic_names`` (idempotent).

    Calling it again adds names to the installed transform instead of installing another.
    """
    names = {str(n).lstrip("%") for n in magic_names}
    bad = sorted(n for n in names if not n.isidentifier())
    if bad:
        raise InvalidParamsError(f"Not magic names: {', '.join(map(repr, bad))}.",
                                 param="magic_names")
    cleanup = shell.input_transformers_cleanup
    for transform in cleanup:
        if getattr(transform, "_gleitzeit_help_escape", False):
            transform.names |= names
            return
    cleanup.append(HelpEscape(shell, names))


def unregister(shell: Any) -> None:
    """Remove the transform installed by ``register`` (no-op if absent)."""
    cleanup = shell.input_transformers_cleanup
    cleanup[:] = [t for t in cleanup if not getattr(t, "_gleitzeit_help_escape", False)]


def _is_special(line: str) -> bool:
    """Whether a statement line is IPython syntax (``%…``, ``!…``, ``x = %…``), not Python."""
    stripped = line.lstrip(" \t")
    return stripped.startswith(_ESCAPES) or bool(_SPECIAL_ASSIGN.match(line))


def _question_text(rest: str) -> str | None:
    """The magic's argument when ``rest`` is text ending in ``?``; None for a help request."""
    text = rest.strip()
    if not text.endswith("?") or not text.rstrip("?").strip():
        return None
    return text


class _PythonScanner:
    """Tracks strings, brackets and ``\\`` continuations across lines of Python code."""

    def __init__(self) -> None:
        self.quote: str | None = None
        self.depth = 0
        self.continued = False

    def at_statement_start(self) -> bool:
        return self.quote is None and self.depth == 0 and not self.continued

    def feed(self, line: str) -> None:
        j, n = 0, len(line)
        comment = False
        while j < n:
            if self.quote is not None:
                if line[j] == "\\":
                    j += 2
                elif line.startswith(self.quote, j):
                    j += len(self.quote)
                    self.quote = None
                else:
                    j += 1
                continue
            c = line[j]
            if c == "#":
                comment = True
                break
            if c in "'\"":
                self.quote = c * 3 if line.startswith(c * 3, j) else c
                j += len(self.quote)
                continue
            if c in "([{":
                self.depth += 1
            elif c in ")]}":
                self.depth = max(0, self.depth - 1)
            j += 1
        body = line.rstrip("\r\n")
        if self.quote in ("'", '"') and not body.endswith("\\"):
            self.quote = None  # an unterminated one-line string ends with its line
        self.continued = not comment and self.quote is None and body.endswith("\\")
