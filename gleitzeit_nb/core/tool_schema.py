"""Python type hints and docstrings as JSON schema, plus checkers for the values a model sends.

:func:`compile_annotation` turns one annotation into a JSON schema and a converter; the converter
checks a decoded JSON value against it and returns the value the function expects (an ``Enum``
member, a pydantic model instance, a float for an int given to a ``float`` parameter).
:func:`parse_docstring` reads the summary and per-argument descriptions (Google, numpy and
Sphinx styles). pydantic is never imported here: a model class is recognised by its methods.
"""

from __future__ import annotations

import collections.abc as cabc
import enum
import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["Invalid", "Unsupported", "compile_annotation", "parse_docstring", "json_type_name"]

Converter = Callable[[Any, str], Any]

_SIMPLE: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_LISTS = (list, tuple, set, frozenset, cabc.Sequence, typing.List, typing.Tuple,  # noqa: UP006
          typing.Set, typing.Sequence)  # noqa: UP006
_DICTS = (dict, cabc.Mapping, typing.Dict, typing.Mapping)  # noqa: UP006


class Invalid(Exception):
    """A value does not match its parameter's type (the message names the path)."""


class Unsupported(Exception):
    """An annotation that has no JSON schema here."""


def json_type_name(value: Any) -> str:
    """The JSON name of a decoded value's type (for messages a model reads)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _wrong(path: str, expected: str, value: Any) -> Invalid:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return Invalid(f"'{path}' must be {expected}, got {json_type_name(value)} {shown}")


def compile_annotation(ann: Any, defs: dict[str, Any]) -> tuple[dict[str, Any], Converter]:
    """The JSON schema of ``ann`` and its converter; pydantic ``$defs`` are added to ``defs``.

    Raises :class:`Unsupported` for annotations without a JSON form.
    """
    if ann is inspect.Parameter.empty or ann is Any or ann is object:
        return {}, lambda v, p: v
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        schema, conv = compile_annotation(args[0], defs)
        notes = [a for a in args[1:] if isinstance(a, str)]
        if notes:
            schema = {**schema, "description": " ".join(notes)}
        return schema, conv
    if ann is type(None) or ann is None:
        return {"type": "null"}, _check_none
    if ann in _SIMPLE:
        return {"type": _SIMPLE[ann]}, _simple_checker(ann)
    if origin is typing.Union or origin is types.UnionType:
        return _union(args, defs)
    if origin is typing.Literal:
        return _literal(args)
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        return _enum(ann)
    if _is_model(ann):
        return _model(ann, defs)
    if ann in _LISTS or origin in _LISTS:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise Unsupported(f"{ann} (a fixed-length tuple; use list[...] or tuple[X, ...])")
        item_schema, item_conv = compile_annotation(args[0] if args else Any, defs)
        schema = {"type": "array", "items": item_schema} if item_schema else {"type": "array"}
        return schema, _list_checker(item_conv)
    if ann in _DICTS or origin in _DICTS:
        if args and args[0] is not str:
            raise Unsupported(f"{ann} (JSON object keys are strings; use dict[str, ...])")
        value_schema, value_conv = compile_annotation(args[1] if args else Any, defs)
        schema = {"type": "object"}
        if value_schema:
            schema["additionalProperties"] = value_schema
        return schema, _dict_checker(value_conv)
    raise Unsupported(_type_name(ann))


def _type_name(ann: Any) -> str:
    return getattr(ann, "__qualname__", None) or repr(ann)


def _check_none(value: Any, path: str) -> Any:
    if value is not None:
        raise _wrong(path, "null", value)
    return None


def _simple_checker(kind: type) -> Converter:
    name = {"string": "a string", "integer": "an integer", "number": "a number",
            "boolean": "a boolean (true or false)"}[_SIMPLE[kind]]

    def check(value: Any, path: str) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise _wrong(path, name, value)
        if kind is float and isinstance(value, int):
            return float(value)
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, kind):
            raise _wrong(path, name, value)
        return value

    return check


def _union(args: tuple[Any, ...], defs: dict[str, Any]) -> tuple[dict[str, Any], Converter]:
    compiled = [compile_annotation(a, defs) for a in args]
    schemas = [s for s, _ in compiled]
    nullable = {"type": "null"} in schemas
    rest = [s for s in schemas if s != {"type": "null"}]
    if nullable and len(rest) == 1 and isinstance(rest[0].get("type"), str):
        schema = {**rest[0], "type": [rest[0]["type"], "null"]}  # X | None, the compact form
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    else:
        schema = {"anyOf": schemas}
    convs = [c for _, c in compiled]

    def check(value: Any, path: str) -> Any:
        errors = []
        for conv in convs:
            try:
                return conv(value, path)
            except Invalid as exc:
                if conv is not _check_none:  # "must be null" only confuses a non-null mistake
                    errors.append(str(exc))
        raise Invalid(" or ".join(dict.fromkeys(errors)) or _wrong(path, "null", value).args[0])

    return schema, check


def _literal(args: tuple[Any, ...]) -> tuple[dict[str, Any], Converter]:
    values = [a.value if isinstance(a, enum.Enum) else a for a in args]
    schema: dict[str, Any] = {"enum": values}
    kinds = {json_type_name(v) for v in values}
    if len(kinds) == 1:
        schema = {"type": kinds.pop(), "enum": values}

    def check(value: Any, path: str) -> Any:
        for arg, v in zip(args, values):
            if value == v and type(value) is type(v):
                return arg
        raise Invalid(f"'{path}' must be one of {values}, got {value!r}")

    return schema, check


def _enum(cls: type[enum.Enum]) -> tuple[dict[str, Any], Converter]:
    schema, literal = _literal(tuple(cls))
    return schema, literal


def _is_model(ann: Any) -> bool:
    """A pydantic model class (recognised without importing pydantic)."""
    return isinstance(ann, type) and callable(getattr(ann, "model_json_schema", None)) and \
        callable(getattr(ann, "model_validate", None))


def _model(cls: Any, defs: dict[str, Any]) -> tuple[dict[str, Any], Converter]:
    schema = dict(cls.model_json_schema())
    defs.update(schema.pop("$defs", {}))  # $ref points at the document root: hoist them there

    def check(value: Any, path: str) -> Any:
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise _wrong(path, f"an object ({cls.__name__})", value)
        try:
            return cls.model_validate(value)
        except Exception as exc:  # pydantic.ValidationError, without importing pydantic
            errors = getattr(exc, "errors", None)
            details = "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                for e in errors()) if callable(errors) else str(exc)
            raise Invalid(f"'{path}' is not a valid {cls.__name__}: {details}") from None

    return schema, check


def _list_checker(item: Converter) -> Converter:
    def check(value: Any, path: str) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _wrong(path, "an array", value)
        return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]

    return check


def _dict_checker(item: Converter) -> Converter:
    def check(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _wrong(path, "an object", value)
        return {k: item(v, f"{path}.{k}") for k, v in value.items()}

    return check


# -- docstrings ----------------------------------------------------------------------------------
_GOOGLE = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|"
                     r"Other Parameters)\s*:\s*$", re.I)
_SECTION = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")  # Returns:, Raises:, Examples:…
_GOOGLE_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(?::.*)?$")
_SPHINX = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """``(summary, {argument: description})`` from a Google, numpy or Sphinx style docstring.

    The summary is the first paragraph; descriptions join their continuation lines.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    summary: list[str] = []
    for i, line in enumerate(lines):
        if not line.strip() or _starts_section(lines, i):
            break
        summary.append(line.strip())
    params: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if _GOOGLE.match(line.strip()):
            i = _google_items(lines, i + 1, _indent(line), params)
        elif re.match(r"^\s*(Parameters|Other Parameters)\s*$", line) and i + 1 < len(lines) \
                and _UNDERLINE.match(lines[i + 1]):
            i = _numpy_items(lines, i + 2, params)
        elif _SPHINX.match(line.strip()):
            name, text = _SPHINX.match(line.strip()).groups()  # type: ignore[union-attr]
            more, i = _continuation(lines, i + 1, _indent(line))
            params[name] = " ".join([text.strip(), *more]).strip()
        else:
            i += 1
    return " ".join(summary), params


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _starts_section(lines: list[str], i: int) -> bool:
    text = lines[i].strip()
    return bool(_SECTION.match(text) or text.startswith(":param") or
                (i + 1 < len(lines) and _UNDERLINE.match(lines[i + 1])))


def _continuation(lines: list[str], i: int, base: int) -> tuple[list[str], int]:
    """Lines indented deeper than ``base`` from ``i`` on (blank lines end nothing but a run)."""
    out = []
    while i < len(lines) and lines[i].strip() and _indent(lines[i]) > base:
        out.append(lines[i].strip())
        i += 1
    return out, i


def _google_items(lines: list[str], i: int, base: int, params: dict[str, str]) -> int:
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if _indent(line) <= base:
            return i
        item = _GOOGLE_ITEM.match(line.strip())
        if item is None:
            i += 1
            continue
        more, i = _continuation(lines, i + 1, _indent(line))
        params[item.group(1)] = " ".join([item.group(3).strip(), *more]).strip()
    return i


def _numpy_items(lines: list[str], i: int, params: dict[str, str]) -> int:
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            if i + 2 < len(lines) and _UNDERLINE.match(lines[i + 2]):
                return i + 1  # the next section
            i += 1
            continue
        if i + 1 < len(lines) and _UNDERLINE.match(lines[i + 1]):
            return i
        item = _NUMPY_ITEM.match(line.strip())
        more, i = _continuation(lines, i + 1, _indent(line))
        if item:
            params[item.group(1)] = " ".join(more)
    return i
