"""``gleitzeit_nb.chat``: ask a model from Python code, with the notebook's settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..app import bridge
from ..app.replies import Reply
from ..app.requests import Request, Silent, ask_async, make_request
from ..app.settings import SETTINGS
from .display import ReplyDisplay, ask_person, resolve_mode


def ask(req: Request, *, display: str | None = "auto", plain: bool = False) -> Reply:
    """Run ``req`` from synchronous code (a cell, a script), shown per ``display`` (None: not
    shown; "auto", "live", "final" or "terminal"); ``plain``: as plain text, not Markdown."""
    shown: Any = None
    if display:
        shown = ReplyDisplay(model=req.model or "", mode=display, show_stats=SETTINGS.show_stats,
                             plain=plain)
    elif req.tools and req.approve == "always":
        shown = _Unshown()
    return bridge.run(ask_async(req, shown))


class _Unshown(Silent):
    """No reply on screen, but a person to ask before a tool call (buttons, a prompt)."""

    async def approve(self, run: Any) -> bool:
        return await ask_person(run, resolve_mode())


def chat(prompt: str, *, model: str | None = None, session: str | None = None, new: bool = False,
         system: str | None = None, temperature: float | None = None,
         max_tokens: int | None = None, seed: int | None = None, file: str | None = None,
         json: bool = False, schema: Any = None, think: bool | str | None = None,
         images: list[Any] | None = None, max_image_edge: int | None = None,
         host: str | None = None, api: str | None = None, api_key_env: str | None = None,
         timeout: float | None = None, chunk_timeout: float | None = None,
         deadline: float | None = None, display: str | None = None,
         remember: bool = True, tools: Sequence[Any] | None = None,
         approve: str | Callable[..., Any] | None = None,
         max_tool_rounds: int | None = None, num_ctx: int | None = None) -> Reply:
    """Ask a model from Python code (scripts, loops): the twin of ``%%llm``.

    Every argument left out takes its default from the settings (``%config LLMMagics`` in a
    notebook, ``gleitzeit_nb.SETTINGS`` in a script): ``model``, ``host``, ``temperature``,
    ``max_tokens``, ``system``, ``num_ctx``, timeouts. Returns a ``Reply``: a ``str`` with ``.thinking``,
    ``.usage`` and, with ``json=True`` or ``schema=``, the parsed object (a pydantic instance
    for a pydantic class) on ``.value``. ``display`` is None (show nothing), "auto", "live",
    "final" or "terminal". Conversation memory works as in the magic: ``session`` names it,
    ``new`` restarts it, ``remember=False`` sends the prompt alone. Record/replay follows
    ``gleitzeit_nb.replay_mode`` / ``GLEITZEIT_REPLAY``.

    ``tools`` are Python functions the model may call (their schema comes from the signature,
    type hints and docstring); the calls run here, their results go back, until the model
    answers or ``max_tool_rounds`` rounds ran. ``approve``: "never" (default: run calls at
    once), "always" (ask: buttons in a notebook, a prompt in a terminal) or a function given
    the call that returns True to run it. The calls are on ``reply.tool_calls``.
    """
    from ..core.image_prep import prepare_image

    edge = SETTINGS.max_image_edge if max_image_edge is None else max_image_edge
    req = make_request(
        prompt, images=[prepare_image(i, max_edge=edge) for i in images or []], model=model,
        system=system, temperature=temperature, max_tokens=max_tokens, seed=seed,
        file_path=file, think=think, host=host, api=api, api_key_env=api_key_env,
        timeout=timeout, chunk_timeout=chunk_timeout, deadline=deadline, session=session,
        new=new, json=json, schema=schema, remember=remember, tools=tools, approve=approve,
        max_tool_rounds=max_tool_rounds, num_ctx=num_ctx)
    return ask(req, display=display)
