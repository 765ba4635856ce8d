"""The code of a reply: its fenced code blocks, and the one that becomes the next cell."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

__all__ = ["CellCode", "CodeBlock", "code_blocks", "cell_code", "fence_for"]

PYTHON = ("python", "py", "python3", "ipython", "ipython3")
SHELL = ("bash", "sh", "shell", "console")
_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?:[-+*>][ \t]+|\d{1,9}[.)][ \t]+)*"
                   r"(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_QUOTE = re.compile(r"[ \t]*>[ \t]?")


@dataclass(frozen=True)
class CodeBlock:
    language: str  # the first word of the info string, lower case ("" for none)
    code: str


@dataclass(frozen=True)
class CellCode:
    """The code for the next cell (None: none fits) and a note on the choice ("" if none)."""

    code: str | None
    note: str = ""


def code_blocks(text: str) -> list[CodeBlock]:
    """The fenced code blocks of Markdown ``text`` in order; an unclosed last block (a reply
    cut short) runs to the end. A fence in a list item or a blockquote (``> ```python``) loses
    that container: its indentation (spaces or tabs) and ``>`` markers."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m["fence"], m["info"].strip()
        quotes = lines[i][:m.start("fence")].count(">")
        opening = _unquote(lines[i], quotes)
        column = _width(opening[:len(opening) - len(lines[i]) + m.start("fence")])
        body: list[str] = []
        i += 1
        while i < len(lines):
            line = _unquote(lines[i], quotes)
            stripped = line.strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                break
            body.append(_dedent(line, column))
            i += 1
        i += 1
        blocks.append(CodeBlock(info.split(" ", 1)[0].lower() if info else "",
                                textwrap.dedent("\n".join(body)).strip("\n")))
    return blocks


def cell_code(text: str, *, last: bool = False) -> CellCode:
    """The code for the next cell: the first (``last``: the last) Python block, else such an
    untagged block; a shell block only as ``%%bash``; a block in another language is refused.
    The note says which block was used when there were several, and why a block was not."""
    blocks = [b for b in code_blocks(text) if b.code.strip()]
    if not blocks:
        return CellCode(None)
    chosen = ([b for b in blocks if b.language in PYTHON]
              or [b for b in blocks if not b.language])
    which = "last" if last else "first"
    if chosen:
        block = chosen[-1] if last else chosen[0]
        kind = "Python" if block.language else "untagged"
        note = f"the {which} of {len(chosen)} {kind} code blocks" if len(chosen) > 1 else ""
        return CellCode(block.code, note)
    block = blocks[-1] if last else blocks[0]
    if block.language in SHELL:
        return CellCode(f"%%bash\n{block.code}",
                        f"the reply's code block is {block.language}: put in as %%bash")
    return CellCode(None, f"the reply's code block is {block.language}, not Python: nothing was "
                          "put into the next cell (copy it from the reply)")


def fence_for(code: str) -> str:
    """A backtick fence longer than any backtick run in ``code``."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest + 1)


def _unquote(line: str, quotes: int) -> str:
    """``line`` without up to ``quotes`` leading blockquote markers (``> ``)."""
    for _ in range(quotes):
        m = _QUOTE.match(line)
        if not m:
            break
        line = line[m.end():]
    return line


def _width(prefix: str) -> int:
    """The columns ``prefix`` takes, a tab reaching the next multiple of 4 (as in Markdown)."""
    width = 0
    for c in prefix:
        width = (width // 4 + 1) * 4 if c == "\t" else width + 1
    return width


def _dedent(line: str, column: int) -> str:
    """``line`` without its leading spaces and tabs up to ``column``."""
    i = 0
    while i < len(line) and line[i] in " \t" and _width(line[:i + 1]) <= column:
        i += 1
    return line[i:]
