"""``%llm_local start|stop|status``: the built-in llama.cpp engine as this kernel's server."""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any

from IPython.core.error import UsageError

from ..core.errors import ModelNotFoundError, ProviderUnavailableError

#: The settings ``start`` changes and ``stop`` puts back.
SAVED = ("host", "api", "api_key_env", "model")
#: Said under "no server answers" and "no model" errors.
START_HINT = ("No Ollama? %llm_local start runs a small model (SmolLM2-135M) inside this kernel, "
              "with no server to install.")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print and exit
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%llm_local", add_help=False)
    p.add_argument("action", choices=["start", "stop", "status"], nargs="?", default="status")
    p.add_argument("--model", "-m", metavar="PATH_OR_NAME")
    p.add_argument("--slots", type=int, default=4)
    p.add_argument("--ctx", type=int, metavar="TOKENS")
    p.add_argument("--threads", type=int)
    return p


_PARSER = _parser()


@dataclass
class KernelEngine:
    """The engine this kernel uses as its server, and the settings it replaced."""

    server: Any = None  # a gleitzeit_nb.local.LocalServer
    saved: dict[str, Any] = field(default_factory=dict)


STATE = KernelEngine()


def llm_local_magic(magics: Any, line: str) -> Any:
    """``%llm_local start|stop|status``: see ``LLMMagics.llm_local`` for the usage."""
    from IPython.display import Pretty

    args = _PARSER.parse_args(shlex.split(line))
    if args.action == "start":
        return Pretty(start(magics, args))
    if args.action == "stop":
        return Pretty(stop(magics))
    return Pretty(status())


def start(magics: Any, args: argparse.Namespace) -> str:
    """Start (or reuse) an engine and make it the kernel's server; a different one replaces it."""
    from .. import local

    server = local.start(args.model, args.slots, args.ctx, threads=args.threads)
    if STATE.server is not None and STATE.server is not server:
        stop(magics)  # one engine per kernel: the new one replaces it
    if STATE.server is None:
        STATE.saved = {name: getattr(magics, name) for name in SAVED}
    STATE.server = server
    magics.host = server.url
    magics.api = "auto"  # the URL ends in /v1: OpenAI-compatible
    magics.api_key_env = ""  # the engine takes no key: none is read or sent
    # llama.cpp answers any model name with the one it serves: another name would label (and
    # record) its answers as that model's
    magics.model = server.model
    # the same text on every run (a report re-validated by nbval); status has pid, URL, log
    return (f"Local engine ready: {server.model} on llama.cpp ({server.slots} slots); it is "
            "this kernel's server. %llm_local status shows its URL and log.")


def stop(magics: Any) -> str:
    """Stop the kernel's engine and put back the settings it replaced."""
    server = STATE.server
    if server is None:
        return "No local engine is running in this kernel."
    server.stop()
    if magics.host == server.url:  # unless changed since: then the user's choice stays
        for name in ("host", "api", "api_key_env"):
            setattr(magics, name, STATE.saved.get(name, getattr(magics, name)))
    if magics.model == server.model:
        magics.model = STATE.saved.get("model", "")
    STATE.server, STATE.saved = None, {}
    return f"Stopped the local engine (pid {server.pid}); host is {magics.host or 'OLLAMA_HOST'}."


def status(lines: int = 8) -> str:
    """URL, model, slots, uptime and the log's tail of the kernel's engine."""
    server = STATE.server
    if server is None:
        return "No local engine in this kernel: %llm_local start starts one."
    up = int(server.uptime)
    state = (f"running, pid {server.pid}, up {up // 3600}h {up // 60 % 60:02d}m {up % 60:02d}s"
             if server.alive else f"EXITED (code {server.returncode}): %llm_local start "
                                  "starts it again")
    return "\n".join([
        f"local engine: {state}",
        f"url:    {server.url}",
        f"model:  {server.model}  ({server.model_path})",
        f"slots:  {server.slots} × {server.ctx} tokens of context, {server.threads} thread(s)",
        f"log:    {server.log_path}, last lines:",
        *("  " + text for text in server.log_tail(lines).splitlines())])


def error_hint(error: BaseException) -> str | None:
    """A line to add under an error: the engine died, or how to get going without Ollama."""
    local = sys.modules.get("gleitzeit_nb.local")
    url = getattr(error, "url", None) or ""
    for server in local.running() if local is not None else ():
        if not server.alive and url.startswith(getattr(server, "base", "\0")):
            return (f"The local engine exited (code {server.returncode}): %llm_local status "
                    "shows its log; %llm_local start starts it again.")
    if isinstance(error, (ProviderUnavailableError, ModelNotFoundError)):
        return START_HINT
    return None
