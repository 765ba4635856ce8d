"""``%llm?`` and ``%llm --help``: a magic's docstring, then its parser's usage and each option
with its help, so the help written once in the parser is what users read.

The text is made when first asked for (IPython's ``?`` and the inspector call an object's
``getdoc()``), so ``%load_ext`` formats nothing and imports no parser it does not need.
"""

from __future__ import annotations

import functools
import inspect
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["documented", "magic_help"]

F = TypeVar("F", bound=Callable[..., Any])
HELP_FLAGS = ("-h", "--help")


def documented(parser: ArgumentParser | Callable[[], ArgumentParser]) -> Callable[[F], F]:
    """Decorator for a magic method: ``%name?`` shows its docstring and each option's help, and
    ``%name -h`` / ``--help`` pages the same text instead of running the magic.

    ``parser`` may be a function returning it, to import a magic's parser only when needed."""
    def wrap(func: F) -> F:
        @functools.cache
        def getdoc() -> str:
            return magic_help(func, parser if isinstance(parser, ArgumentParser) else parser())

        @functools.wraps(func)
        def magic(self: Any, line: str = "", *cell: Any) -> Any:
            first = line.split(None, 1)[:1]
            if first and first[0] in HELP_FLAGS:
                from IPython.core import page

                page.page(getdoc())
                return None
            return func(self, line, *cell)

        magic.getdoc = getdoc  # type: ignore[attr-defined]
        return magic  # type: ignore[return-value]
    return wrap


def magic_help(func: Callable[..., Any], parser: ArgumentParser) -> str:
    """``func``'s docstring, a blank line, then ``parser``'s usage and options (argparse's help)."""
    return f"{inspect.cleandoc(func.__doc__ or '')}\n\n{parser.format_help().rstrip()}\n"
