"""Let widget messages (a button click) reach the kernel while a cell is still running.

ipykernel 7 holds every message of the main shell behind one lock while a cell runs. 7.4
lets comm messages past that lock for a cell that *awaits*, but not for a synchronous cell
that drives the loop through nest-asyncio (``bridge.run``, the magics): ipykernel runs all
its shell tasks in one shared ``contextvars.Context``, which the running cell has entered,
so nest-asyncio2 defers each of them until the nested run ends: the click would arrive
after the cell it is meant to end.

``comms_while_waiting`` therefore filters the stream that carries the main shell's messages
while someone waits (refcounted; the kernel is untouched otherwise): a ``comm_*`` message
that arrives while the main shell is busy is dispatched at once, in its own context, as
ipykernel 7.4 does for awaiting cells; everything else (a queued ``execute_request``) goes
to the kernel's own handler unchanged, where it waits for the running cell's lock and runs
after it, in order. An idle kernel handles comm messages itself.
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["comms_while_waiting", "current_kernel", "supported"]

logger = logging.getLogger(__name__)

COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})


def current_kernel() -> Any | None:
    """The ipykernel ``Kernel`` of this process, or None (plain IPython, a script)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return getattr(get_ipython(), "kernel", None)


def _main_stream(kernel: Any) -> Any | None:
    """The ZMQStream on which the main thread receives its shell messages (ipykernel 7)."""
    thread = getattr(kernel, "shell_channel_thread", None)
    if thread is not None:  # with subshells: an inproc pair from the shell-channel thread
        return thread.manager.get_shell_channel_to_subshell_pair(None).to_stream
    return getattr(kernel, "shell_stream", None)


def supported(kernel: Any | None = None) -> bool:
    """Whether comm messages can be let through on this kernel (ipykernel 7.x, main thread)."""
    kernel = current_kernel() if kernel is None else kernel
    if kernel is None or not hasattr(kernel, "_main_asyncio_lock"):
        return False  # not a kernel, or ipykernel 6 (another message loop entirely)
    try:
        stream = _main_stream(kernel)
    except Exception:
        return False
    return (stream is not None and callable(getattr(stream, "_recv_callback", None))
            and hasattr(kernel, "_shell_context")
            and threading.current_thread() is threading.main_thread())


class _Filter:
    """Installed on the main shell stream while at least one wait is active."""

    def __init__(self, kernel: Any, stream: Any) -> None:
        self.kernel = kernel
        self.stream = stream
        self.original = stream._recv_callback
        self.users = 0

    def on_recv(self, frames: list[Any]) -> Any:
        kernel = self.kernel
        if kernel._main_asyncio_lock.locked():  # a cell (or other request) is running
            try:
                idents, rest = kernel.session.feed_identities(frames, copy=False)
                header = kernel.session.deserialize(rest, content=False, copy=False)["header"]
                if header.get("msg_type") in COMM_TYPES:
                    msg = kernel.session.deserialize(rest, content=True, copy=False)
                    return self._dispatch(idents, msg)  # (ZMQStream runs it as a task)
            except Exception:  # unreadable: the kernel's own handler reports it
                logger.debug("could not read a shell message; passed on", exc_info=True)
        return self.original(frames)

    async def _dispatch(self, idents: list[bytes], msg: dict[str, Any]) -> None:
        """Run the comm handler now (the task's own context holds the comm's parent)."""
        kernel = self.kernel
        saved = kernel._shell_context  # the running cell's: where user threads print
        kernel.set_parent(idents, msg, channel="shell")
        try:
            handler = kernel.shell_handlers.get(msg["header"]["msg_type"])
            if handler is not None:
                result = handler(kernel.shell_stream, idents, msg)
                if inspect.isawaitable(result):
                    await result
        except Exception:
            logger.error("a widget message failed while a cell was running", exc_info=True)
        finally:
            for out in (sys.stdout, sys.stderr):
                if out is not None:
                    out.flush()
            kernel._shell_context = saved


_active: _Filter | None = None


@contextmanager
def comms_while_waiting(kernel: Any) -> Iterator[None]:
    """While inside, comm messages reach ``kernel`` even while a cell runs (see module doc)."""
    global _active
    if _active is None:
        stream = _main_stream(kernel)
        _active = _Filter(kernel, stream)
        stream.on_recv(_active.on_recv, copy=False)
    active = _active
    active.users += 1
    try:
        yield
    finally:
        active.users -= 1
        if active.users == 0 and _active is active:
            active.stream.on_recv(active.original, copy=False)
            _active = None
