"""``{var}`` interpolation of a prompt from the notebook namespace, without evaluating code.

Rules, applied left to right:

* ``{{`` and ``}}`` are literal ``{`` and ``}`` (as in f-strings).
* A brace group whose content is a *placeholder* is replaced: an identifier, then any chain of
  ``.attr`` and ``[index]`` (``index`` is an integer or a quoted string: ``{obj[0]}``,
  ``{obj["key"]}``), then an optional conversion ``!r`` / ``!s`` / ``!a`` and an optional format
  spec ``:spec`` that does not start with whitespace (``{x:.2f}``, ``{when:%Y-%m-%d}``; the spec
  may hold nested placeholders: ``{x:.{digits}f}``). The value is found in the namespace and
  rendered with ``format(value, spec)``; a pandas DataFrame or Series without conversion is
  rendered by :mod:`.tables` (whole while it fits ``table_budget``, else a summary; its only
  specs are the table forms ``:full``, ``:summary``, ``:head(N)``, ``:tail(N)``).
* A brace group that is an expression with calls, operators, indexing by a variable, or lambdas
  (``{f()}``, ``{a+b}``, ``{d[key]}``) raises ``InvalidParamsError``: only names, attributes
  and literal indexing are allowed, nothing is evaluated.
* Any other brace group is copied verbatim with everything nested inside it, so JSON
  (``{"a": {"b": 1}}``), code, sets and prose (``{yes, no}``, ``{ x }``, ``{a: 1}``) pass
  unchanged. To interpolate inside such text, escape its braces f-string style:
  ``{{"name": "{name}"}}``.
* LaTeX groups are copied verbatim: a ``{`` directly after a command (``\\frac{a}{b}``,
  ``\\sqrt[3]{x}``, ``\\text{…}``), after ``^`` or ``_`` (``x^{n}``, ``a_{i}``), or directly after
  such a group's ``}`` (the ``{b}`` of ``\\frac{a}{b}``). Consequently ``file_{n}.txt`` is not
  interpolated either; build such strings in a cell and insert the result: ``{fname}``.
* An unmatched ``{`` or ``}`` is kept as is.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidParamsError
from .tables import is_table, table_text
from .warn import warn_user

__all__ = ["interpolate", "LONG_VALUE_CHARS"]

LONG_VALUE_CHARS = 20_000
"""A placeholder whose text is longer than this is kept, with a warning about its size."""

_IDENT = r"[^\W\d]\w*"
_INDEX = r"""-?\d+|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*\""""
_STEP = re.compile(rf"\.(?P<attr>{_IDENT})|\[(?P<index>{_INDEX})\]")
_FIELD = re.compile(
    rf"""(?P<name>{_IDENT})
    (?P<chain>(?:\.{_IDENT}|\[(?:{_INDEX})\])*)
    (?:!(?P<conv>[rsa]))?
    (?::(?P<spec>(?!\s)(?:[^{{}}\n]|\{{[^{{}}\n]*\}})*))?""",
    re.VERBOSE,
)
_FIELD_NO_SPEC = re.compile(
    rf"(?P<name>{_IDENT})(?P<chain>(?:\.{_IDENT}|\[(?:{_INDEX})\])*)(?:!(?P<conv>[rsa]))?")
_NESTED = re.compile(r"\{([^{}\n]*)\}")
_LATEX_BEFORE = re.compile(r"(?:\\[A-Za-z]+\*?(?:\[[^\[\]{}\n]*\])?|[\^_])\Z")
_CONVERSIONS = {"r": repr, "s": str, "a": ascii}
# AST nodes that show the author meant code (a call, arithmetic…), not prose like "{yes or no}".
_CODE_NODES = (ast.Call, ast.BinOp, ast.Subscript, ast.Lambda, ast.ListComp, ast.SetComp,
               ast.DictComp, ast.GeneratorExp, ast.Starred, ast.NamedExpr)


def interpolate(template: str, namespace: Mapping[str, Any], *,
                filled: list[tuple[int, int]] | None = None) -> str:
    """Replace the placeholders of ``template`` with values from ``namespace`` (see module doc).

    ``filled``, if given, receives the ``(start, end)`` span in ``template`` of each placeholder
    replaced.

    Raises ``InvalidParamsError`` (``param="prompt"``) for an undefined name, a failing attribute
    or index, a format spec that does not apply, or an expression that is more than a name.
    """
    if not isinstance(template, str):
        raise InvalidParamsError(
            f"The prompt must be a str, not {type(template).__name__}.", param="prompt")
    if "{" not in template and "}" not in template:
        return template
    matches = _matching_braces(template)
    out: list[str] = []
    i, n = 0, len(template)
    latex_end = -1  # index just after the last LaTeX group, to chain \frac{a}{b}
    while i < n:
        c = template[i]
        if c == "}":
            out.append("}")
            i += 2 if template.startswith("}}", i) else 1
            continue
        if c != "{":
            nxt = _next_brace(template, i)
            out.append(template[i:nxt])
            i = nxt
            continue
        end = matches.get(i, -1)
        if i == latex_end or _LATEX_BEFORE.search(template, max(0, i - 80), i):
            stop = end + 1 if end >= 0 else i + 1
            out.append(template[i:stop])
            i = latex_end = stop
            continue
        if template.startswith("{{", i):
            out.append("{")
            i += 2
            continue
        if end < 0:
            out.append("{")
            i += 1
            continue
        content = template[i + 1:end]
        field = _FIELD.fullmatch(content)
        if field:
            out.append(_render(field, content, namespace))
            if filled is not None:
                filled.append((i, end + 1))
        elif _looks_like_code(content):
            raise _not_a_placeholder(content)
        else:
            out.append(template[i:end + 1])
        i = end + 1
    return "".join(out)


def _next_brace(text: str, start: int) -> int:
    """Index of the next ``{`` or ``}`` at or after ``start`` (``len(text)`` if none)."""
    positions = [p for p in (text.find("{", start), text.find("}", start)) if p >= 0]
    return min(positions) if positions else len(text)


def _matching_braces(text: str) -> dict[int, int]:
    """Map the index of each ``{`` to the index of its matching ``}`` (pure nesting)."""
    stack: list[int] = []
    pairs: dict[int, int] = {}
    for i, c in enumerate(text):
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            pairs[stack.pop()] = i
    return pairs


def _looks_like_code(content: str) -> bool:
    """Whether brace content is a Python expression beyond a name (an attempt at an f-string)."""
    if not content or content != content.strip() or "\n" in content:
        return False
    try:
        tree = ast.parse(content, mode="eval").body
    except (SyntaxError, ValueError):
        return False
    if isinstance(tree, ast.Tuple):  # "{yes, no}" reads as a set of words
        return False
    return any(isinstance(node, _CODE_NODES) for node in ast.walk(tree))


def _render(field: re.Match[str], content: str, namespace: Mapping[str, Any]) -> str:
    """The text of one placeholder."""
    value = _resolve(field["name"], field["chain"], content, namespace)
    spec = field["spec"] or ""
    if "{" in spec:
        spec = _NESTED.sub(lambda m: _nested_spec(m[1], content, namespace), spec)
    conv = field["conv"]
    if conv:
        value = _CONVERSIONS[conv](value)
    if not conv and is_table(value):  # every spec: a wrong one gets the table forms listed
        return table_text(value, spec, field["name"] + field["chain"])
    try:
        text = format(value, spec)
    except Exception as exc:  # noqa: BLE001 - any __format__ may raise anything
        raise _fail(content, f"Format spec ':{spec}' does not apply to the "
                             f"{type(value).__name__} value ({exc})") from exc
    if len(text) > LONG_VALUE_CHARS:
        warn_user(f"{{{content}}} puts {len(text):,} characters into the prompt; it is kept in "
                  "full and checked against the model's context size before sending. Shorten "
                  "the value if the model need not see all of it.")
    return text


def _nested_spec(inner: str, content: str, namespace: Mapping[str, Any]) -> str:
    """A placeholder nested in a format spec, like the ``{digits}`` of ``{x:.{digits}f}``."""
    m = _FIELD_NO_SPEC.fullmatch(inner)
    if not m:
        raise _fail(content, f"The nested field {{{inner}}} in the format spec is not a name")
    value = _resolve(m["name"], m["chain"], content, namespace)
    return _CONVERSIONS[m["conv"]](value) if m["conv"] else format(value)


def _resolve(name: str, chain: str, content: str, namespace: Mapping[str, Any]) -> Any:
    """Look up ``name`` and follow its ``.attr`` / ``[index]`` chain."""
    try:
        value = namespace[name]
    except KeyError:
        raise InvalidParamsError(
            f"Name '{name}' in {{{content}}} is not defined in the notebook; define it first, "
            f"or write {{{{{content}}}}} for literal braces.", param="prompt") from None
    for step in _STEP.finditer(chain):
        if step["attr"] is not None:
            attr = step["attr"]
            try:
                value = getattr(value, attr)
            except AttributeError:
                raise _fail(content, f"Attribute '{attr}' does not exist on the "
                                     f"{type(value).__name__} value") from None
            except Exception as exc:  # noqa: BLE001 - properties may raise anything
                raise _fail(content, f"Reading attribute '{attr}' raised "
                                     f"{type(exc).__name__}: {exc}") from exc
        else:
            key = ast.literal_eval(step["index"])
            try:
                value = value[key]
            except KeyError:
                raise _fail(content, f"Key {key!r} is not in the "
                                     f"{type(value).__name__} value") from None
            except IndexError:
                size = f" (length {len(value)})" if hasattr(value, "__len__") else ""
                raise _fail(content, f"Index {key!r} is out of range for the "
                                     f"{type(value).__name__} value{size}") from None
            except InvalidParamsError:
                raise  # the value's own message ({Err[n]} of a cell without an error)
            except Exception as exc:  # noqa: BLE001 - __getitem__ may raise anything
                raise _fail(content, f"Indexing the {type(value).__name__} value with {key!r} "
                                     f"raised {type(exc).__name__}: {exc}") from exc
    return value


def _fail(content: str, problem: str) -> InvalidParamsError:
    return InvalidParamsError(
        f"{problem} in {{{content}}}; fix the placeholder, or write {{{{{content}}}}} for "
        "literal braces.", param="prompt")


def _not_a_placeholder(content: str) -> InvalidParamsError:
    return InvalidParamsError(
        f"{{{content}}} is not a placeholder: only names, attributes and indexing with a literal "
        "key are allowed (e.g. {name}, {obj.attr}, {obj['key']}, {obj[0]}, {x:.2f}), and "
        "nothing is evaluated. Compute the value in a cell and use its name, or write "
        f"{{{{{content}}}}} for literal braces.", param="prompt")
