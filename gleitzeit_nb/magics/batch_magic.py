"""``%llm_batch`` / ``%%llm_batch``: run a prompt template over a notebook variable's rows."""

from __future__ import annotations

import argparse
import re
import shlex
from typing import Any

from IPython.core.error import UsageError

from ..core.errors import LLMError
from ..app.settings import SETTINGS
from ..batch.runner import ON_ERROR, run_batch
from .options import namespace_tools, namespace_value, num_ctx

_SOURCE = re.compile(r"""[^\W\d]\w*(?:\.[^\W\d]\w*|\[(?:-?\d+|'[^'\n]*'|"[^"\n]*")\])*""")
_STEP = re.compile(r"""\.(?P<attr>[^\W\d]\w*)|\[(?P<index>-?\d+|'[^'\n]*'|"[^"\n]*")\]""")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print and exit
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%llm_batch", add_help=False)
    p.add_argument("-m", "--model", help="model name (default: LLMMagics.model)")
    p.add_argument("-o", "--out", metavar="VAR",
                   help="store the result instead of showing it; after an interrupt or a "
                        "stopping error VAR holds the rows finished so far")
    p.add_argument("-c", "--concurrency", type=int, metavar="N",
                   help="requests at once (default: the server's capacity)")
    p.add_argument("--schema", metavar="VAR",
                   help="a pydantic model class or JSON-schema dict: one column per field")
    p.add_argument("--on-error", choices=ON_ERROR, default="collect",
                   help="a failed row: kept as its error (collect), stops the batch (raise), "
                        "or dropped (skip)")
    p.add_argument("--images", action="store_true",
                   help="SOURCE holds images (or is a glob); the template asks about each")
    p.add_argument("--system", help="system prompt for every row")
    p.add_argument("-t", "--temperature", type=float, help="sampling temperature, 0–2")
    p.add_argument("--max-tokens", type=int, help="stop each reply after this many tokens")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--num-ctx", type=num_ctx, metavar="N",
                   help="context size in tokens (Ollama's num_ctx; default: LLMMagics.num_ctx)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--host", metavar="NAME_OR_URL",
                   help="server: a name from %%llm_host or a URL (default: LLMMagics.host)")
    p.add_argument("--tools", metavar="F,G",
                   help="notebook functions the model may call for each row, by name with "
                        "commas between; the answers carry the calls on .tool_calls")
    p.add_argument("--approve", metavar="never|FUNCTION",
                   help="never (run each call), or a notebook function given the call that "
                        "returns True to run it (default: LLMMagics.tool_approval; always is "
                        "refused in a batch)")
    p.add_argument("--max-tool-rounds", type=int, metavar="N",
                   help="rounds of tool calls per row before the model must answer "
                        "(default: LLMMagics.max_tool_rounds)")
    return p


_PARSER = _parser()
_FLAGS = {flag: action.nargs != 0 for action in _PARSER._actions for flag in action.option_strings}


def llm_batch_magic(shell: Any, line: str, cell: str | None = None) -> Any:
    """``%llm_batch`` / ``%%llm_batch``: see ``LLMMagics.llm_batch`` for the usage."""
    args, source, template = parse_line(line)
    if cell is not None:
        if template:
            raise UsageError("With %%llm_batch the template is the cell body; the first line "
                             "takes options and the SOURCE only.")
        template = cell.strip() or None
    if source is None:
        raise UsageError("Which rows? Use %llm_batch [options] SOURCE [TEMPLATE], e.g. "
                         "%llm_batch df.review -o out \"Summarise: {x}\".")
    if args.out is not None and not args.out.isidentifier():
        raise UsageError(f"-o needs a variable name, not {args.out!r}.")
    user_ns = shell.user_ns
    items = resolve_source(source, user_ns, images=args.images)
    schema = None
    if args.schema:
        if args.schema not in user_ns:
            raise UsageError(f"--schema '{args.schema}' is not defined in the notebook; "
                             "define it first.")
        schema = user_ns[args.schema]
    tools = namespace_tools(args.tools, user_ns) if args.tools else None
    try:  # what the line leaves out comes from the settings (%config LLMMagics)
        result = run_batch(
            items, template, model=args.model, concurrency=args.concurrency, schema=schema,
            images=args.images, on_error=args.on_error, system=args.system,
            temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed,
            num_ctx=args.num_ctx, host=args.host,
            progress=False if args.no_progress else SETTINGS.display,
            variables=user_ns, tools=tools, approve=_approve(args.approve, user_ns),
            max_tool_rounds=args.max_tool_rounds)
    except (KeyboardInterrupt, LLMError) as exc:
        partial = getattr(exc, "partial", None)
        if args.out and partial is not None:
            user_ns[args.out] = partial
        raise
    if args.out:
        user_ns[args.out] = result
        return None
    return result


