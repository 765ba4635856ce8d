"""``%%llm --format markdown|text|json|code`` (``--code``): how a reply is shown and where its
code goes. Code only ever goes into the next cell (``set_next_input``), never runs."""

from __future__ import annotations

import argparse
from typing import Any

from IPython.core.error import UsageError

from ..app.code_blocks import cell_code

__all__ = ["CODE_PUT", "NO_CODE", "put_code_next", "reply_format"]

CODE_PUT = "↓ code put into the next cell (not run)"
NO_CODE = "The reply has no code block: nothing was put into the next cell."


def reply_format(args: argparse.Namespace) -> str:
    """The one format that ``--format``, ``--code`` and ``--json`` ask for."""
    asked = {args.format} - {None}
    if args.code:
        asked.add("code")
    if args.json:
        asked.add("json")
    if len(asked) > 1:
        raise UsageError(f"Choose one reply format, not {' and '.join(sorted(asked))} "
                         "(--code is --format code, --json is --format json).")
    return asked.pop() if asked else "markdown"


def put_code_next(shell: Any, reply: str, *, last: bool = False) -> str | None:
    """Put the reply's code block (the first Python one; ``last``: the last) into the next
    cell and say so below the reply, with a note on which block, or why none was put in
    (see :func:`~..app.code_blocks.cell_code`). Returns the code."""
    from IPython.display import display

    chosen = cell_code(reply, last=last)
    if chosen.code is not None:
        shell.set_next_input(chosen.code, replace=False)
        line = f"{CODE_PUT}: {chosen.note}" if chosen.note else CODE_PUT
    else:
        line = f"{chosen.note[0].upper()}{chosen.note[1:]}." if chosen.note else NO_CODE
    display({"text/plain": line, "text/markdown": f"*{line}*"}, raw=True)
    return chosen.code
