"""Tools: plain Python functions a model may call, described by a JSON schema.

:func:`tool_from_function` reads the schema from the signature, the type hints (``str``,
``int``, ``float``, ``bool``, ``list[...]``, ``dict[str, ...]``, ``X | None``, ``Literal``,
enums, pydantic models, ``Annotated[X, "description"]``) and the docstring (the first paragraph
is the description; per-argument descriptions come from Google, numpy or Sphinx sections)::

    def get_rows(n: int = 5, column: Literal["a", "b"] | None = None) -> str:
        \"\"\"The first rows of the table.

        Args:
            n: How many rows.
        \"\"\"

    tool = tool_from_function(get_rows)
    tool.to_schema()        # {"type": "function", "function": {name, description, parameters}}
    tool.validate({"n": 3})  # arguments checked and converted, or InvalidParamsError

Running calls (the loop, approval, display) lives above the core; this module only describes
and checks.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidParamsError
from .tool_schema import Invalid, Unsupported, compile_annotation, json_type_name, parse_docstring

__all__ = ["Tool", "tool_from_function", "as_tool", "tool_schemas"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI accepts; Ollama takes the same


@dataclass
class Tool:
    """A callable the model may ask for: ``name``, ``description``, ``parameters`` (a JSON
    schema of an object), the ``function`` itself and whether it is a coroutine function."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    is_async: bool = False
    _converters: dict[str, Callable[[Any, str], Any]] = field(default_factory=dict, repr=False)

    def to_schema(self) -> dict[str, Any]:
        """The tool as both APIs take it: ``{"type": "function", "function": {...}}``."""
        return {"type": "function", "function": {"name": self.name,
                                                 "description": self.description,
                                                 "parameters": self.parameters}}

    def validate(self, arguments: Any) -> dict[str, Any]:
        """The model's ``arguments`` checked against the schema and converted for the function
        (enum members, pydantic model instances); :class:`InvalidParamsError` says what is
        wrong in words a model can act on."""
        if arguments is None:
            arguments = {}
        if isinstance(arguments, str):  # a ToolCall whose arguments were not valid JSON
            raise self._invalid(f"the arguments are not a JSON object: {arguments[:80]!r}")
        if not isinstance(arguments, Mapping):
            raise self._invalid(f"the arguments must be a JSON object, got "
                                f"{json_type_name(arguments)}")
        props = self.parameters.get("properties", {})
        unknown = [k for k in arguments if k not in props]
        if unknown:
            raise self._invalid(f"unknown argument '{unknown[0]}'", param=unknown[0])
        missing = [k for k in self.parameters.get("required", []) if k not in arguments]
        if missing:
            raise self._invalid(f"missing required argument '{missing[0]}'", param=missing[0])
        out = {}
        for key, value in arguments.items():
            try:
                out[key] = self._converters[key](value, key)
            except Invalid as exc:
                raise self._invalid(str(exc), param=key) from None
        return out

    def signature_text(self) -> str:
        """The parameters in one line, e.g. ``n: integer = 5, column: string | null``."""
        props, required = self.parameters.get("properties", {}), self.parameters.get(
            "required", [])
        parts = []
        for name, schema in props.items():
            kind = schema.get("type") or ("object" if "$ref" in schema else "any")
            kind = " | ".join(kind) if isinstance(kind, list) else kind
            if isinstance(schema.get("items"), dict) and schema["items"].get("type"):
                kind = kind.replace("array", f"array of {schema['items']['type']}", 1)
            default = "" if name in required else f" = {json.dumps(schema.get('default'))}"
            parts.append(f"{name}: {kind}{default}")
        return ", ".join(parts)

    def _invalid(self, what: str, *, param: str | None = None) -> InvalidParamsError:
        return InvalidParamsError(
            f"Invalid arguments for tool '{self.name}': {what}. "
            f"Its parameters: {self.signature_text() or 'none'}.", param=param)


def tool_from_function(fn: Callable[..., Any], *, name: str | None = None,
                       description: str | None = None) -> Tool:
    """A :class:`Tool` for ``fn`` (sync or async), its schema from its signature and docstring.

    Raises :class:`InvalidParamsError` naming the parameter for ``*args`` / ``**kwargs``,
    positional-only parameters and type hints without a JSON form.
    """
    if not callable(fn):
        raise InvalidParamsError(f"A tool must be a function, got {type(fn).__name__}.",
                                 param="tools")
    target = getattr(fn, "func", fn)  # functools.partial
    tool_name = name or getattr(fn, "__name__", None) or getattr(target, "__name__", "")
    if not _NAME.match(tool_name):
        raise InvalidParamsError(
            f"Tool name {tool_name!r} is not allowed: use 1-64 letters, digits, '_' or '-' "
            "(give a lambda a name with def, or pass name=).", param="tools")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        raise InvalidParamsError(f"Tool '{tool_name}': its signature cannot be read.",
                                 param="tools") from None
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = getattr(type(target), "__call__", target)  # a callable object
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # an unresolvable forward reference: resolved (or named) per parameter
        hints = {}
    summary, arg_docs = parse_docstring(inspect.getdoc(fn))
    defs: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    converters: dict[str, Callable[[Any, str], Any]] = {}
    for pname, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise InvalidParamsError(
                f"Tool '{tool_name}': parameter '{star}{pname}' cannot be described to a model; "
                "name each parameter.", param=pname)
        if param.kind is param.POSITIONAL_ONLY:
            raise InvalidParamsError(
                f"Tool '{tool_name}': parameter '{pname}' is positional-only; a tool is called "
                "with keyword arguments.", param=pname)
        annotation = hints.get(pname, param.annotation)
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, getattr(target, "__globals__", {}))  # noqa: S307
            except Exception:
                raise InvalidParamsError(
                    f"Tool '{tool_name}': the type hint of parameter '{pname}' ({annotation!r}) "
                    "cannot be resolved; define the type at module level.", param=pname) from None
        try:
            schema, converters[pname] = compile_annotation(annotation, defs)
        except Unsupported as exc:
            raise InvalidParamsError(
                f"Tool '{tool_name}': parameter '{pname}' has the type {exc}, which has no JSON "
                "form; use str, int, float, bool, list, dict, Literal, an Enum or a pydantic "
                "model.", param=pname) from None
        schema = dict(schema)
        if pname in arg_docs and arg_docs[pname]:
            schema["description"] = arg_docs[pname]
        if param.default is param.empty:
            required.append(pname)
        else:
            default = getattr(param.default, "value", param.default)  # an Enum member's value
            if _is_json(default):
                schema["default"] = default
        properties[pname] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    if defs:
        parameters["$defs"] = defs
    return Tool(name=tool_name, description=description if description is not None else summary,
                parameters=parameters, function=fn, is_async=_is_async(fn),
                _converters=converters)


def as_tool(obj: Any) -> Tool:
    """A :class:`Tool` as is, or one made from a function."""
    return obj if isinstance(obj, Tool) else tool_from_function(obj)


def tool_schemas(tools: Any) -> list[dict[str, Any]] | None:
    """The schemas of ``tools`` (Tools, functions or schema dicts), None for none."""
    out = [t if isinstance(t, Mapping) else as_tool(t).to_schema() for t in tools or ()]
    return [dict(t) for t in out] or None


def _is_async(fn: Any) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(type(fn), "__call__", None)
    return inspect.iscoroutinefunction(call) and not inspect.isfunction(fn)


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
