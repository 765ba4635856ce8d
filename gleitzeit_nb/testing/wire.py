"""Low-level connection I/O: chunked writes, waits that notice a client
disconnect (select + MSG_PEEK) within milliseconds, and abrupt closes."""

from __future__ import annotations

import select
import socket
import threading
import time


class ClientGone(Exception):
    """The client closed (or reset) the connection."""


class ServerStopping(Exception):
    """The simulator is shutting down."""


class Wire:
    """Writes to and watches one client connection."""

    #: Upper bound on a single select(); bounds how late a stop() is noticed.
    POLL = 0.05

    def __init__(self, sock: socket.socket, stopping: threading.Event) -> None:
        self.sock = sock
        self.stopping = stopping

    def _gone(self) -> Exception:
        """The exception for a dead connection: our own shutdown or the client's."""
        return ServerStopping() if self.stopping.is_set() else ClientGone()

    def peer_closed(self) -> bool:
        """True if the client has closed its side (EOF or reset) — non-blocking."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable) and self._eof()

    def _eof(self) -> bool:
        try:
            return self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    def wait_until(self, deadline: float) -> None:
        """Sleep until ``deadline`` (monotonic); raise ClientGone/ServerStopping early."""
        while True:
            if self.stopping.is_set():
                raise ServerStopping()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                readable, _, _ = select.select([self.sock], [], [], min(remaining, self.POLL))
            except (OSError, ValueError):
                raise self._gone() from None
            if readable:
                if self._eof():
                    raise self._gone()
                # The client sent bytes (pipelining); we cannot tell, so just sleep.
                time.sleep(min(max(deadline - time.monotonic(), 0), self.POLL))

    def wait(self, seconds: float) -> None:
        """``wait_until(now + seconds)``."""
        if seconds > 0:
            self.wait_until(time.monotonic() + seconds)
        elif self.stopping.is_set():
            raise ServerStopping()

    def send(self, data: bytes) -> None:
        """Write all of ``data``; raise ClientGone if the peer went away."""
        if self.stopping.is_set():
            raise ServerStopping()
        try:
            self.sock.sendall(data)
        except OSError:  # BrokenPipe, ConnectionReset, or our own shutdown
            raise self._gone() from None

    def send_chunk(self, data: bytes) -> None:
        """Write one HTTP/1.1 chunk."""
        if data:
            self.send(b"%x\r\n%b\r\n" % (len(data), data))

    def end_chunks(self) -> None:
        """Write the terminating zero-length chunk."""
        self.send(b"0\r\n\r\n")

    def abort(self) -> None:
        """Close the connection abruptly (no terminating chunk, no more reads)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
