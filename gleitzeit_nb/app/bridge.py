"""Run provider coroutines from synchronous code: notebook cells, plain IPython, scripts.

In a Jupyter kernel the cell already runs inside the kernel's event loop, so ``asyncio.run``
fails; nest-asyncio2 makes that loop re-entrant and the coroutine runs on it. Where no loop
runs (terminal IPython, scripts) one private loop is kept for the process, so the provider's
pooled connections survive from one call to the next.

On an interrupt (or any exception) the task is cancelled and its cleanup awaited before the
exception goes on: with nest-asyncio an interrupted coroutine otherwise stays pending in the
kernel's loop and keeps reading the stream.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)

_private_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()

#: Seconds allowed for a cancelled request to close its connection before giving up on it.
CLEANUP_TIMEOUT = 5.0


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code and return its result."""
    loop = current_loop()
    task = loop.create_task(coro)
    with _interrupt_raises():
        try:
            return loop.run_until_complete(task)
        except BaseException as exc:
            if not task.done():
                task.cancel()
                _await_cleanup(loop, task)
            if isinstance(exc, KeyboardInterrupt):
                exc.requests_cancelled = True  # type: ignore[attr-defined]  # for the short message
            raise


@contextmanager
def _interrupt_raises() -> Iterator[None]:
    """While a request runs, SIGINT (a kernel interrupt, Ctrl-C) raises ``KeyboardInterrupt``.

    In a cell that uses ``await`` ipykernel swaps in a handler that only cancels the cell's
    task, which cannot happen while this synchronous call drives the loop: the request would
    run to its end and the cell would never finish.
    """
    previous = (signal.getsignal(signal.SIGINT)
                if threading.current_thread() is threading.main_thread() else None)
    if previous is None or previous is signal.default_int_handler:  # (None: set outside Python)
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def current_loop() -> asyncio.AbstractEventLoop:
    """The loop to run on: the kernel's running loop (made re-entrant), else a private one."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _own_loop()
    if not getattr(loop, "_nest_patched", False):
        import nest_asyncio2

        nest_asyncio2.apply(loop)
    return loop


def _own_loop() -> asyncio.AbstractEventLoop:
    global _private_loop
    with _lock:
        if _private_loop is None or _private_loop.is_closed():
            _private_loop = asyncio.new_event_loop()
        return _private_loop


def _await_cleanup(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
    """Let a cancelled task run its ``finally`` blocks (closing the HTTP response)."""
    try:
        loop.run_until_complete(asyncio.wait([task], timeout=CLEANUP_TIMEOUT))
    except BaseException:  # a second interrupt while cleaning up: give up on the cleanup
        logger.warning("cleanup of an interrupted request did not finish", exc_info=True)
        return
    if not task.done():
        logger.warning("an interrupted request did not stop within %s s", CLEANUP_TIMEOUT)
    elif not task.cancelled() and task.exception() is not None:
        task.exception()  # retrieved, so asyncio does not log it as never retrieved
