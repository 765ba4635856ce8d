"""The code of a reply: its fenced code blocks, and the one that becomes the next cell."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CodeBlock", "code_blocks", "cell_code", "fence_for"]

PYTHON = ("python", "py", "python3", "ipython", "ipython3")
_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?:[-+*>][ \t]+|\d{1,9}[.)][ \t]+)*"
                   r"(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")


@dataclass(frozen=True)
class CodeBlock:
    language: str  # the first word of the info string, lower case ("" for none)
    code: str


def code_blocks(text: str) -> list[CodeBlock]:
    """The fenced code blocks of Markdown ``text`` in order; an unclosed last block (a reply
    cut short) runs to the end. Indented fences (in a list item) lose that indentation."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m["fence"], m["info"].strip()
        column = m.start("fence")
        body: list[str] = []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                break
            body.append(_dedent(lines[i], column))
            i += 1
        i += 1
        blocks.append(CodeBlock(info.split(" ", 1)[0].lower() if info else "",
                                "\n".join(body).strip("\n")))
    return blocks


def cell_code(text: str) -> str | None:
    """The code for the next cell: the first Python block, else the first block (None when
    the reply has no code block)."""
    blocks = [b for b in code_blocks(text) if b.code.strip()]
    chosen = [b for b in blocks if b.language in PYTHON] or blocks
    return chosen[0].code if chosen else None


def fence_for(code: str) -> str:
    """A backtick fence longer than any backtick run in ``code``."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest + 1)


def _dedent(line: str, column: int) -> str:
    """``line`` without up to ``column`` leading spaces."""
    strip = min(column, len(line) - len(line.lstrip(" ")))
    return line[strip:]
