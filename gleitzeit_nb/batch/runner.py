"""``run_batch``: the same prompt over many rows, through the execution engine, at the server's capacity."""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .. import replay
from ..replay.errors import ReplayMissError
from ..core import LLM_PROTOCOL_V1, ExecutionEngine, ProtocolProviderRegistry, Task, TaskResult
from ..core.errors import (CapabilityError, ContextLengthError, InvalidParamsError, LLMError,
                           ModelNotFoundError, ProviderTimeoutError, ProviderUnavailableError,
                           StructuredOutputError)
from ..app.connections import CONNECTIONS
from ..app.fit import check_fit
from ..app.settings import SETTINGS
from ..app.requests import check_format_and_tools
from ..app.usage import USAGE
from ..app.tool_runs import Approver
from ..core.engine import TaskStatus
from ..core.provider import BackendProvider
from ..core.requests import chat_request
from .items import Rows, build_rows
from .limiter import Limit, dispatch
from .servers import Servers, capacity
from .progress import Progress, progress_mode
from .results import RowOutcome, check_schema_fields, shape
from .tool_rows import batch_tool_options, run_tool_row

logger = logging.getLogger(__name__)

ON_ERROR = ("collect", "raise", "skip")
#: Errors that would fail every row alike: the batch stops at once whatever ``on_error`` says.
FATAL = (ModelNotFoundError, ProviderUnavailableError, InvalidParamsError, CapabilityError)


def remember(result: Any) -> None:
    """Keep ``result`` as ``gleitzeit_nb.batch.last_result``."""
    package = sys.modules.get(__package__ or "")
    if package is not None:
        package.last_result = result


def annotate(exc: BaseException, label: Any, kind: str) -> BaseException:
    """Put the row (for embeddings: the texts' positions) into the error's message (same type,
    same attributes) and ``.row``."""
    if getattr(exc, "row", None) is None:
        texts = "texts" if "–" in str(label) else "text"  # a chunk "0–31", or one text
        where = {"list": f"Batch row {label}", "texts": f"Embedding {texts} {label}"}.get(
            kind, f"Batch row {label!r}")
        message = f"{where}: {exc}"
        exc.args = (message,)
        if isinstance(exc, LLMError):
            exc.message = message
        exc.row = label  # type: ignore[attr-defined]
    return exc


def make_engine(providers: Sequence[Any]) -> ExecutionEngine:
    registry = ProtocolProviderRegistry()
    registry.register_protocol(LLM_PROTOCOL_V1)
    for p in providers:
        registry.register_provider(provider_id=p.provider_id, protocol_id="llm/v1",
                                   provider_instance=p)
    return ExecutionEngine(registry)


