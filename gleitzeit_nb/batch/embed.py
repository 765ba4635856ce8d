"""``embed_texts``: embeddings for many texts, batched, at the servers' capacity."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from .. import replay
from ..core import Task, TaskResult, TaskStatus
from ..core.errors import InvalidParamsError, LLMError
from ..replay.errors import ReplayMissError
from ..app.usage import USAGE
from .limiter import dispatch
from .progress import Progress, progress_mode
from ..app.connections import CONNECTIONS
from ..app.settings import SETTINGS
from ..core.provider import BackendProvider
from .runner import annotate, make_engine, remember
from .servers import Servers, capacity

logger = logging.getLogger(__name__)


class _Embedding:
    def __init__(self, texts: list[str], model: str | None, batch_size: int, servers: Servers,
                 concurrency: int | None, progress: bool | str | None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidParamsError(f"batch_size must be a whole number >= 1, not {batch_size!r}.",
                                     param="batch_size")
        self.texts, self.model, self.batch_size = texts, model, batch_size
        self.servers, self.concurrency, self.progress_arg = servers, concurrency, progress
        self.chunks = [(start, texts[start:start + batch_size])
                       for start in range(0, len(texts), batch_size)]
        self.vectors: list[list[list[float]] | None] = [None] * len(self.chunks)
        self.progress = Progress(len(texts), None, unit="texts")

    async def run(self) -> Any:
        if not self.chunks:
            return self.array()
        providers = self.servers.backends()
        engine = make_engine(providers)
        limit = await capacity(providers, self.concurrency)
        backend = providers[0]
        urls = {p.provider_id: p.base_url for p in providers}
        self.model = backend.canonical_model(self.model or await _default_model(backend))
        logger.info("embedding %d texts in %d requests with %s: %s", len(self.texts),
                    len(self.chunks), self.model, limit.describe())
        self.progress = Progress(len(self.texts), progress_mode(self.progress_arg), unit="texts")
        self.progress.start()
        started, status = time.monotonic(), "failed"

        async def job(k: int) -> TaskResult:
            texts = self.chunks[k][1]
            keys: list[str] = []
            if replayer.active:
                canonical = [replay.embed_request_key(backend.kind, self.model, t) for t in texts]
                keys = [replayer.key(c) for c in canonical]
                try:
                    recorded = [replayer.lookup(c, key) for c, key in zip(canonical, keys)]
                except ReplayMissError as exc:  # replay mode: this chunk's error
                    return TaskResult(task_id=f"embed-{k}", status=TaskStatus.FAILED, error=exc)
                if all(r is not None for r in recorded):
                    USAGE.add(model=self.model, server=backend.base_url, kind="embed",
                              replayed=True)
                    return TaskResult(task_id=f"embed-{k}", status=TaskStatus.COMPLETED,
                                      provider_id="replay", result={
                                          "embeddings": [json.loads(r.text) for r in recorded]})
            params = {"model": self.model, "input": texts}
            res = await engine.execute_task(Task(id=f"embed-{k}", method="embed", params=params))
            usage = {"input_tokens": res.result.get("input_tokens")} if res.ok else {}
            USAGE.add(model=self.model, server=urls.get(res.provider_id, backend.base_url),
                      kind="embed", stats=usage, seconds=res.duration or 0.0,
                      error=None if res.ok else res.error)
            if keys and res.ok and len(res.result["embeddings"]) == len(texts):
                vectors = [json.dumps(v) for v in res.result["embeddings"]]
                # one write a chunk, off the loop: other chunks keep streaming meanwhile
                await asyncio.to_thread(replayer.save_many, zip(keys, vectors, canonical),
                                        model=self.model)
            return res

        replayer = replay.current()

        try:
            await dispatch(len(self.chunks), job, limit, self._handle,
                           work=lambda r: float(len(r.result["embeddings"])) if r.ok else 0.0)
            status = "done"
        except BaseException as exc:
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
                status = "interrupted"
            exc.partial = self.array()  # type: ignore[attr-defined]
            raise
        finally:
            self.progress.close(status)
            logger.info("embedding %s after %.1f s: %s", status, time.monotonic() - started,
                        limit.describe())
        return self.array()

    def _handle(self, k: int, res: TaskResult) -> None:
        start, chunk = self.chunks[k]
        label = f"{start}–{start + len(chunk) - 1}" if len(chunk) > 1 else str(start)
        if not res.ok:
            self.progress.add(len(chunk), errors=len(chunk))
            assert res.error is not None
            raise annotate(res.error, label, "texts")
        vectors = res.result["embeddings"]
        if len(vectors) != len(chunk):
            raise annotate(LLMError(f"The server returned {len(vectors)} embeddings for "
                                    f"{len(chunk)} texts."), label, "texts")
        self.vectors[k] = vectors
        self.progress.add(len(chunk))

    def array(self) -> Any:
        """The embeddings so far as one array; rows not embedded (yet) are NaN."""
        import numpy as np

        dim = next((len(v[0]) for v in self.vectors if v), 0)
        out = np.full((len(self.texts), dim), np.nan, dtype=np.float32 if dim else np.float64)
        for (start, _), vectors in zip(self.chunks, self.vectors):
            if vectors:
                out[start:start + len(vectors)] = np.asarray(vectors, dtype=out.dtype)
        remember(out)
        return out


async def _default_model(backend: BackendProvider) -> str:
    """``embed_model``; else the configured chat ``model`` unless the server says it cannot
    embed (so replay works offline with only ``model`` set); else an embedding model."""
    if SETTINGS.embed_model:
        return SETTINGS.embed_model
    if SETTINGS.model:
        others = await CONNECTIONS.capable_models(backend, SETTINGS.model, "embedding")
        if others is None:
            return SETTINGS.model
    return await CONNECTIONS.pick_model(backend, "embedding")


def _texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    try:
        values = list(texts)
    except TypeError:
        raise InvalidParamsError(f"texts must be a list of str or a pandas Series, not "
                                 f"{type(texts).__name__}.", param="texts") from None
    bad = next((i for i, t in enumerate(values) if not isinstance(t, str)), None)
    if bad is not None:
        raise InvalidParamsError(f"texts[{bad}] is a {type(values[bad]).__name__}, not a str; "
                                 "convert the values first (e.g. series.astype(str)).",
                                 param="texts")
    return values


def _check_numpy() -> None:
    try:
        import numpy  # noqa: F401
    except ImportError:
        raise ImportError("embed() returns a NumPy array: install NumPy (pip install numpy).") \
            from None


def embed_texts(texts: Any, model: str | None = None, *, batch_size: int = 32,
                host: str | None = None, hosts: Sequence[str] | None = None,
                api: str | None = None, api_key_env: str | None = None,
                concurrency: int | None = None, progress: bool | str | None = "auto",
                timeout: float | None = None) -> Any:
    """Embed ``texts`` (a list of str or a Series): a float32 array, one row per text, in order.

    Texts go to the server ``batch_size`` at a time, with requests in flight chosen as in
    ``gleitzeit_nb.batch``. ``model=None``: ``%config LLMMagics.embed_model``, else
    ``LLMMagics.model`` unless the server says it cannot embed, else a model with the
    "embedding" capability. ``host`` (or ``hosts``), ``api``, ``api_key_env`` and ``timeout``
    left out come from the settings too. A failed request raises its error (the positions of
    its texts in the message, "Embedding texts 0–31: …"); on an interrupt or error the vectors
    so far (rows of texts not embedded NaN) are on the exception as ``.partial`` and in
    ``gleitzeit_nb.batch.last_result``.
    """
    from ..app import bridge

    job = _job(**_arguments(locals()))
    try:
        return bridge.run(job.run())
    except KeyboardInterrupt as exc:
        if getattr(exc, "partial", None) is None:
            exc.partial = job.array()  # type: ignore[attr-defined]
        raise


async def embed_texts_async(*args: Any, **kwargs: Any) -> Any:
    """``embed_texts`` for async code (same arguments and result)."""
    bound = inspect.signature(embed_texts).bind(*args, **kwargs)
    bound.apply_defaults()
    return await _job(**bound.arguments).run()


embed_texts_async.__signature__ = inspect.signature(embed_texts)  # type: ignore[attr-defined]


def _arguments(given: dict[str, Any]) -> dict[str, Any]:
    return {name: given[name] for name in inspect.signature(embed_texts).parameters}


def _job(texts: Any, model: str | None, batch_size: int, concurrency: int | None,
         progress: bool | str | None, **where: Any) -> _Embedding:
    _check_numpy()
    return _Embedding(_texts(texts), model, batch_size, Servers(**where), concurrency, progress)
