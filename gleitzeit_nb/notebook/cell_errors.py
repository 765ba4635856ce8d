"""The errors of a kernel's cells, kept as IPython runs them: ``{Err}`` and ``{Err[n]}``.

``install(shell)`` (done by ``%load_ext gleitzeit_nb``) registers a ``post_run_cell`` handler:
it only reads the finished cell's result (``error_before_exec`` / ``error_in_exec``), so how
errors show is unchanged. Each error is kept as text (:class:`~..app.tracebacks.CellError`),
never as the exception, whose frames would keep the cell's variables alive. Not kept: our own
request errors (``LLMError``), interrupts, and errors of cells running our magics, so
``%llm_fix`` after a failed ``%llm_fix`` still fixes the user's cell.

``prompt_namespace(shell)`` is what prompts are filled from: the user's namespace, plus ``Err``
when the user has no variable of that name.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any
from weakref import WeakKeyDictionary

from ..app.tracebacks import CellError, cell_error
from ..core.errors import InvalidParamsError, LLMError

__all__ = ["ErrorLog", "PromptNamespace", "install", "prompt_namespace"]

log = logging.getLogger(__name__)

KEPT = 100
"""Errors kept per kernel (the most recent)."""
_OUR_MAGICS = ("%llm", "%%llm", "%vision", "%%vision")
_LOGS: WeakKeyDictionary[Any, ErrorLog] = WeakKeyDictionary()


class ErrorLog:
    """``Err``: the last error as text (``{Err}``), ``Err[n]`` the error of cell ``n``,
    ``Err.last`` the last :class:`CellError` (None before any)."""

    def __init__(self) -> None:
        self._errors: OrderedDict[int, CellError] = OrderedDict()
        self._fine: dict[int, int] = {}  # failed cell -> a later cell that ran its code fine

    @property
    def last(self) -> CellError | None:
        return next(reversed(self._errors.values()), None)

    @property
    def counts(self) -> list[int]:
        """Execution counts of the cells that failed, oldest first."""
        return list(self._errors)

    def add(self, error: CellError) -> None:
        self._errors[error.count] = error
        self._errors.move_to_end(error.count)
        while len(self._errors) > KEPT:
            self._fine.pop(self._errors.popitem(last=False)[0], None)

    def __getitem__(self, count: int) -> CellError:
        return self.require(count)

    def __len__(self) -> int:
        return len(self._errors)

    def __iter__(self) -> Iterator[CellError]:
        return iter(list(self._errors.values()))

    def __format__(self, spec: str) -> str:
        return format(self.require(), spec)

    def __str__(self) -> str:
        return str(self.require())

    def __repr__(self) -> str:
        return f"<Err: errors of cells {self.counts}>"

    def require(self, count: int | None = None) -> CellError:
        """The error of cell ``count`` (None: the last), or an InvalidParamsError saying why
        there is none (for ``{Err}``, ``{Err[n]}`` and ``%llm_fix [N]`` alike)."""
        if self.last is None:
            raise InvalidParamsError(
                "No error to fix: no cell has raised an error since %load_ext gleitzeit_nb, so "
                "{Err} is empty. Run the failing cell first.", param="prompt")
        if count is None:
            return self.last
        if count not in self._errors:
            raise InvalidParamsError(
                f"Cell [{count}] raised no error (cells that failed: "
                f"{', '.join(map(str, self._errors))}; {{Err}} and %llm_fix alone take the last).",
                param="prompt")
        return self._errors[count]

    def fine_since(self, count: int) -> int | None:
        """A later cell that ran the code of failed cell ``count`` without an error, if any."""
        return self._fine.get(count)

    # -- IPython event ---------------------------------------------------------------------
    def post_run_cell(self, result: Any, shell: Any = None) -> None:
        """Keep the error of the cell just run, if any; never raises."""
        exc = result.error_before_exec or result.error_in_exec
        count = result.execution_count
        info = getattr(result, "info", None)
        if count is None or not getattr(info, "store_history", True):  # (no In[n] of its own)
            return
        code = getattr(info, "raw_cell", "") or ""
        if exc is None:
            self._ran_fine(count, code)
            return
        if isinstance(exc, (LLMError, KeyboardInterrupt)):
            return
        if code.lstrip().startswith(_OUR_MAGICS):
            return
        try:
            self.add(cell_error(count, code, exc, _cell_label(shell)))
        except Exception:  # noqa: BLE001 - a bookkeeping failure must not disturb the cell
            log.warning("could not record the error of cell [%s]", count, exc_info=True)

    def _ran_fine(self, count: int, code: str) -> None:
        """Note cell ``count`` ran ``code`` fine: the code of an earlier failure, if so."""
        for error in self._errors.values():
            if error.count < count and error.count not in self._fine \
                    and error.code.strip() == code.strip():
                self._fine[error.count] = count


def _cell_label(shell: Any):
    """``filename -> "Cell In[n]"`` from IPython's compiler (None for real files)."""
    compiler = getattr(shell, "compile", None)
    name_of = getattr(compiler, "format_code_name", None)

    def label(filename: str) -> str | None:
        named = name_of(filename) if name_of else None
        return f"{named[0]} {named[1]}" if named else None

    return label


def install(shell: Any) -> ErrorLog:
    """The shell's error log, its ``post_run_cell`` handler registered once."""
    errors = _LOGS.get(shell)
    if errors is None:
        errors = _LOGS[shell] = ErrorLog()
        shell.events.register("post_run_cell",
                              lambda result: errors.post_run_cell(result, shell))
    return errors


class PromptNamespace(Mapping[str, Any]):
    """The user's namespace for ``{name}`` placeholders, with ``Err`` unless the user has one."""

    def __init__(self, user_ns: Mapping[str, Any], errors: ErrorLog) -> None:
        self.user_ns = user_ns
        self.errors = errors

    def __getitem__(self, name: str) -> Any:
        if name in self.user_ns:
            return self.user_ns[name]
        if name == "Err":
            self.errors.require()  # none yet: say so, rather than "not defined"
            return self.errors
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in self.user_ns or name == "Err"

    def __iter__(self) -> Iterator[str]:
        yield from self.user_ns
        if "Err" not in self.user_ns:
            yield "Err"

    def __len__(self) -> int:
        return len(self.user_ns) + ("Err" not in self.user_ns)


def prompt_namespace(shell: Any) -> PromptNamespace:
    """What ``%%llm`` and ``%vision`` fill ``{name}`` from."""
    return PromptNamespace(shell.user_ns, install(shell))