class Batch:
    """One batch run: its rows, settings, and the outcome of every row as it finishes."""

    def __init__(self, rows: Rows, *, model: str | None, schema: Any, images: bool,
                 on_error: str, options: dict[str, Any], servers: Servers,
                 deadline: float | None, concurrency: int | None,
                 progress: bool | str | None, max_image_edge: int | None,
                 tools: Sequence[Any] | None = None, approve: Any = None,
                 max_tool_rounds: int | None = None) -> None:
        if on_error not in ON_ERROR:
            raise InvalidParamsError(f"on_error must be one of {', '.join(ON_ERROR)}, "
                                     f"not {on_error!r}.", param="on_error")
        self.rows = rows
        self.model = model
        self.schema = schema
        self.images = images
        self.on_error = on_error
        self.options = {k: v for k, v in options.items() if v is not None}
        self.servers, self.deadline = servers, deadline
        self.concurrency = concurrency
        self.progress_arg = progress
        self.max_image_edge = max_image_edge
        self.tools, self.approve, self.max_tool_rounds = batch_tool_options(
            tools, approve, max_tool_rounds)
        self.outcomes: list[RowOutcome | None] = [None] * len(rows)
        # row -> (replay key, canonical request), while the row is live
        self._keys: dict[int, tuple[str, dict[str, Any]]] = {}
        for i, exc in rows.errors.items():
            self.outcomes[i] = RowOutcome(error=exc)
        self.limit: Limit | None = None
        self.engine: ExecutionEngine | None = None
        self.progress = Progress(len(rows), None)
        self.started = time.monotonic()
        self.aborted = False
        check_format_and_tools(self.tools, schema is not None)
        if schema is not None:
            from ..app.structured import format_for

            self.options["format"] = format_for(schema)
            if rows.kind == "frame":
                check_schema_fields(schema, tools=bool(self.tools))

    # -- running -------------------------------------------------------------------------------
    async def run(self) -> Any:
        """Run every row; the shaped output (also kept as ``gleitzeit_nb.batch.last_result``)."""
        if self.on_error == "raise" and self.rows.errors:  # before any request is sent
            first = min(self.rows.errors)
            raise annotate(self.rows.errors[first], self.rows.labels[first], self.rows.kind)
        todo = [i for i, o in enumerate(self.outcomes) if o is None]
        if not todo:
            return self._finish()
        providers = self.servers.backends()
        self.backend = providers[0]
        self._urls = {p.provider_id: p.base_url for p in providers}
        self.engine = make_engine(providers)
        self.limit = await capacity(providers, self.concurrency)
        if self.model is None:
            capability = "vision" if self.images else "completion"
            self.model = await CONNECTIONS.pick_model(providers[0], capability)
        self.model = self.backend.canonical_model(self.model)
        if replay.current().mode != "replay":  # once for all rows (each row's check is cached)
            await CONNECTIONS.context_size(self.backend, self.model, self.options.get("num_ctx"))
        logger.info("batch of %d rows with %s on %s: %s", len(todo), self.model,
                    ", ".join(p.base_url for p in providers), self.limit.describe())
        self.progress = Progress(len(self.rows), progress_mode(self.progress_arg))
        self.started = time.monotonic()
        self.progress.start()
        if self.rows.errors:
            self.progress.add(len(self.rows.errors), errors=len(self.rows.errors))
        status = "failed"
        try:
            await dispatch(len(todo), lambda k: self._job(todo[k]), self.limit,
                           lambda k, res: self._handle(todo[k], res), work=_work)
            status = "done"
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, (asyncio.CancelledError,
                                                         KeyboardInterrupt)) else "failed"
            self.aborted = True
            exc.partial = self._finish()  # type: ignore[attr-defined]
            raise
        finally:
            self.progress.close(status)
            if self.limit.source == "learned":
                logger.info("batch %s after %.1f s: %s", status,
                            time.monotonic() - self.started, self.limit.describe())
        return self._finish()

    async def _job(self, i: int) -> TaskResult:
        assert self.engine is not None
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": self.rows.prompts[i]}],
            **self.options,
        }
        prepared: list[Any] = []
        if self.images:
            from ..core.image_prep import prepare_image

            assert self.rows.images is not None
            try:  # Pillow work off the event loop, so other rows keep streaming meanwhile
                prepared = [await asyncio.to_thread(prepare_image, self.rows.images[i],
                                                    max_edge=self.max_image_edge)]
            except (LLMError, ValueError, TypeError, OSError) as exc:
                return TaskResult(task_id=f"row-{i}", status=TaskStatus.FAILED, error=exc)
            params["images"] = [img.b64 for img in prepared]
        if self.tools:  # a tool conversation (replayed per round by the pipeline)
            return await self._within_deadline(run_tool_row(self, i, prepared), f"row-{i}")
        method = "vision" if self.images else "chat"
        replayer = replay.current()
        if replayer.active:
            try:
                hit = self._lookup(i, replayer, params)
            except ReplayMissError as exc:  # replay mode: this row's error, not the batch's
                return TaskResult(task_id=f"row-{i}", status=TaskStatus.FAILED, error=exc)
            if hit is not None:
                now = time.time()
                return TaskResult(task_id=f"row-{i}", status=TaskStatus.COMPLETED, started_at=now,
                                  finished_at=now, provider_id="replay", result={
                                      "response": hit.text, "thinking": hit.thinking,
                                      "usage": hit.stats or {}, "model": hit.model,
                                      "finish_reason": (hit.stats or {}).get("finish_reason")})
        try:
            await self._check_fit(params)
        except ContextLengthError as exc:  # this row's error: the others may fit
            return TaskResult(task_id=f"row-{i}", status=TaskStatus.FAILED, error=exc)
        task = Task(id=f"row-{i}", method=method, params=params)
        return await self._within_deadline(self.engine.execute_task(task), task.id)

    async def _within_deadline(self, work: Any, task_id: str = "") -> TaskResult:
        """``work`` (a row's coroutine) bounded by ``deadline``; running over fails the row."""
        try:
            async with asyncio.timeout(self.deadline):
                return await work
        except TimeoutError:  # this row's error: the others go on
            return TaskResult(task_id=task_id, status=TaskStatus.FAILED, error=ProviderTimeoutError(
                f"The reply took longer than the deadline of {self.deadline} s. Raise it with "
                "deadline= (in a notebook: %config LLMMagics.deadline = …) or ask for less "
                "(max_tokens).", phase="deadline"))

    async def _check_fit(self, params: dict[str, Any]) -> None:
        """Refuse a row whose prompt cannot fit the model's context (see :mod:`..app.fit`)."""
        request = chat_request("chat", params)  # (images are counted, not encoded again)
        request.messages[-1]["images"] = params.get("images") or []
        await check_fit(CONNECTIONS, self.backend, request, warn=False)

    def _lookup(self, i: int, replayer: Any, params: dict[str, Any]) -> Any:
        """The recorded reply of row ``i`` (keyed like the chat pipeline), or None to go live."""
        request = chat_request("vision" if self.images else "chat", params)
        request.model = self.backend.canonical_model(request.model)
        canonical = replay.chat_request_key(self.backend.kind, request)
        key, hit = replayer.find(canonical)
        self._keys[i] = (key, canonical)
        return hit

    def _handle(self, i: int, res: TaskResult) -> None:
        if res.ok:
            reply = res.result
            value, error = reply.get("reply", reply["response"]), None
            if self.schema is not None:
                from ..app.structured import parse_reply

                try:
                    value = parse_reply(value, self.schema,
                                        done_reason=reply.get("finish_reason"))
                except StructuredOutputError as exc:
                    value, error = None, exc
            outcome = RowOutcome(value, error, reply["usage"].get("output_tokens"), res.duration,
                                 res.provider_id, reply.get("tool_calls"))
            key, canonical = self._keys.pop(i, (None, None))
            if "tool_calls" not in reply:  # (a tool row's rounds were counted as they went)
                USAGE.add(model=reply.get("model") or self.model or "", stats=reply["usage"],
                          server=self._urls.get(res.provider_id, self.backend.base_url),
                          replayed=res.provider_id == "replay", seconds=res.duration)
            if key is not None and error is None and res.provider_id != "replay":
                replay.current().save(key, text=reply["response"],
                                      thinking=reply.get("thinking") or "", stats=reply["usage"],
                                      model=reply.get("model") or self.model, status="done",
                                      request=canonical)
        else:
            outcome = RowOutcome(None, res.error, None, res.duration or None, res.provider_id)
            if res.provider_id in self._urls:  # a request was made and failed
                USAGE.add(model=self.model or "", server=self._urls[res.provider_id],
                          seconds=res.duration or 0.0, error=res.error)
        self.outcomes[i] = outcome
        self.progress.add(errors=1 if outcome.error is not None else 0)
        if outcome.error is not None:
            logger.debug("row %s failed: %s", self.rows.labels[i], outcome.error)
            if self.on_error == "raise" or isinstance(outcome.error, FATAL):
                raise annotate(outcome.error, self.rows.labels[i], self.rows.kind)

    def _finish(self) -> Any:
        limit = self.limit
        info = {"concurrency": limit.limit if limit else None,
                "concurrency_source": limit.source if limit else None,
                "elapsed": time.monotonic() - self.started, "aborted": self.aborted,
                "model": self.model}
        out = shape(self.rows, self.outcomes, skip=self.on_error == "skip", schema=self.schema,
                    info=info, tools=bool(self.tools))
        remember(out)
        return out


