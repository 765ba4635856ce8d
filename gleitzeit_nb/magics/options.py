"""Parsing magic lines: leading ``--options``, then the prompt text verbatim.

The prompt is never shell-split, so apostrophes and quotes in a question are kept as typed.
Bad options raise IPython's ``UsageError`` (a one-line message, no traceback).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError

from ..providers.servers import APIS

REPLY_FORMATS = ("markdown", "text", "json", "code")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print and exit
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def _think(value: str) -> str:
    if value not in ("low", "medium", "high"):
        raise argparse.ArgumentTypeError("use --think, or --think low|medium|high")
    return value


def _sampling(p: argparse.ArgumentParser) -> None:
    """The generation options every asking magic takes."""
    p.add_argument("-t", "--temperature", type=float, help="sampling temperature, 0–2")
    p.add_argument("--max-tokens", type=int, help="stop after this many tokens")
    p.add_argument("--seed", type=int, help="random seed (same seed + prompt → same reply)")
    p.add_argument("-o", "--out", metavar="VAR", help="store the result in this variable")


def num_ctx(value: str) -> int:
    """``--num-ctx``: a context size in tokens, at least 1."""
    try:
        tokens = int(value)
    except ValueError:
        tokens = 0
    if tokens < 1:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a context size: give it in tokens, e.g. --num-ctx 8192")
    return tokens


def _context(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-ctx", type=num_ctx, metavar="N",
                   help="context size in tokens for this request (Ollama's num_ctx; default: "
                        "LLMMagics.num_ctx)")


def _host(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", metavar="NAME_OR_URL",
                   help="server for this request: a name from %%llm_host or a URL "
                        "(default: LLMMagics.host)")


def _verbatim(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-interpolate", action="store_true",
                   help="send the prompt as typed: no {name} filling, {{ and }} kept (for code)")


def _tools(p: argparse.ArgumentParser, *, approve: str) -> None:
    """The tool options of %%llm and %llm_chat."""
    p.add_argument("--tools", metavar="F,G",
                   help="notebook functions the model may call, comma-separated")
    p.add_argument("--approve", choices=["never", "always"],
                   help=f"{approve}; default: LLMMagics.tool_approval")
    p.add_argument("--max-tool-rounds", type=int, metavar="N",
                   help="rounds of tool calls before the model must answer "
                        "(default: LLMMagics.max_tool_rounds)")


def host_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%llm_models", add_help=False)
    _host(p)
    return p


def server_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%llm_host", add_help=False)
    p.add_argument("action", choices=["add", "use", "list"], nargs="?", default="list",
                   help="add a server, use one as the default, or list them (the default)")
    p.add_argument("name", nargs="?", help="the server's name, for --host NAME")
    p.add_argument("url", nargs="?", help="its base URL (add)")
    p.add_argument("--api", choices=APIS, default="auto",
                   help="the server's API (auto: openai for a URL ending in /v1)")
    p.add_argument("--key-env", default="", metavar="VAR",
                   help="environment variable holding the server's API key")
    return p


def llm_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%%llm", add_help=False)
    p.add_argument("-m", "--model", help="model name (default: LLMMagics.model, else a loaded "
                   "model); several, comma-separated (a,b or a@HOST,b@HOST): compared side by side")
    p.add_argument("-s", "--session", help="conversation to continue (default: this notebook's)")
    p.add_argument("--new", action="store_true", help="start the session afresh")
    p.add_argument("--system", help="system prompt for this request")
    _sampling(p)
    p.add_argument("--file", help="a text file to put before the prompt")
    _verbatim(p)
    p.add_argument("--json", action="store_true", help="ask for JSON; the result is the parsed object")
    _reply_format(p)
    p.add_argument("--schema", metavar="VAR",
                   help="a pydantic model class or JSON-schema dict in the notebook; the result is validated")
    p.add_argument("--think", nargs="?", const=True, type=_think, metavar="LEVEL",
                   help="show the model's thinking (thinking models); optional level low|medium|high")
    _tools(p, approve="ask before each tool call (always) or not (never)")
    _context(p)
    _host(p)
    return p


def _reply_format(p: argparse.ArgumentParser) -> None:
    """``--format`` and its short form ``--code`` (``%%llm``)."""
    p.add_argument("--format", choices=REPLY_FORMATS,
                   help="markdown (default), text (shown as plain text), json (= --json) or "
                        "code (the reply's code block goes into the next cell, not run)")
    p.add_argument("--code", action="store_true", help="= --format code")


def fix_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%llm_fix", add_help=False,
                description="Explain the last error (or cell N's) and suggest a corrected cell.")
    p.add_argument("cell", nargs="?", type=int, metavar="N",
                   help="the execution count of the failed cell (default: the last failure)")
    p.add_argument("--code", action="store_true",
                   help="put the corrected code into the next cell (not run)")
    p.add_argument("-m", "--model", help="model name (default: LLMMagics.model)")
    p.add_argument("-s", "--session", help="also keep the exchange in this chat session")
    p.add_argument("--system", help="system prompt for this request")
    _sampling(p)
    _context(p)
    _host(p)
    return p


def vision_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%vision", add_help=False)
    p.add_argument("-m", "--model", help="vision model (default: LLMMagics.vision_model, else one installed)")
    p.add_argument("-s", "--session", help="also keep the exchange in this chat session")
    p.add_argument("--max-edge", type=int, help="longest edge sent, in pixels (default: LLMMagics.max_image_edge)")
    _verbatim(p)
    _sampling(p)
    _host(p)
    return p


def chat_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%llm_chat", add_help=False)
    p.add_argument("-m", "--model", help="model (default: LLMMagics.model)")
    p.add_argument("-s", "--session", help="conversation shared with %%%%llm -s SESSION")
    p.add_argument("--system", help="system prompt")
    p.add_argument("-t", "--temperature", type=float, help="sampling temperature, 0–2")
    _tools(p, approve="Approve / Refuse buttons in the panel before each tool call (always) "
                      "or not (never)")
    _host(p)
    return p


def split_options(line: str, parser: argparse.ArgumentParser,
                  user_ns: Mapping[str, Any] | None = None) -> tuple[argparse.Namespace, str]:
    """Parse the leading options of ``line``; return them and the remaining text unchanged.

    With ``user_ns`` (the prompt namespace, so ``--system "{Err}"`` works), option values may
    name notebook variables as IPython lines do (``-m $model``, ``--system "{style}"``): our
    magics turn IPython's own expansion off.
    """
    takes_value = {}
    for action in parser._actions:
        for flag in action.option_strings:
            takes_value[flag] = action.nargs != 0 and action.nargs != "?"
            if action.nargs == "?":
                takes_value[flag] = "optional"
    tokens: list[str] = []
    rest = line.strip()
    while rest.startswith("-"):
        word, _, after = rest.partition(" ")
        flag = word.split("=", 1)[0]
        if flag not in takes_value and not word.startswith("--"):
            break  # e.g. "-3 squared?" is text, not an option
        tokens.append(word)
        rest = after.lstrip()
        needs = takes_value.get(flag, False)
        if "=" in word or not needs:
            continue
        if needs == "optional" and rest.split(" ", 1)[0] not in ("low", "medium", "high"):
            continue
        value, rest = _take_value(rest)
        tokens.append(value)
    args = parser.parse_args(tokens)
    if user_ns is not None:
        for name, value in vars(args).items():
            if isinstance(value, str):
                setattr(args, name, expand_value(value, user_ns))
    return args, rest


def expand_value(value: str, user_ns: Mapping[str, Any]) -> str:
    """``$name`` → the variable's value; ``{name}`` placeholders filled; else unchanged."""
    if value.startswith("$") and value[1:].isidentifier():
        return str(namespace_value(value[1:], user_ns, value))
    if "{" in value:
        from ..app.interpolate import interpolate

        return interpolate(value, user_ns)
    return value


