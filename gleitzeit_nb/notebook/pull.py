"""``gleitzeit_nb.pull``: download a model onto the server with progress (the twin of
``%llm_pull``); ``pull_async`` for code that awaits."""

from __future__ import annotations

from ..app import bridge
from ..app.pull import run_pull
from ..core.errors import PullError
from ..core.pull import PullResult, PullTracker
from .progress import progress_mode
from .pull_display import PullDisplay

__all__ = ["pull", "pull_async"]

#: What the bars say when a pull fails, by ``PullError.reason``.
_NOTES = {"disk_full": "the server's disk is full", "no_network": "no network",
          "unknown_model": "no such model", "broken": "connection lost"}


def pull(model: str, *, host: str | None = None, api: str | None = None,
         api_key_env: str | None = None, progress: bool | str | None = "auto") -> PullResult:
    """Download ``model`` onto the server (Ollama's registry) and show the progress.

    ``host`` is a URL or a server name (default: ``%config LLMMagics.host`` / ``OLLAMA_HOST``).
    ``progress``: "auto" (bars in a live notebook, lines on stderr in a terminal, nothing in a
    headless run), "live", "terminal", or False. Interrupting stops the download (the stream is
    closed); the server keeps what it has, and pulling again resumes. Returns a
    :class:`~gleitzeit_nb.core.pull.PullResult`; errors say what failed (an unknown model, a
    full disk, no network, a server that cannot pull) and the fix.
    """
    shown, tracker = PullDisplay(model, progress_mode(progress)), PullTracker(model)
    try:
        result = bridge.run(run_pull(model, host=host, api=api, api_key_env=api_key_env,
                                     tracker=tracker, on_progress=shown.update))
    except BaseException as exc:
        _stopped(shown, tracker, exc, host)
        raise
    shown.close(tracker, "done")
    return result


async def pull_async(model: str, *, host: str | None = None, api: str | None = None,
                     api_key_env: str | None = None,
                     progress: bool | str | None = "auto") -> PullResult:
    """:func:`pull` for code that awaits (same arguments and result)."""
    shown, tracker = PullDisplay(model, progress_mode(progress)), PullTracker(model)
    try:
        result = await run_pull(model, host=host, api=api, api_key_env=api_key_env,
                                tracker=tracker, on_progress=shown.update)
    except BaseException as exc:
        _stopped(shown, tracker, exc, host)
        raise
    shown.close(tracker, "done")
    return result


def _stopped(shown: PullDisplay, tracker: PullTracker, exc: BaseException,
             host: str | None) -> None:
    """Show how the pull ended; an interrupt carries what a notebook's hint needs to resume."""
    if isinstance(exc, PullError):
        shown.close(tracker, "failed", _NOTES.get(exc.reason, ""))
    elif isinstance(exc, Exception):
        shown.close(tracker, "failed")
    else:  # KeyboardInterrupt, CancelledError
        shown.close(tracker, "interrupted")
        exc.pull_interrupted = (tracker.model, host, tracker.completed)  # type: ignore[attr-defined]
