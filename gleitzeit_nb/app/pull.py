"""Pull a model onto a server from any front end: the backend's progress events summed up by a
:class:`~gleitzeit_nb.core.pull.PullTracker`, then the cached model list refreshed, so the new
model shows in ``%llm_models``, the panels' lists and model choice at once.

IPython-free; what the user sees is in :mod:`gleitzeit_nb.notebook.pull`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ..core.errors import LLMError, PullError
from ..core.pull import PullLayer, PullResult, PullTracker
from .connections import CONNECTIONS, Connections

__all__ = ["run_pull", "ProgressCallback"]

logger = logging.getLogger(__name__)

#: Called after every event with the tracker and the layer it was about (None: a phase).
ProgressCallback = Callable[[PullTracker, "PullLayer | None"], None]


async def run_pull(model: str, *, host: str | None = None, api: str | None = None,
                   api_key_env: str | None = None, tracker: PullTracker | None = None,
                   on_progress: ProgressCallback | None = None,
                   connections: Connections = CONNECTIONS) -> PullResult:
    """Download ``model`` onto ``host`` (a URL or server name; None: the configured one).

    Cancelling (an interrupt) closes the stream, which stops the download; the server keeps
    what it has and the next pull resumes. ``tracker`` (made here when None) holds the
    progress so far, also after a failure.
    """
    backend = connections.backend(host, api=api, api_key_env=api_key_env)
    tracker = tracker if tracker is not None else PullTracker(model)
    events: Any = backend.pull(model)  # a server that cannot pull raises here
    async with contextlib.aclosing(events):
        async for event in events:
            layer = tracker.add(event)
            if on_progress is not None:
                on_progress(tracker, layer)
    if not tracker.finished:
        raise PullError(f"The pull of '{model}' from {backend.base_url} ended before it "
                        "finished. Pull again: it resumes where it stopped.", model=model,
                        reason="broken", url=backend.base_url)
    try:
        await connections.models(backend, max_age=0)
    except LLMError as exc:  # the pull worked; the list refreshes on its next use
        logger.warning("could not refresh the models of %s: %s", backend.base_url, exc)
    return tracker.result(backend.base_url)