def _take_value(text: str) -> tuple[str, str]:
    """One option value: a quoted string or a word."""
    if text[:1] in ("'", '"'):
        lexer = shlex.shlex(text, posix=True)
        lexer.whitespace_split = True
        try:
            value = next(iter(lexer), "")
        except ValueError:  # "No closing quotation"
            raise UsageError(f"An option value has no closing quote: {text[:40]}") from None
        return value, lexer.instream.read().lstrip()
    value, _, rest = text.partition(" ")
    return value, rest.lstrip()


def namespace_tools(names: str, user_ns: dict[str, Any]) -> list[Any]:
    """``--tools f,g``: the functions of those names in the notebook."""
    tools = []
    for name in filter(None, (n.strip() for n in names.split(","))):
        value = namespace_value(name, user_ns, "--tools")
        if not callable(value):
            raise UsageError(f"--tools '{name}' is a {type(value).__name__}, not a function.")
        tools.append(value)
    if not tools:
        raise UsageError("--tools needs function names, e.g. --tools get_rows,plot_column")
    return tools


def namespace_value(name: str, user_ns: Mapping[str, Any], what: str) -> Any:
    """Look up ``name`` for an option like --schema; a clear UsageError if it is missing."""
    if name not in user_ns:
        raise UsageError(f"{what} '{name}' is not defined in the notebook; define it first.")
    return user_ns[name]
