"""The ``llm/v1`` protocol: its methods, their typed parameters, and validation before any request."""

from __future__ import annotations

import math
import os
from typing import Any

from .errors import InvalidParamsError

_GENERATION_PARAMS: dict[str, dict[str, Any]] = {
    "model": {"type": "string", "required": True, "description": "Model name, e.g. llama3.2:latest"},
    "messages": {"type": "array", "required": True, "description": "[{role, content}, …]"},
    "temperature": {"type": "number", "min": 0, "max": 2},
    "max_tokens": {"type": "integer", "min": 1, "description": "Longest reply, in tokens"},
    "stream": {"type": "boolean"},
    "top_k": {"type": "integer", "min": 1},
    "top_p": {"type": "number", "min": 0, "max": 1},
    "repeat_penalty": {"type": "number", "min": 0},
    "seed": {"type": "integer"},
    "num_ctx": {"type": "integer", "min": 1},
    "stop": {"type": ["string", "array"]},
    "format": {"type": ["string", "object"], "enum_if_string": ["json"],
               "description": '"json" or a JSON-schema dict'},
    "think": {"type": ["boolean", "string"], "enum_if_string": ["low", "medium", "high"]},
    "keep_alive": {"type": ["string", "number"], "description": "How long the server keeps the model loaded"},
    "system": {"type": "string", "description": "Prepended as a system message"},
    "options": {"type": "object", "description": "Raw server options, merged under the named ones"},
    "file_path": {"type": "path", "description": "Text file injected into the last user message"},
    "tools": {"type": "array",
              "description": 'Functions the model may call: {"type": "function", "function": '
                             '{name, description, parameters}} schemas, Tools or functions'},
}

LLM_PROTOCOL_V1: dict[str, Any] = {
    "id": "llm/v1",
    "name": "LLM Protocol",
    "version": "1.0.0",
    "methods": {
        "chat": {
            "description": "Generate text responses",
            "parameters": dict(_GENERATION_PARAMS),
        },
        "vision": {
            "description": "Analyze images with vision models",
            "parameters": {
                **_GENERATION_PARAMS,
                "image_path": {"type": "path", "description": "Path of one image"},
                "images": {"type": "array",
                           "description": "Paths, bytes, base64 strings, data: URLs or PIL images"},
            },
            "required_one_of": [["image_path", "images"]],
        },
        "embed": {
            "description": "Embed text as vectors",
            "parameters": {
                "model": {"type": "string", "required": True},
                "input": {"type": ["string", "array"], "required": True},
                "truncate": {"type": "boolean"},
                "dimensions": {"type": "integer", "min": 1},
                "keep_alive": {"type": ["string", "number"]},
                "options": {"type": "object"},
            },
        },
    },
}

_ROLES = ("system", "user", "assistant", "tool")
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
    "path": (str, os.PathLike),
}


def method_name(spec: dict[str, Any], method: str) -> str:
    """Strip an ``llm/`` style prefix and check the method exists in ``spec``."""
    prefix = spec["id"].split("/")[0] + "/"
    name = method[len(prefix):] if method.startswith(prefix) else method
    if name not in spec["methods"]:
        known = ", ".join(sorted(spec["methods"]))
        raise InvalidParamsError(
            f"Unsupported method '{method}' for protocol {spec['id']}; use one of: {known}.",
            param="method",
        )
    return name


def required_params(spec: dict[str, Any], method: str) -> list[str]:
    params = spec["methods"][method_name(spec, method)]["parameters"]
    return [name for name, p in params.items() if p.get("required")]


def validate_params(spec: dict[str, Any], method: str, params: dict[str, Any]) -> str:
    """Check ``params`` against the method's declared parameters; return the bare method name.

    Raises ``InvalidParamsError`` naming the first offending parameter.
    """
    name = method_name(spec, method)
    mspec = spec["methods"][name]
    declared: dict[str, dict[str, Any]] = mspec["parameters"]
    if not isinstance(params, dict):
        raise InvalidParamsError(f"params for {name} must be a dict, got {type(params).__name__}.")

    unknown = [p for p in params if p not in declared]
    if unknown:
        raise InvalidParamsError(
            f"Unknown parameter {unknown[0]!r} for {spec['id']} {name}; "
            f"accepted: {', '.join(declared)}.",
            param=unknown[0],
        )
    missing = [p for p, d in declared.items()
               if d.get("required") and _absent(params.get(p), empty_list=False)]  # (its own check)
    if missing:
        raise InvalidParamsError(
            f"Missing required parameter {missing[0]!r} for {spec['id']} {name} "
            f"(required: {', '.join(required_params(spec, name))}).",
            param=missing[0],
        )
    for group in mspec.get("required_one_of", []):
        if all(_absent(params.get(p)) for p in group):
            raise InvalidParamsError(
                f"{spec['id']} {name} needs one of: {', '.join(group)}.", param=group[0]
            )
    for pname, value in params.items():
        if value is not None:
            _check_value(name, pname, value, declared[pname])
    if "messages" in params:
        _check_messages(params["messages"])
    if params.get("tools") is not None:
        _check_tools(params["tools"])
    return name


