"""A pandas DataFrame or Series in a prompt: whole while it fits a budget, else a summary.

``{df}`` is the whole table (``to_string()``) while its estimated tokens stay within
``SETTINGS.table_budget``; beyond that it is a summary: the shape, the dtypes, ``describe()``
and the first and last rows, saying it is one and how to get more. Explicit forms:
``{df:full}`` (whole, with a warning when over the budget), ``{df:summary}``, ``{df:head(N)}``
and ``{df:tail(N)}``. Only pandas' own ``to_string`` is used, so the text (and a replay key)
is the same whatever optional packages are installed.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from ..core.errors import InvalidParamsError
from .settings import SETTINGS
from .stable_text import cut
from .tokens import estimate_tokens
from .warn import warn_user

__all__ = ["is_table", "table_text", "tables_in", "summary"]

#: Rows of each end shown in a summary.
SAMPLE_ROWS = 5
#: Rows rendered to judge a big table's size without rendering all of it.
_PROBE_ROWS = 200
#: Tables put in as rows lately, (name, text), and the least size worth noting.
_ROWS_SENT: deque[tuple[str, str]] = deque(maxlen=16)
_ROWS_NOTED = 400
_SPEC = re.compile(r"full|summary|(?P<end>head|tail)\((?P<n>\d+)\)")


def is_table(value: Any) -> bool:
    """A pandas DataFrame or Series (or subclass), detected without importing pandas."""
    return any(cls.__name__ in ("DataFrame", "Series")
               and getattr(cls, "__module__", "").split(".")[0] == "pandas"
               for cls in type(value).__mro__)


def table_text(value: Any, spec: str, name: str, budget: int | None = None) -> str:
    """The text of ``{name:spec}`` for a DataFrame or Series ``value`` (see module doc)."""
    budget = SETTINGS.table_budget if budget is None else budget
    form = _SPEC.fullmatch(spec) if spec else None
    if spec and form is None:
        raise InvalidParamsError(
            f"{{{name}:{spec}}}: a table takes :full, :summary, :head(N) or :tail(N), written "
            f"exactly so (e.g. {{{name}:head(20)}}).",
            param="prompt")
    if form is not None and form["end"]:
        part = value.head(int(form["n"])) if form["end"] == "head" else value.tail(int(form["n"]))
        return _rows(name, _text(part))
    if spec == "summary":
        return summary(value, name, budget)
    if spec == "full":
        text = _text(value)
        tokens = estimate_tokens(text)
        if tokens > budget:
            warn_user(f"{{{name}:full}} puts the whole table into the prompt: about "
                      f"{tokens:,} tokens ({len(text):,} characters). It is checked against the "
                      "model's context size before sending; {" + name + ":summary} or {" + name
                      + ":head(20)} send less.")
        return _rows(name, text)
    size = _rough_tokens(value)
    if size <= 2 * budget:
        text = _text(value)
        size = estimate_tokens(text)
        if size <= budget:
            return _rows(name, text)
    warn_user(f"{{{name}}} is a table of about {size:,} tokens, more than the table budget "
              f"({budget:,}; %config LLMMagics.table_budget): the prompt gets a summary (shape, "
              f"dtypes, describe(), first and last {SAMPLE_ROWS} rows). {{{name}:full}} sends "
              f"every row, {{{name}:head(50)}} the first 50.")
    return summary(value, name, budget)


def summary(value: Any, name: str, budget: int | None = None) -> str:
    """Shape, dtypes, ``describe()`` and the first and last rows, saying it is a summary; a
    wide table shows its first columns (the rest counted), fewer until it fits ``budget``."""
    budget = SETTINGS.table_budget if budget is None else budget
    for columns, rows in _SHAPES:
        text = _summary(value, name, columns, rows)
        if estimate_tokens(text) <= budget:
            break
    return text


#: (columns, rows of each end) a summary tries in turn, until it fits the budget.
_SHAPES = ((20, SAMPLE_ROWS), (10, 3), (5, 2), (2, 1))
_CELL_CHARS = 40


def _summary(value: Any, name: str, columns: int, rows: int) -> str:
    frame = value.ndim == 2
    shape = (f"{value.shape[0]:,} rows × {value.shape[1]:,} columns" if frame
             else f"{len(value):,} values")
    kind = "DataFrame" if frame else "Series"
    more = value.shape[1] - columns if frame else 0
    if more > 0:
        value = value.iloc[:, :columns]
    counted = f"\n… {more:,} more columns" if more > 0 else ""
    parts = [f"[Summary of the {kind} {name} ({shape}), not the whole table. {{{name}:full}} "
             f"sends every row.]",
             "dtypes:\n" + (value.dtypes.to_string() if frame else str(value.dtype)) + counted]
    described = _describe(value)
    if described:
        parts.append("describe():\n" + described + counted)
    if len(value) > 2 * rows:
        parts += [f"first {rows} rows:\n" + _cut_text(value.head(rows)) + counted,
                  f"last {rows} rows:\n" + _cut_text(value.tail(rows)) + counted]
    else:
        parts.append("rows:\n" + _cut_text(value) + counted)
    return "\n\n".join(parts)


def _describe(value: Any) -> str:
    try:
        described = value.describe(include="all") if value.ndim == 2 else value.describe()
    except (TypeError, ValueError):  # e.g. no columns
        return ""
    return _cut_text(described)


def tables_in(prompt: str) -> list[str]:
    """The names of tables put into a prompt as rows (not as a summary) that ``prompt`` holds,
    for the fixes suggested when it is too long."""
    return list(dict.fromkeys(name for name, text in _ROWS_SENT if text in prompt))


def _rows(name: str, text: str) -> str:
    """``text``, the rows of table ``name``, remembered for :func:`tables_in`."""
    if len(text) >= _ROWS_NOTED:
        _ROWS_SENT.append((name, text))
    return text


def _rough_tokens(value: Any) -> int:
    """The table's tokens, extrapolated from its first rows (a huge table is not rendered)."""
    rows = len(value) if hasattr(value, "__len__") else 0
    if rows <= _PROBE_ROWS:
        return estimate_tokens(_text(value))
    return estimate_tokens(_text(value.head(_PROBE_ROWS))) * rows // _PROBE_ROWS


def _cut_text(value: Any) -> str:
    """As :func:`_text`, each cell (a long string) cut to :data:`_CELL_CHARS`."""
    if value.ndim == 2:
        return str(value.to_string(max_colwidth=_CELL_CHARS))
    return _text(value.map(lambda v: cut(v, _CELL_CHARS) if isinstance(v, str) else v))


def _text(value: Any) -> str:
    """As pandas prints it: the same text on every machine (``to_markdown`` would depend on
    whether the optional ``tabulate`` is installed)."""
    return str(value.to_string())
