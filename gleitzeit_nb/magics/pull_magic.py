"""``%llm_pull MODEL [--host H]``: download a model onto the server, with progress; and the
line under a missing-model error (or an interrupted pull) that offers it."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.error import UsageError

from ..app.connections import CONNECTIONS
from ..app.settings import SETTINGS
from ..core.errors import LLMError, ModelNotFoundError
from ..core.pull import human_bytes


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print and exit
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%llm_pull", add_help=False,
                description="Download a model onto the server, with progress.")
    p.add_argument("model", help="the model, e.g. llama3.2 or qwen3:0.6b")
    p.add_argument("--host", metavar="NAME_OR_URL",
                   help="server to pull onto: a name from %%llm_host or a URL "
                        "(default: LLMMagics.host)")
    return p


_PARSER = _parser()


def llm_pull_magic(line: str) -> Any:
    """``%llm_pull MODEL [--host H]``: see ``LLMMagics.llm_pull``. Returns the one-line result
    when no progress was shown (final display mode), else None (the bars say it)."""
    from ..notebook.progress import progress_mode
    from ..notebook.pull import pull

    try:
        args = _PARSER.parse_args(shlex.split(line))
    except ValueError as exc:  # an unclosed quote
        raise UsageError(f"%llm_pull: {exc}") from None
    result = pull(args.model, host=args.host or None, progress=SETTINGS.display)
    return result if progress_mode(SETTINGS.display) is None else None


def pull_hint(error: BaseException) -> str | None:
    """The notebook's line under an error: ``%llm_pull MODEL`` for a model the server can
    download, or how to resume an interrupted pull; None otherwise."""
    interrupted = getattr(error, "pull_interrupted", None)
    if interrupted is not None:
        model, host, kept = interrupted
        have = f"the {human_bytes(kept)} downloaded so far" if kept else "what it downloaded"
        return (f"The pull of {model} stopped; the server keeps {have}: "
                f"{command(model, host)} resumes it.")
    if isinstance(error, ModelNotFoundError) and error.pullable and error.model:
        return f"In this notebook: {command(error.model, error.url)} downloads it, with progress."
    return None


def command(model: str, host: str | None) -> str:
    """``%llm_pull MODEL``, with ``--host`` when ``host`` is not the configured server."""
    if host:
        try:
            default = CONNECTIONS.backend(None).base_url
            url = CONNECTIONS.backend(host).base_url
        except LLMError:
            default, url = "", host
        if url != default:
            return f"%llm_pull {model} --host {host}"
    return f"%llm_pull {model}"