def _approve(value: str | None, user_ns: dict[str, Any]) -> Any:
    """``--approve``: "never", "always" (the batch says why not), or a notebook function."""
    if value is None or value in ("never", "always"):
        return value
    approve = namespace_value(value, user_ns, "--approve")
    if not callable(approve):
        raise UsageError(f"--approve '{value}' is a {type(approve).__name__}: use never or "
                         "a function that gets the call and returns True to run it.")
    return approve


def parse_line(line: str) -> tuple[argparse.Namespace, str | None, str | None]:
    """Split the magic's line into options, SOURCE and the template text (verbatim)."""
    tokens: list[str] = []
    source: str | None = None
    rest = line.strip()
    while rest:
        word = rest.split(None, 1)[0]
        flag = word.split("=", 1)[0]
        if flag in _FLAGS:
            tokens.append(word)
            rest = rest[len(word):].lstrip()
            if _FLAGS[flag] and "=" not in word:
                if not rest:
                    raise UsageError(f"{flag} needs a value.\n{_PARSER.format_usage().strip()}")
                value, rest = _take_token(rest)
                tokens.append(value)
        elif word.startswith("--") and source is None:
            raise UsageError(f"unknown option {word}\n{_PARSER.format_usage().strip()}")
        elif source is None:
            source, rest = _take_token(rest)
        else:
            break
    return _PARSER.parse_args(tokens), source, _unquote(rest) or None


def _take_token(text: str) -> tuple[str, str]:
    """One word (brackets and quotes inside it kept together), or one quoted string."""
    if text[0] in "'\"":
        lexer = shlex.shlex(text, posix=True)
        lexer.whitespace_split = True
        try:
            value = next(iter(lexer))
        except ValueError as exc:
            raise UsageError(f"Unbalanced quotes in {text!r}: {exc}") from None
        return value, lexer.instream.read().lstrip()
    depth, quote = 0, ""
    for i, c in enumerate(text):
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c.isspace() and depth <= 0:
            return text[:i], text[i:].lstrip()
    return text, ""


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        try:
            parts = shlex.split(text)
        except ValueError:
            return text
        if len(parts) == 1:
            return parts[0]
    return text


def resolve_source(source: str, user_ns: dict[str, Any], *, images: bool = False) -> Any:
    """The value of ``name.attr["key"]…`` in the notebook (nothing is evaluated).

    With ``images``, a SOURCE that is not a notebook variable is taken as a path or glob.
    """
    match = _SOURCE.fullmatch(source)
    name = match and re.match(r"[^\W\d]\w*", source)
    if not match or not name or name.group() not in user_ns:
        if images:
            return source
        if not match:
            raise UsageError(f"SOURCE must be a variable, optionally with .attr or [\"key\"] "
                             f"steps (e.g. df.review or df['review']), not {source!r}.")
        raise UsageError(f"'{name.group()}' is not defined in the notebook; define it first.")
    value = user_ns[name.group()]
    for step in _STEP.finditer(source, name.end()):
        try:
            if step["attr"] is not None:
                value = getattr(value, step["attr"])
            else:
                value = value[_literal(step["index"])]
        except (AttributeError, KeyError, IndexError, TypeError) as exc:
            raise UsageError(f"{source}: {step.group()} does not apply "
                             f"({type(exc).__name__}: {exc}).") from None
    return value


def _literal(text: str) -> Any:
    return int(text) if text.lstrip("-").isdigit() else text[1:-1]
