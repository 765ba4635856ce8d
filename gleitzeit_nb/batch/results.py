"""What a batch returns: a ``BatchResult`` list, a pandas Series, or a DataFrame with typed columns."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..core.errors import InvalidParamsError
from .items import Rows

NOT_RUN = "not run: the batch was interrupted"
STAT_COLUMNS = ("error", "output_tokens", "seconds")


@dataclass
class RowOutcome:
    """One finished row: the answer (text or validated object) or the error, and its stats;
    ``tool_calls`` the row's calls when the batch had tools (else None)."""

    value: Any = None
    error: BaseException | None = None
    output_tokens: int | None = None
    seconds: float | None = None
    host: str | None = None
    tool_calls: list[Any] | None = None

    def stats(self) -> dict[str, Any]:
        out = {"output_tokens": self.output_tokens, "seconds": self.seconds, "host": self.host}
        if self.tool_calls is not None:
            out["tool_calls"] = self.tool_calls
        return out


class BatchResult(list):
    """The answers of a batch over a list, in input order; a failed row's answer is None.

    ``errors`` maps input positions to the exception of each failed row (with
    ``on_error="skip"`` those rows are left out, and ``index`` lists the input position of
    each answer kept). ``stats[i]`` holds ``output_tokens``, ``seconds`` and ``host`` of answer
    ``i`` (and ``tool_calls`` in a batch with tools). ``concurrency`` / ``concurrency_source``
    say how many requests ran at once and why ("configured", "server slots" or "learned");
    ``complete`` is False for the partial result of an interrupted or failed batch, whose
    rows that never ran are in ``pending``.
    """

    def __init__(self, values: Iterable[Any] = (), *, errors: dict[int, BaseException] | None = None,
                 stats: list[dict[str, Any]] | None = None, index: list[int] | None = None,
                 pending: list[int] | None = None, info: dict[str, Any] | None = None) -> None:
        super().__init__(values)
        self.errors: dict[int, BaseException] = errors or {}
        self.stats: list[dict[str, Any]] = stats or []
        self.index: list[int] = index if index is not None else list(range(len(self)))
        self.pending: list[int] = pending or []
        info = info or {}
        self.concurrency: int | None = info.get("concurrency")
        self.concurrency_source: str | None = info.get("concurrency_source")
        self.elapsed: float | None = info.get("elapsed")
        self.complete: bool = not self.pending and not info.get("aborted", False)

    def __repr__(self) -> str:
        return list.__repr__(self)


def shape(rows: Rows, outcomes: list[RowOutcome | None], *, skip: bool, schema: Any,
          info: dict[str, Any], tools: bool = False) -> Any:
    """Build the output for ``rows``; ``outcomes[i]`` is None for a row that never ran.

    With ``tools`` the answers are ``Reply`` objects (their calls on ``.tool_calls``), kept as
    such in a Series or DataFrame (object dtype), and a DataFrame gets a ``tool_calls`` column.
    """
    keep = [i for i, o in enumerate(outcomes)
            if not (skip and (o is None or o.error is not None))]
    pending = [i for i, o in enumerate(outcomes) if o is None]
    if rows.kind == "list":
        return BatchResult(
            [_value(outcomes[i]) for i in keep],
            errors={i: o.error for i, o in enumerate(outcomes) if o is not None and o.error},
            stats=[(outcomes[i] or RowOutcome()).stats() for i in keep], index=keep,
            pending=pending, info=info)
    import pandas as pd

    index = rows.index[keep] if skip else rows.index
    # Keyed by index label; by position where labels repeat (a label would lose a row's error).
    unique = len(set(rows.labels)) == len(rows.labels) if _hashable(rows.labels) else False
    errors = {rows.labels[i] if unique else i: _message(outcomes[i])
              for i in range(len(outcomes)) if _message(outcomes[i]) is not None}
    attrs = {**info, "pending": [rows.labels[i] for i in pending]}
    if rows.kind == "series":
        out = pd.Series([_value(outcomes[i]) for i in keep], index=index, name="answer",
                        dtype=object if schema is not None or tools else None)
        out.attrs.update(attrs, errors=errors)
        return out
    done = [outcomes[i] or RowOutcome() for i in keep]
    frame = pd.DataFrame(_answer_columns([_value(outcomes[i]) for i in keep], schema, index,
                                         objects=tools), index=index)
    if tools:
        frame["tool_calls"] = pd.Series([o.tool_calls for o in done], index=index, dtype=object)
    frame["error"] = pd.Series([_message(outcomes[i]) for i in keep], index=index, dtype=object)
    frame["output_tokens"] = _typed([o.output_tokens for o in done], "int", index)
    frame["seconds"] = _typed([o.seconds for o in done], "float", index)
    frame.attrs.update(attrs)
    return frame


