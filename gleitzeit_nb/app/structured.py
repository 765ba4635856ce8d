"""Structured replies: ``--json`` and ``--schema`` (a pydantic model class or a JSON-schema dict)."""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import InvalidParamsError, StructuredOutputError


def format_for(schema: Any) -> dict[str, Any]:
    """The Ollama ``format`` value for ``schema``."""
    if isinstance(schema, dict):
        return schema
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        return schema.model_json_schema()
    raise InvalidParamsError(
        f"--schema needs a pydantic model class or a JSON-schema dict, got {type(schema).__name__}.",
        param="schema")


def parse_reply(text: str, schema: Any = None, *, done_reason: str | None = None) -> Any:
    """Parse a JSON reply and validate it against ``schema`` (if given).

    The error says whether the reply was cut by the length limit or is off-schema.
    """
    truncated = done_reason == "length"
    cut = (" The reply was cut at the length limit: raise max_tokens (--max-tokens)."
           if truncated else "")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StructuredOutputError(
            f"The reply is not valid JSON ({exc.msg} at character {exc.pos}).{cut}",
            text=text, truncated=truncated) from None
    if schema is None:
        return data
    if isinstance(schema, type) and hasattr(schema, "model_validate"):
        try:
            return schema.model_validate(data)
        except Exception as exc:  # pydantic.ValidationError, without importing pydantic here
            raise StructuredOutputError(
                f"The reply does not match {schema.__name__}: {_first_lines(exc)}.{cut}",
                text=text, truncated=truncated) from None
    problem = _check_schema(data, schema)
    if problem:
        raise StructuredOutputError(f"The reply does not match the schema: {problem}.{cut}",
                                    text=text, truncated=truncated)
    return data


def _first_lines(exc: Exception, n: int = 3) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines()[:n])


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,),
    "number": (int, float), "boolean": (bool,), "null": (type(None),),
}


def _check_schema(data: Any, schema: dict[str, Any], path: str = "$") -> str | None:
    """A small JSON-schema check (type, required, properties, items, enum); first problem or None."""
    try:
        import jsonschema
    except ImportError:
        pass
    else:
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
        return f"{error.json_path}: {error.message}" if error else None
    expected = schema.get("type")
    if isinstance(expected, str) and expected in _TYPES:
        ok = isinstance(data, _TYPES[expected]) and not (
            expected in ("integer", "number") and isinstance(data, bool))
        if not ok:
            return f"{path} should be {expected}, got {type(data).__name__}"
    if "enum" in schema and data not in schema["enum"]:
        return f"{path} should be one of {schema['enum']}"
    if isinstance(data, dict):
        for key in schema.get("required", []):
            if key not in data:
                return f"{path} is missing required key '{key}'"
        for key, sub in (schema.get("properties") or {}).items():
            if key in data and isinstance(sub, dict):
                found = _check_schema(data[key], sub, f"{path}.{key}")
                if found:
                    return found
    if isinstance(data, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(data):
            found = _check_schema(item, schema["items"], f"{path}[{i}]")
            if found:
                return found
    return None
