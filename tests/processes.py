"""Is a process gone, is a port closed: checks for the local engine's tests (no psutil)."""

from __future__ import annotations

import os
import socket
import time
import urllib.parse


def gone(pid: int) -> bool:
    """No such process, or only a zombie left for its reaper (it runs no code)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def refuses(url: str) -> bool:
    """Whether connecting to ``url``'s host and port is refused."""
    split = urllib.parse.urlsplit(url)
    try:
        socket.create_connection((split.hostname, split.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def wait_gone(pid: int, url: str, timeout: float = 5.0) -> float:
    """Seconds until ``pid`` is gone and ``url`` refuses connections; AssertionError after
    ``timeout``."""
    start = time.monotonic()
    while not (gone(pid) and refuses(url)):
        assert time.monotonic() - start < timeout, \
            f"engine pid {pid} still {'running' if not gone(pid) else 'gone, but port open'}"
        time.sleep(0.05)
    return time.monotonic() - start


def children() -> set[int]:
    """This process's child processes."""
    found: set[int] = set()
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
            found |= {int(p) for p in f.read().split()}
    return {p for p in found if not gone(p)}