def _work(res: TaskResult) -> float:
    if not res.ok:
        return 0.0
    return float(res.result["usage"].get("output_tokens") or 1)


def _batch(items: Any, prompt: str | None, *, variables: Mapping[str, Any] | None,
           images: bool, **kw: Any) -> Batch:
    rows = build_rows(items, prompt, images=images, variables=variables)
    s = SETTINGS  # what a call leaves out comes from the settings (%config LLMMagics)
    for name in ("system", "temperature", "max_tokens", "num_ctx", "max_image_edge", "deadline"):
        if kw[name] is None:
            kw[name] = getattr(s, name)
    kw["model"] = kw["model"] or s.model_for(images)
    options = {k: kw.pop(k) for k in ("system", "temperature", "max_tokens", "seed", "num_ctx")}
    servers = Servers(**{k: kw.pop(k) for k in ("host", "hosts", "api", "api_key_env",
                                                  "timeout", "chunk_timeout")})
    return Batch(rows, images=images, options=options, servers=servers, **kw)


def run_batch(items: Any, prompt: str | None = None, *, model: str | None = None,
              concurrency: int | None = None, schema: Any = None, images: bool = False,
              on_error: str = "collect", system: str | None = None,
              temperature: float | None = None, max_tokens: int | None = None,
              seed: int | None = None, num_ctx: int | None = None, host: str | None = None,
              hosts: Sequence[str] | None = None, api: str | None = None,
              api_key_env: str | None = None, timeout: float | None = None,
              chunk_timeout: float | None = None, deadline: float | None = None,
              progress: bool | str | None = "auto", max_image_edge: int | None = None,
              variables: Mapping[str, Any] | None = None, tools: Sequence[Any] | None = None,
              approve: str | Approver | None = None, max_tool_rounds: int | None = None) -> Any:
    """Ask the same question of many items, as many at once as the server can take.

    ``items``: a list of prompts; a list with ``prompt`` a template (``{item}``/``{x}`` for the
    value, ``{field}`` for dict items); a pandas Series (``{x}``, ``{item}`` or the Series' name);
    a DataFrame with ``prompt`` using ``{column}`` fields; or with ``images=True`` a list of
    images (paths, PIL images, arrays) or a glob like ``"photos/*.jpg"`` (sorted), ``prompt``
    being the question asked of each. ``variables`` supplies further template names.

    Returns, in input order: for a list a ``BatchResult`` (a list of replies, or validated
    objects with ``schema``; failed rows None, their errors in ``.errors``, per-row ``.stats``);
    for a Series a Series with the same index (errors in ``.attrs["errors"]``, by index label,
    or by position where labels repeat); for a DataFrame a DataFrame with the same index
    holding ``answer`` (with ``schema``: one typed column per field), ``error``,
    ``output_tokens`` and ``seconds``. A row whose template field is missing (NaN, None) is a failed row.

    ``on_error``: "collect" keeps going and records each failed row; "raise" stops at the first
    failure and raises it (its type, the row in the message and ``.row``); "skip" leaves failed
    rows out. A missing model, an unreachable server or invalid parameters stop the batch in
    any mode. ``concurrency=None`` uses the servers' capacity: the slots a server publishes
    (llama.cpp; a local Ollama in its environment), else learned while running (see
    ``result.concurrency_source``). ``hosts`` (URLs or server names) spreads the rows over
    several servers of one API by their capacity. Arguments left out (model, host, api,
    api_key_env, system, temperature, max_tokens, num_ctx, timeouts, ``deadline`` for each row,
    max_image_edge) come from the settings (``%config LLMMagics``).

    ``tools`` are functions the model may call for each row (the tool loop of ``chat()``,
    ``max_tool_rounds`` rounds at most); the answer is then a ``Reply`` with the row's calls
    on ``.tool_calls`` (for a list also in ``.stats[i]["tool_calls"]``; a DataFrame gets a
    ``tool_calls`` column). ``approve``: "never" (run every call) or a function given the
    call that returns True to run it; "always" is an error (nobody clicks for every row).
    ``deadline`` bounds a row's whole conversation.

    An interrupt (or any early stop) cancels every request in flight; the rows finished so far
    are on the exception as ``.partial`` and kept as ``gleitzeit_nb.batch.last_result``.
    """
    from ..app import bridge

    batch = _batch(**_arguments(locals()))
    try:
        return bridge.run(batch.run())
    except KeyboardInterrupt as exc:
        # The bridge has cancelled the run and awaited its cleanup; keep what finished.
        if getattr(exc, "partial", None) is None:
            batch.aborted = True
            exc.partial = batch._finish()  # type: ignore[attr-defined]
        raise


def _arguments(given: dict[str, Any]) -> dict[str, Any]:
    """``run_batch``'s arguments by name (so the async twin cannot drift from it)."""
    return {name: given[name] for name in inspect.signature(run_batch).parameters}


async def run_batch_async(*args: Any, **kwargs: Any) -> Any:
    """``run_batch`` for async code (same arguments and result)."""
    bound = inspect.signature(run_batch).bind(*args, **kwargs)
    bound.apply_defaults()
    return await _batch(**bound.arguments).run()


run_batch_async.__signature__ = inspect.signature(run_batch)  # type: ignore[attr-defined]
