"""One-line summaries of notebook variables for a prompt: type, shape, dtypes, length.

Never a whole value (a 10,000-row DataFrame is its shape and dtypes, a string its length); only
numbers and ``None`` show as themselves. pandas and NumPy objects are recognised by their class,
without importing either. The names come from the code with ``ast`` (or, when the code does not
parse, from its identifiers), in order of first use.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Container, Mapping
from typing import Any

from .stable_text import cut, hide_addresses
from .tables import is_table

__all__ = ["names_in", "summarize", "variable_summaries"]

MAX_VARIABLES = 15
_CHARS = 600
_COLUMN_CHARS = 450  # of a DataFrame's "name (dtype)" list; the other columns are counted
_IDENT = re.compile(r"[^\W\d]\w*")


def names_in(code: str) -> list[str]:
    """The names ``code`` reads or writes, in order of first use."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return list(dict.fromkeys(_IDENT.findall(code)))
    nodes = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Name)),
                   key=lambda n: (n.lineno, n.col_offset))
    return list(dict.fromkeys(n.id for n in nodes))


def variable_summaries(code: str, namespace: Mapping[str, Any],
                       skip: Container[str] = ()) -> list[str]:
    """``name: summary`` lines for the variables of ``namespace`` that ``code`` names
    (private ``_names`` and ``skip`` left out; at most :data:`MAX_VARIABLES`)."""
    lines = []
    for name in names_in(code):
        if name in namespace and not name.startswith("_") and name not in skip:
            lines.append(f"{name}: {summarize(namespace[name])}")
            if len(lines) == MAX_VARIABLES:
                break
    return lines


def summarize(value: Any) -> str:
    """A one-line description of ``value`` (bounded; never its whole content)."""
    try:
        text = _describe(value)
    except Exception:  # noqa: BLE001 - a property of a user object may raise anything
        text = _type_name(value)
    return cut(hide_addresses(text), _CHARS)


def _describe(value: Any) -> str:
    if value is None or isinstance(value, (bool, int, float, complex)):
        text = repr(value)
        return f"{type(value).__name__} = {cut(text, 40)}"
    if isinstance(value, (str, bytes, bytearray)):
        return f"{type(value).__name__} of length {len(value):,}"
    if is_table(value) and value.ndim == 2:
        rows, cols = value.shape
        shown, size = [], 0
        for col, dtype in value.dtypes.items():
            entry = f"{cut(str(col), 40)} ({dtype})"
            size += len(entry) + 2
            if size > _COLUMN_CHARS:
                break
            shown.append(entry)
        more = f", … {cols - len(shown)} more" if cols > len(shown) else ""
        return (f"pandas DataFrame, {rows:,} rows × {cols:,} columns; columns (dtype): "
                f"{', '.join(shown)}{more}")
    if is_table(value):  # a Series
        name = f" {value.name!r}" if value.name is not None else ""
        return f"pandas Series{name}, length {len(value):,}, dtype {value.dtype}"
    if isinstance(value, dict):
        keys = ", ".join(cut(repr(k), 30) for k in list(value)[:10])
        more = ", …" if len(value) > 10 else ""
        return f"dict of {len(value):,} items; keys: {keys}{more}"
    if isinstance(value, (list, tuple, set, frozenset)):
        kinds = list(dict.fromkeys(type(v).__name__ for v in list(value)[:100]))[:5]
        of = f"; items: {', '.join(kinds)}" if kinds else ""
        return f"{type(value).__name__} of length {len(value):,}{of}"
    if inspect.ismodule(value):
        return f"module {value.__name__}"
    if inspect.isclass(value):
        return f"class {value.__module__}.{value.__qualname__}"
    if callable(value) and (inspect.isfunction(value) or inspect.isbuiltin(value)
                            or inspect.ismethod(value)):
        try:
            return f"function {value.__name__}{inspect.signature(value)}"
        except (TypeError, ValueError):
            return f"function {value.__name__}"
    parts = [_type_name(value)]
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):  # NumPy arrays and the like
        parts.append(f"shape {shape}")
        if getattr(value, "dtype", None) is not None:
            parts.append(f"dtype {value.dtype}")
    elif hasattr(type(value), "__len__"):
        parts.append(f"length {len(value):,}")
    return ", ".join(parts)


def _type_name(value: Any) -> str:
    cls = type(value)
    module = cls.__module__.split(".")[0]
    return cls.__qualname__ if module == "builtins" else f"{module} {cls.__qualname__}"
