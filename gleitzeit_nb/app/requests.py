"""One request: sessions, model choice, replay, streaming into a display, structured results.

``ask_async`` is what ``%%llm``, ``%vision``, ``gleitzeit_nb.chat`` and the panels share; the
caller passes the display (an object with start/add/tick/finish and ``text``) that shows it.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from .. import replay
from ..core.errors import InvalidParamsError, LLMError, ProviderTimeoutError, StreamError
from ..core.image_prep import PreparedImage
from ..core.protocol import LLM_PROTOCOL_V1, validate_params
from ..core.provider import BackendProvider
from ..core.requests import chat_request
from ..core.tools import Tool, as_tool
from .connections import CONNECTIONS, Connections
from .fit import check_fit, length_limit
from .replies import Reply
from .settings import SETTINGS
from .structured import format_for, parse_reply
from .tool_runs import APPROVAL_MODES, Approver
from .usage import USAGE

#: Request options that go to the model: the llm/v1 chat parameters besides the conversation.
GENERATION_KEYS = tuple(k for k in LLM_PROTOCOL_V1["methods"]["chat"]["parameters"]
                        if k not in ("model", "messages", "stream"))


@dataclass
class Request:
    """Everything one reply depends on, gathered from magic options, settings and keywords.

    ``None`` server fields mean "the configured default" (``SETTINGS``).
    """

    prompt: str
    model: str | None = None
    host: str | None = None
    api: str | None = None
    api_key_env: str | None = None
    timeout: float | None = None
    chunk_timeout: float | None = None
    deadline: float | None = None
    session: str | None = None
    remember: bool = True
    new: bool = False
    images: list[PreparedImage] = field(default_factory=list)
    json: bool = False
    schema: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    tools: list[Tool] = field(default_factory=list)
    approve: str | Approver = "never"
    max_tool_rounds: int = 8
    partial: str | None = None  # set when the reply broke off: the text that did arrive
    #: A server label put in the replay key (only set by a comparison asking one model on
    #: several servers of one API, whose keys would otherwise be the same).
    replay_server: str | None = None

    def backend(self, conn: Connections) -> BackendProvider:
        return conn.backend(self.host, api=self.api, api_key_env=self.api_key_env,
                            timeout=self.timeout, chunk_timeout=self.chunk_timeout)


def make_request(prompt: str, *, images: list[PreparedImage] | None = None,
                 model: str | None = None, system: str | None = None,
                 temperature: float | None = None, max_tokens: int | None = None,
                 seed: int | None = None, file_path: str | None = None,
                 think: bool | str | None = None, host: str | None = None,
                 api: str | None = None, api_key_env: str | None = None,
                 timeout: float | None = None, chunk_timeout: float | None = None,
                 deadline: float | None = None, session: str | None = None, new: bool = False,
                 json: bool = False, schema: Any = None, remember: bool = True,
                 tools: Sequence[Any] | None = None, approve: str | Approver | None = None,
                 max_tool_rounds: int | None = None, num_ctx: int | None = None) -> Request:
    """A request with whatever the caller leaves out (None) taken from ``SETTINGS``: the one
    place where every entry point (magics, ``chat()``, panels) gets its defaults.

    ``tools`` are functions (or :class:`~gleitzeit_nb.core.tools.Tool`) the model may call;
    ``approve`` is "never" (run calls at once), "always" (ask before each) or a callable
    given the call that returns True to run it.
    """
    s = SETTINGS
    images = list(images or [])
    check_format_and_tools(tools, json or schema is not None)
    tool_list, approve, rounds = tool_options(tools, approve, max_tool_rounds)
    return Request(
        tools=tool_list, approve=approve, max_tool_rounds=rounds,
        prompt=prompt, model=model or s.model_for(bool(images)), host=host, api=api,
        api_key_env=api_key_env, timeout=timeout, chunk_timeout=chunk_timeout,
        deadline=s.deadline if deadline is None else deadline, session=session, new=new,
        images=images, json=json, schema=schema, remember=remember,
        options={"system": s.system if system is None else system,
                 "temperature": s.temperature if temperature is None else temperature,
                 "max_tokens": s.max_tokens if max_tokens is None else max_tokens,
                 "seed": seed, "file_path": file_path, "think": think,
                 "num_ctx": s.num_ctx if num_ctx is None else num_ctx})


def check_format_and_tools(tools: Sequence[Any] | None, structured: bool) -> None:
    """JSON output and tools together are refused: the format would constrain every round's
    reply, so the model could not call a tool."""
    if tools and structured:
        raise InvalidParamsError(
            "JSON output (json=, schema=, --json, --schema) and tools cannot be combined: the "
            "format would constrain every round's reply, so the model could not call a tool. "
            "Ask with tools first, then for the JSON in a second request (a session keeps the "
            "tool results).", param="tools")


def tool_options(tools: Sequence[Any] | None, approve: str | Approver | None,
                 max_tool_rounds: int | None) -> tuple[list[Tool], str | Approver, int]:
    """``tools`` as :class:`Tool`, ``approve`` and ``max_tool_rounds`` checked (None: the
    settings): the one check for every entry point that takes them."""
    s = SETTINGS
    approve = s.tool_approval if approve is None else approve
    if not callable(approve) and approve not in APPROVAL_MODES:
        raise InvalidParamsError(f"approve={approve!r}: use 'never', 'always' or a function "
                                 "that gets the call and returns True to run it.",
                                 param="approve")
    rounds = s.max_tool_rounds if max_tool_rounds is None else max_tool_rounds
    if rounds < 1:
        raise InvalidParamsError(f"max_tool_rounds must be at least 1, not {rounds}.",
                                 param="max_tool_rounds")
    return [as_tool(t) for t in tools or ()], approve, rounds


async def ask_async(req: Request, display: Any = None, conn: Connections = CONNECTIONS, *,
                    backend: BackendProvider | None = None) -> Reply:
    """The request pipeline; ``display`` (None: silent) shows the reply as it streams and gets
    its ``model`` set once known. ``backend`` (None: the one ``req`` names) is for callers
    that chose the server themselves (a batch spreading rows over several)."""
    backend = backend or req.backend(conn)
    capability = "vision" if req.images else "completion"
    model = req.model or await conn.pick_model(backend, capability)
    session = conn.sessions.get(req.session)
    if req.new:
        session.reset()
    user: dict[str, Any] = {"role": "user", "content": req.prompt}
    if req.images:
        user["images"] = [img.b64 for img in req.images]
    history = session.request_messages() if req.remember else []
    params: dict[str, Any] = {"model": model, "messages": history + [user]}
    params.update({k: v for k, v in req.options.items() if k in GENERATION_KEYS and v is not None})
    if req.schema is not None:
        params["format"] = format_for(req.schema)
    elif req.json:
        params["format"] = "json"
    validate_params(LLM_PROTOCOL_V1, "chat", params)
    request = chat_request("chat", params)
    request.model = backend.canonical_model(model)
    if params.get("system"):  # kept beside the turn for exports (request_messages drops it)
        user = {**user, "system": params["system"]}

    display = display if display is not None else Silent()
    display.model = model
    if req.tools:
        from .tool_loop import converse

        request.tools = [t.to_schema() for t in req.tools]
        return await converse(req, backend, request, display, conn=conn, session=session,
                              user=user, model=model)
    replayer = replay.current()
    key = canonical = None
    if replayer.active:
        canonical = replay.chat_request_key(backend.kind, request)
        if req.replay_server:
            canonical["server"] = req.replay_server
        key, hit = replayer.find(canonical)
        if hit is not None:
            USAGE.add(model=request.model, server=backend.base_url, stats=hit.stats,
                      replayed=True)
            return _finish(req, session, user, model, _replayed(hit, model, display))
    if req.images and req.model:
        await _warn_if_blind(conn, backend, model)
    await check_fit(conn, backend, request)
    try:
        reply = await stream_reply(backend, request, display, deadline=req.deadline)
    except (KeyboardInterrupt, asyncio.CancelledError):
        req.partial = display.text
        if req.remember:
            session.add_turn(user, display.text, interrupted=True, model=model)
        raise
    except (StreamError, ProviderTimeoutError) as exc:  # broke off: keep what arrived
        req.partial = exc.partial
        if req.remember and (exc.partial or isinstance(exc, StreamError)):
            session.add_turn(user, exc.partial, interrupted=True, model=model)
        raise
    _finish(req, session, user, model, reply)
    if key is not None:  # after parsing succeeded: a bad reply is never recorded
        replayer.save(key, text=reply.text, thinking=reply.thinking, stats=reply.stats,
                      model=reply.model, status=reply.status, request=canonical)
    return reply


async def stream_reply(backend: BackendProvider, request: Any, display: Any, *,
                       deadline: float | None = None) -> Reply:
    """Stream a reply into ``display``; on any failure the partial text stays on screen.

    Interrupts and cancellation mark the display interrupted and propagate; errors mark it
    (the message is the caller's to show) and carry the partial text (``StreamError.partial``).
    ``deadline`` bounds the whole reply in seconds.
    """
    display.start()
    async with ticking(display):
        stream = await stream_round(backend, request, display, deadline=deadline)
    stats = stream.usage.as_dict()
    if limit := length_limit(stats, request.max_tokens):
        stats["length_limit"] = limit
    display.finish(stats=stats, status="done")
    return Reply(stream.text, thinking=stream.thinking, stats=stats, model=stream.model,
                 status="done")


async def stream_round(backend: BackendProvider, request: Any, display: Any, *,
                       deadline: float | None = None) -> Any:
    """One model turn streamed into a started ``display``; returns the finished stream (text,
    thinking, tool calls, usage). On a failure the display is finished as interrupted or error
    and the exception goes on (a deadline becomes ``ProviderTimeoutError`` with the text)."""
    stream = backend.stream_chat(request)
    started, first = time.perf_counter(), None
    error: BaseException | None = None
    try:
        async with asyncio.timeout(deadline):
            await stream
            async for chunk in stream:
                if first is None and (chunk.content or chunk.thinking):
                    first = time.perf_counter()
                display.add(chunk.content, chunk.thinking)
    except (KeyboardInterrupt, asyncio.CancelledError):
        display.finish(stats=None, status="interrupted")
        raise
    except TimeoutError:
        exc = ProviderTimeoutError(
            f"The reply from '{request.model}' at {backend.base_url} took longer than the "
            f"deadline of {deadline} s ({len(stream.text)} characters kept). Raise it with "
            "deadline= (in a notebook: %config LLMMagics.deadline = …) or ask for less "
            "(max_tokens).", phase="deadline", url=backend.base_url, partial=stream.text)
        error = exc
        display.finish(stats=None, status="error")
        raise exc from None
    except LLMError as exc:
        error = exc
        # only marked here: the error itself is shown once, by whoever catches it (the cell's
        # error line, a panel's status)
        display.finish(stats=None, status="error")
        raise
    finally:
        await stream.aclose()
        _timed(stream.usage, started, first)
        USAGE.add(model=request.model, server=backend.base_url, stats=stream.usage.as_dict(),
                  seconds=time.perf_counter() - started, error=error)
    return stream


def _timed(usage: Any, sent: float, first: float | None) -> None:
    """The client's timings, on every API: time to first token, and the total when the server
    gave none (see :class:`~gleitzeit_nb.core.backend.Usage`)."""
    if first is not None:
        usage.first_token_seconds = round(first - sent, 4)
    if usage.total_seconds is None:
        usage.total_seconds = round(time.perf_counter() - sent, 4)


@asynccontextmanager
async def ticking(display: Any) -> AsyncIterator[None]:
    """While inside, a live display's waiting line ages and held-back text shows (see _tick)."""
    ticker = asyncio.ensure_future(_tick(display)) if getattr(display, "mode", "") == "live" \
        else None
    try:
        yield
    finally:
        if ticker is not None:
            ticker.cancel()


async def _tick(display: Any) -> None:
    """Age the 'waiting for the model' line; once text flows, show what the throttle held back
    when the stream pauses (a slow token, a stall) instead of waiting for the next chunk."""
    while True:
        await asyncio.sleep(display.min_interval)
        display.tick()


def _finish(req: Request, session: Any, user: dict[str, Any], model: str, reply: Reply) -> Reply:
    if req.remember:
        session.add_turn(user, reply.text, model=model, stats=reply.stats,
                         thinking=reply.thinking, status=reply.status)
    if req.json or req.schema is not None:
        reply.value = parse_reply(reply.text, req.schema,
                                  done_reason=reply.stats.get("finish_reason"))
    return reply


async def _warn_if_blind(conn: Connections, backend: BackendProvider, model: str) -> None:
    """Warn (naming the installed vision models) when ``model`` is known not to see images."""
    others = await conn.capable_models(backend, model, "vision")
    if others is not None:
        hint = (f"models on this server that can: {', '.join(others)}" if others
                else "this server lists no vision model")
        warnings.warn(f"'{model}' has no vision capability and may ignore the image; {hint}.",
                      stacklevel=2)


def _replayed(hit: Any, model: str, display: Any) -> Reply:
    """Show a recorded reply exactly as a live one ends, with its recorded stats."""
    display.add(hit.text, hit.thinking)
    display.finish(stats=hit.stats, status="replayed")
    return Reply(hit.text, thinking=hit.thinking, stats=hit.stats, model=hit.model or model,
                 status="replayed")


class Silent:
    """A display that shows nothing (``chat(..., display=None)``) but keeps the text."""

    model = ""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._thinking: list[str] = []

    text = property(lambda self: "".join(self._parts))
    thinking = property(lambda self: "".join(self._thinking))

    def start(self) -> None:
        pass

    def tick(self) -> None:
        pass

    def add(self, content: str, thinking: str = "") -> None:
        self._parts.append(content)
        if thinking:
            self._thinking.append(thinking)

    def add_tool(self, run: Any) -> None:
        pass

    def update_tool(self, run: Any) -> None:
        pass

    async def approve(self, run: Any) -> bool:
        """Nobody watches a silent display: refused, saying how to be asked."""
        run.error = ("refused: nobody was asked (no display); pass display='auto', or "
                     "approve= a function that decides")
        return False

    def finish(self, **_: Any) -> None:
        pass
