"""``%llm_fix [N] [--code]``: ask the model to explain a failed cell and correct it.

The prompt (:func:`~..app.fix_prompt.fix_prompt`) holds the cell's code, its trimmed
traceback and one-line summaries of the variables the code names; the request is an ordinary
one, so record/replay covers it. ``--code`` puts the corrected cell into the next cell.
"""

from __future__ import annotations

import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.display import display

from ..app.fix_prompt import fix_prompt
from ..app.stable_text import cut
from ..app.requests import make_request
from ..app.settings import SETTINGS
from ..app.tracebacks import CellError
from ..app.var_summary import variable_summaries
from ..core.errors import InvalidParamsError
from ..notebook.cell_errors import ErrorLog, install, prompt_namespace
from ..notebook.chat import ask
from . import options as opts
from .reply_format import put_code_next

_FIX = opts.fix_parser()


def llm_fix_magic(magics: Any, line: str) -> None:
    """Run ``%llm_fix`` for ``magics`` (an ``LLMMagics``)."""
    shell = magics.shell
    try:
        words = shlex.split(line)
    except ValueError as exc:  # "No closing quotation"
        raise UsageError(f"%llm_fix: {exc} in {line!r}") from None
    args = _FIX.parse_args(words)
    for name, value in vars(args).items():
        if isinstance(value, str):
            setattr(args, name, opts.expand_value(value, prompt_namespace(shell)))
    errors = install(shell)
    error = failed_cell(errors, args.cell)
    display({"text/plain": fixing_line(errors, error)}, raw=True)
    req = make_request(fix_prompt(error, _summaries(shell, error)), model=args.model,
                       host=args.host, system=args.system, temperature=args.temperature,
                       max_tokens=args.max_tokens, seed=args.seed, session=args.session,
                       remember=args.session is not None, num_ctx=args.num_ctx)
    reply = ask(req, display=SETTINGS.display)
    if args.code:
        put_code_next(shell, reply, last=True)  # the corrected cell comes last
    magics._store(args.out, reply)


def failed_cell(errors: ErrorLog, count: int | None) -> CellError:
    """The error to fix: cell ``count``'s, or the last; a UsageError saying why there is none."""
    try:
        return errors.require(count)
    except InvalidParamsError as exc:
        raise UsageError(str(exc)) from None


def fixing_line(errors: ErrorLog, error: CellError) -> str:
    """Which cell is being fixed, and whether its code has run fine since."""
    line = f"Fixing the error of cell [{error.count}]: {cut(f'{error.ename}: {error.evalue}', 120)}"
    fine = errors.fine_since(error.count)
    if fine is not None:
        line += f" (its code has run without an error since, in cell [{fine}])"
    return line


def _summaries(shell: Any, error: CellError) -> list[str]:
    """Summaries of the variables the failed cell names (as Python, its magics expanded)."""
    try:
        code = shell.transform_cell(error.code)
    except Exception:  # noqa: BLE001 - the cell may not even tokenize; names come from text
        code = error.code
    ns = shell.user_ns
    hidden = {n for n, v in getattr(shell, "user_ns_hidden", {}).items() if ns.get(n) is v}
    return variable_summaries(code, ns, skip=hidden)