def _absent(value: Any, *, empty_list: bool = True) -> bool:
    """None, an empty string, or (with ``empty_list``) an empty list: as good as not given."""
    kinds = (str, list, tuple) if empty_list else (str,)
    return value is None or (isinstance(value, kinds) and len(value) == 0)


def _check_value(method: str, pname: str, value: Any, decl: dict[str, Any]) -> None:
    types = decl["type"] if isinstance(decl["type"], list) else [decl["type"]]
    # bool is an int in Python; a flag is never a number here.
    ok = any(
        isinstance(value, _PY_TYPES[t]) and not (t in ("number", "integer") and isinstance(value, bool))
        for t in types
    )
    if not ok:
        raise InvalidParamsError(
            f"Parameter {pname!r} of {method} must be {' or '.join(types)}, "
            f"got {type(value).__name__} {value!r:.60}.",
            param=pname,
        )
    if "path" in types and not os.fspath(value):
        raise InvalidParamsError(f"Parameter {pname!r} is an empty path.", param=pname)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidParamsError(f"Parameter {pname!r} must be a finite number.", param=pname)
    lo, hi = decl.get("min"), decl.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"{lo}–{hi}" if hi is not None else f">= {lo}"
            raise InvalidParamsError(
                f"Parameter {pname!r} is {value}; it must be {bounds}.", param=pname
            )
    allowed = decl.get("enum_if_string")
    if allowed and isinstance(value, str) and value not in allowed:
        raise InvalidParamsError(
            f"Parameter {pname!r} is {value!r}; as a string it must be one of: {', '.join(allowed)}.",
            param=pname,
        )
    if pname in ("stop", "input") and isinstance(value, (list, tuple)):
        if not all(isinstance(v, str) for v in value):
            raise InvalidParamsError(f"Parameter {pname!r} must hold only strings.", param=pname)


def _check_messages(messages: Any) -> None:
    if not messages:
        raise InvalidParamsError("Parameter 'messages' is empty; give at least one message.",
                                 param="messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise InvalidParamsError(
                f"messages[{i}] must be a dict with 'role' and 'content', got {type(msg).__name__}.",
                param="messages",
            )
        role = msg.get("role")
        if role not in _ROLES:
            raise InvalidParamsError(
                f"messages[{i}] has role {role!r}; use one of: {', '.join(_ROLES)}.",
                param="messages",
            )
        content = msg.get("content")
        # (an assistant message that only calls tools may have no text, as in OpenAI's API)
        if not isinstance(content, str) and not (content is None and msg.get("tool_calls")):
            raise InvalidParamsError(
                f"messages[{i}] needs 'content' as a string, got {type(msg.get('content')).__name__}.",
                param="messages",
            )
        calls = msg.get("tool_calls")
        if calls is not None and not isinstance(calls, (list, tuple)):
            raise InvalidParamsError(
                f"messages[{i}]['tool_calls'] must be a list of calls, got "
                f"{type(calls).__name__}.", param="messages")
        for key in ("tool_name", "tool_call_id"):
            if msg.get(key) is not None and not isinstance(msg[key], str):
                raise InvalidParamsError(f"messages[{i}][{key!r}] must be a string.",
                                         param="messages")
        if "images" in msg and not isinstance(msg["images"], (list, tuple)):
            raise InvalidParamsError(
                f"messages[{i}]['images'] must be a list of images, got "
                f"{type(msg['images']).__name__}.", param="messages")


def _check_tools(tools: Any) -> None:
    """Each tool: a schema dict with a function name, or something with ``to_schema`` (a Tool),
    or a plain callable (made into a Tool later)."""
    for i, tool in enumerate(tools):
        if callable(getattr(tool, "to_schema", None)) or (
                callable(tool) and not isinstance(tool, dict)):
            continue
        function = tool.get("function") if isinstance(tool, dict) else None
        if not (isinstance(tool, dict) and tool.get("type", "function") == "function"
                and isinstance(function, dict) and isinstance(function.get("name"), str)
                and function["name"]):
            raise InvalidParamsError(
                f"tools[{i}] must be a function, a Tool or a schema "
                '{"type": "function", "function": {"name": ..., "parameters": {...}}}, '
                f"got {tool!r:.60}.", param="tools")
        if not isinstance(function.get("parameters", {}), dict):
            raise InvalidParamsError(f"tools[{i}] ('{function['name']}'): 'parameters' must be "
                                     "a JSON schema object.", param="tools")
