"""What this kernel asked of which model on which server: requests, tokens and time.

Every pipeline (``%%llm``/``chat()``, panels, tool rounds, ``batch()``, ``embed()``) adds one
entry per request it finishes, live or replayed; :func:`usage_table` sums them per model,
server and source (``live`` / ``replayed``: replayed calls are counted apart, with the tokens
their recordings report and no server time).

A request that got an error counts in ``requests`` and in ``failed``; one that never reached a
server (the connection was refused, timed out or found no free slot: nothing was sent) is not
counted. A request the transport retried (a refused connection, HTTP 503…) counts once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["USAGE", "UsageLedger", "UsageEntry", "COLUMNS"]

#: The columns of the usage table, in order.
COLUMNS = ("model", "server", "source", "kind", "requests", "failed", "input_tokens",
           "output_tokens", "seconds")


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One finished request."""

    model: str
    server: str
    source: str  # "live" | "replayed"
    kind: str  # "chat" | "embed"
    input_tokens: int
    output_tokens: int
    seconds: float
    at: float
    failed: bool = False


def reached_server(error: BaseException | None) -> bool:
    """False when ``error`` says the request was never sent (no connection was made)."""
    from ..core.errors import ProviderTimeoutError, ProviderUnavailableError

    if isinstance(error, ProviderTimeoutError):
        return error.phase not in ("connect", "pool")
    return not isinstance(error, ProviderUnavailableError)


class UsageLedger:
    """The entries of this process (thread-safe: batch rows finish on worker threads)."""

    def __init__(self) -> None:
        self._entries: list[UsageEntry] = []
        self._lock = threading.Lock()

    def add(self, *, model: str, server: str, stats: dict[str, Any] | None = None,
            replayed: bool = False, kind: str = "chat", seconds: float | None = None,
            error: BaseException | None = None) -> None:
        """Count one request (tokens and time from ``stats``, the reply's usage; ``seconds``
        overrides the time; replayed ones take none). ``error``: it failed with this (not
        counted at all when it never reached the server, see :func:`reached_server`)."""
        if not reached_server(error):
            return
        stats = stats or {}
        if seconds is None:
            seconds = 0.0 if replayed else float(stats.get("total_seconds") or 0.0)
        from ..providers.proxies import hide_userinfo

        entry = UsageEntry(model=model or "", server=hide_userinfo(server or ""), kind=kind,
                           source="replayed" if replayed else "live",
                           input_tokens=int(stats.get("input_tokens") or 0),
                           output_tokens=int(stats.get("output_tokens") or 0),
                           seconds=0.0 if replayed else float(seconds), at=time.time(),
                           failed=error is not None)
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[UsageEntry]:
        with self._lock:
            return list(self._entries)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per (model, server, source, kind), in first-use order, with the sums."""
        table: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for e in self.entries():
            row = table.setdefault((e.model, e.server, e.source, e.kind), {
                "model": e.model, "server": e.server, "source": e.source, "kind": e.kind,
                "requests": 0, "failed": 0, "input_tokens": 0, "output_tokens": 0, "seconds": 0.0})
            row["requests"] += 1
            row["failed"] += e.failed
            row["input_tokens"] += e.input_tokens
            row["output_tokens"] += e.output_tokens
            row["seconds"] = round(row["seconds"] + e.seconds, 3)
        return list(table.values())

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()


USAGE = UsageLedger()


def usage() -> Any:
    """This kernel's usage per model, server and source (live / replayed) as a DataFrame
    (a list of dicts without pandas): requests (``failed``: of those, the ones that got an
    error), input and output tokens, seconds."""
    rows = USAGE.rows()
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows, columns=list(COLUMNS))


class UsageView:
    """``%llm_usage``: the table as escaped Markdown in a notebook, text elsewhere."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def _repr_markdown_(self) -> str:
        from .markdown import escape_html

        if not self.rows:
            return "*No requests yet in this kernel.*"
        head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS)
        lines = ["| " + " | ".join(escape_html(str(r[c])).replace("|", "&#124;")
                                   for c in COLUMNS) + " |" for r in self.rows]
        return head + "\n" + "\n".join(lines + [self._total_line(markdown=True)])

    def _total_line(self, *, markdown: bool = False) -> str:
        live = [r for r in self.rows if r["source"] == "live"]
        total = (f"{sum(r['requests'] for r in live)} live requests "
                 f"({sum(r['failed'] for r in live)} failed), "
                 f"{sum(r['input_tokens'] for r in live):,} input and "
                 f"{sum(r['output_tokens'] for r in live):,} output tokens, "
                 f"{sum(r['seconds'] for r in live):.1f} s; "
                 f"{sum(r['requests'] for r in self.rows if r['source'] == 'replayed')} replayed")
        return f"\n\n*{total}*" if markdown else total

    def __repr__(self) -> str:
        if not self.rows:
            return "No requests yet in this kernel."
        widths = {c: max(len(c), *(len(str(r[c])) for r in self.rows)) for c in COLUMNS}
        lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS)]
        lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in COLUMNS) for r in self.rows]
        return "\n".join(lines + [self._total_line()])
