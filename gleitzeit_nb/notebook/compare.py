"""``gleitzeit_nb.compare``: one prompt to several models (or one model on several servers) at
once, streamed side by side; one row per model with the answer and its stats.

Each column is a normal request through :func:`~gleitzeit_nb.app.requests.ask_async` (so record
and replay apply to each), without a session. Requests run concurrently, up to each server's
capacity (its ``capacity_hint``; a server that does not publish one gets all its columns at once
and queues what it cannot run). A failing column shows its error; the others finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from ..app import bridge
from ..app.connections import CONNECTIONS, Connections
from ..app.requests import Request, ask_async, make_request, ticking
from ..app.settings import SETTINGS
from ..core.backend import Usage
from ..core.errors import InvalidParamsError, LLMError
from ..providers.proxies import hide_userinfo
from .columns import ColumnDisplay, ColumnsDisplay

__all__ = ["COLUMNS", "compare", "compare_async", "labels", "parse_targets", "requests_for",
           "result_table"]

#: The result's columns, in order.
COLUMNS = ("model", "host", "answer", "output_tokens", "tokens_per_s", "ttft_s", "load_s",
           "seconds", "error", "status")

Target = tuple[str, str | None]


def parse_targets(models: str | Sequence[Any], *, host: str | None = None,
                  hosts: Sequence[str] | None = None) -> list[Target]:
    """``(model, host)`` per column (host None: the configured server).

    ``models`` is a list (or a comma-separated string) of ``"model"``, ``"model@host"`` (a
    server name from ``%llm_host add`` or a URL) or ``(model, host)`` pairs. A model without
    its own host goes to ``host``, or, with ``hosts=[…]``, to each of those servers (one column
    per server): ``models=["llama3.2"], hosts=["gpu1", "gpu2"]`` compares two servers.
    """
    items = models.split(",") if isinstance(models, str) else list(models)
    targets: list[Target] = []
    for item in items:
        if isinstance(item, (tuple, list)):
            if len(item) != 2:
                raise InvalidParamsError(f"A (model, host) pair has two items, not {item!r}.",
                                         param="models")
            model, own = str(item[0]).strip(), (item[1] or "").strip()
        else:
            model, own = _split_host(str(item))
        if not model:
            raise InvalidParamsError(f"An empty model name in models={models!r}.",
                                     param="models")
        if own:
            targets.append((model, own))
        else:
            targets += [(model, h) for h in hosts] if hosts else [(model, host)]
    if not targets:
        raise InvalidParamsError("Name the models to compare: models=['llama3.2', 'qwen3'].",
                                 param="models")
    return targets


def _split_host(spec: str) -> tuple[str, str]:
    """``"model@host"`` → (model, host); a digest (``model@sha256:…``) is part of the model."""
    model, _, own = spec.strip().partition("@")
    if own.startswith("sha256:"):
        return spec.strip(), ""
    return model.strip(), own.strip()


def compare(prompt: str, models: str | Sequence[Any], *, host: str | None = None,
            hosts: Sequence[str] | None = None, system: str | None = None,
            temperature: float | None = None, max_tokens: int | None = None,
            seed: int | None = None, file: str | None = None, think: bool | str | None = None,
            api: str | None = None, api_key_env: str | None = None,
            timeout: float | None = None, chunk_timeout: float | None = None,
            deadline: float | None = None, num_ctx: int | None = None,
            display: str | None = "auto") -> Any:
    """Ask every model in ``models`` the same ``prompt`` at once; the twin of ``%%llm -m a,b``.

    ``models``, ``host`` and ``hosts``: see :func:`parse_targets` (``["llama3.2",
    "smollm2@local"]``, ``[("llama3.2", "gpu1"), ("llama3.2", "gpu2")]``, or ``hosts=``). The
    other options are those of :func:`~gleitzeit_nb.chat` (defaults from the settings); no
    conversation is kept. ``display``: "auto", "live" (columns updated in place), "final" (one
    table at the end), "terminal" (one block per model, in order) or None.

    Returns a pandas DataFrame (a list of dicts without pandas), one row per column:
    :data:`COLUMNS`. A failed model has its ``error`` and ``status`` "error"; a replayed one
    ``status`` "replayed" (its stats as recorded).
    """
    targets = parse_targets(models, host=host, hosts=hosts)
    table = ColumnsDisplay(labels(targets), mode=display, show_stats=SETTINGS.show_stats)
    reqs = requests_for(prompt, targets, system=system, temperature=temperature,
                        max_tokens=max_tokens, seed=seed, file_path=file, think=think, api=api,
                        api_key_env=api_key_env, timeout=timeout, chunk_timeout=chunk_timeout,
                        deadline=deadline, num_ctx=num_ctx)
    bridge.run(compare_async(reqs, table))
    return result_table(table)


def labels(targets: Sequence[Target], conn: Connections = CONNECTIONS) -> list[tuple[str, str]]:
    """(model, host as shown) per target: the host as named, else the default server's URL;
    never with a password in it."""
    out = []
    for model, host in targets:
        if not host:
            try:
                host = conn.backend(None).base_url
            except LLMError:  # (the column's request will say what is wrong)
                host = "default"
        out.append((model, hide_userinfo(host)))
    return out


def requests_for(prompt: str, targets: Sequence[Target], conn: Connections = CONNECTIONS,
                 **options: Any) -> list[Request]:
    """One request per target, without a session (see :func:`.requests.make_request`).

    Columns asking the same model on the same API (one model on several servers) would share
    a replay key, so each of those is keyed apart by its server's label (``replay_server``).
    """
    reqs = [make_request(prompt, model=model, host=host, remember=False, **options)
            for model, host in targets]
    seen = [(req.model, _api(req, conn)) for req in reqs]
    for req, same, (_, label) in zip(reqs, seen, labels(targets, conn)):
        if seen.count(same) > 1:
            req.replay_server = label
    return reqs


def _api(req: Request, conn: Connections) -> str | None:
    try:
        return req.backend(conn).kind
    except LLMError:
        return None


async def compare_async(reqs: Sequence[Request], table: ColumnsDisplay,
                        conn: Connections = CONNECTIONS) -> None:
    """Run ``reqs`` concurrently (each server's capacity), each into its column of ``table``.

    An interrupt or cancellation stops every request; what arrived stays in the columns.
    """
    table.show()
    tasks: list[asyncio.Future[None]] = []
    try:
        limits = await _limits(reqs, conn)
        async with ticking(table):
            tasks = [asyncio.ensure_future(_column(req, col, limits.get(i), conn))
                     for i, (req, col) in enumerate(zip(reqs, table.columns))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        table.close()
    errors = [t.exception() for t in tasks if not t.cancelled()]  # (each retrieved)
    # A KeyboardInterrupt in a column already left the loop and stopped the caller; raised
    # again here, it would escape the loop a second time, during (or after) the cleanup.
    failed = next((e for e in errors if e and not isinstance(e, KeyboardInterrupt)), None)
    if failed is not None:
        raise failed


async def _limits(reqs: Sequence[Request], conn: Connections) -> dict[int, asyncio.Semaphore]:
    """A semaphore per server, shared by its columns: its published slots, else all of them."""
    groups: dict[int, tuple[Any, list[int]]] = {}
    for i, req in enumerate(reqs):
        try:
            backend = req.backend(conn)
        except LLMError:
            continue  # the column fails with this error when it runs
        groups.setdefault(id(backend), (backend, []))[1].append(i)
    hints = await asyncio.gather(*(b.capacity_hint() for b, _ in groups.values()))
    limits: dict[int, asyncio.Semaphore] = {}
    for (_, members), hint in zip(groups.values(), hints):
        sem = asyncio.Semaphore(max(1, hint or len(members)))
        limits.update((i, sem) for i in members)
    return limits


async def _column(req: Request, col: ColumnDisplay, limit: asyncio.Semaphore | None,
                  conn: Connections) -> None:
    async with limit or contextlib.nullcontext():
        started = time.perf_counter()
        try:
            await ask_async(req, col, conn)
        except LLMError as exc:
            col.fail(f"{type(exc).__name__}: {exc}")
        finally:
            col.seconds = round(time.perf_counter() - started, 4)


def result_table(table: ColumnsDisplay) -> Any:
    """A row per column (:data:`COLUMNS`): a DataFrame, or a list of dicts without pandas."""
    rows = [_row(col) for col in table.columns]
    try:
        import pandas as pd
    except ImportError:
        return rows
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"output_tokens": "Int64", "tokens_per_s": "float64", "ttft_s": "float64",
                         "load_s": "float64", "seconds": "float64"})


def _row(col: ColumnDisplay) -> dict[str, Any]:
    usage = Usage.from_dict(dict(col.stats or {}))
    rate = usage.tokens_per_second
    return {"model": col.label, "host": col.host, "answer": col.text,
            "output_tokens": usage.output_tokens,
            "tokens_per_s": round(rate, 2) if rate is not None else None,
            "ttft_s": usage.first_token_seconds, "load_s": usage.load_seconds,
            "seconds": usage.total_seconds if usage.total_seconds is not None else col.seconds,
            "error": col.note if col.status == "error" else None, "status": col.status}