def _hashable(labels: list[Any]) -> bool:
    try:
        set(labels)
    except TypeError:
        return False
    return True


def _value(outcome: RowOutcome | None) -> Any:
    return None if outcome is None or outcome.error is not None else outcome.value


def _message(outcome: RowOutcome | None) -> str | None:
    if outcome is None:
        return NOT_RUN
    return None if outcome.error is None else f"{type(outcome.error).__name__}: {outcome.error}"


def check_schema_fields(schema: Any, *, tools: bool = False) -> None:
    """Schema fields must not collide with the error and stats columns of a DataFrame."""
    own = (*STAT_COLUMNS, "tool_calls") if tools else STAT_COLUMNS
    clash = sorted(set(schema_fields(schema)) & set(own))
    if clash:
        raise InvalidParamsError(
            f"The schema's field(s) {', '.join(clash)} would clash with the batch's own "
            f"columns ({', '.join(own)}); rename them.", param="schema")


def schema_fields(schema: Any) -> dict[str, str]:
    """Field name -> column kind ("int", "float", "bool", "str", "object"), or {} for none."""
    if schema is None:
        return {}
    fields = getattr(schema, "model_fields", None)
    if isinstance(fields, dict):
        return {name: _kind_of_annotation(f.annotation) for name, f in fields.items()}
    if isinstance(schema, dict) and schema.get("type") == "object":
        json_kinds = {"integer": "int", "number": "float", "boolean": "bool", "string": "str"}
        out = {}
        for name, sub in (schema.get("properties") or {}).items():
            t = sub.get("type") if isinstance(sub, dict) else None
            if isinstance(t, list):  # ["integer", "null"]
                t = next((x for x in t if x != "null"), None) if len(t) <= 2 else None
            out[name] = json_kinds.get(t, "object") if isinstance(t, str) else "object"
        return out
    return {}


def _kind_of_annotation(ann: Any) -> str:
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        ann = args[0] if len(args) == 1 else object
    if ann is bool:
        return "bool"
    for kind, cls in (("int", int), ("float", float), ("str", str)):
        if isinstance(ann, type) and issubclass(ann, cls) and not issubclass(ann, bool):
            return kind
    return "object"


def _answer_columns(values: list[Any], schema: Any, index: Any, *,
                    objects: bool = False) -> dict[str, Any]:
    fields = schema_fields(schema)
    if not fields:
        kind = "object" if schema is not None or objects else "str"
        return {"answer": _typed(values, kind, index)}
    return {name: _typed([_field(v, name) for v in values], kind, index)
            for name, kind in fields.items()}


def _field(value: Any, name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


_DTYPES = {"int": ("int64", "Int64"), "float": ("float64", "float64"),
           "bool": ("bool", "boolean"), "str": (None, None), "object": (object, object)}


def _typed(values: list[Any], kind: str, index: Any) -> Any:
    """A Series of ``kind``: numpy dtypes when every value is there, nullable ones otherwise."""
    import pandas as pd

    complete, nullable = _DTYPES[kind]
    dtype = complete if all(v is not None for v in values) else nullable
    try:
        return pd.Series(values, index=index, dtype=dtype)
    except (TypeError, ValueError):  # a value of another type than the schema says
        return pd.Series(values, index=index, dtype=object)
