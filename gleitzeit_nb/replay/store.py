"""``ReplayStore``: recorded replies in one SQLite file (WAL mode), safe for concurrent writers.

Every write is one ``BEGIN IMMEDIATE`` transaction, so a process killed mid-write leaves either
the whole transaction or nothing (SQLite's atomic commit; the WAL is rolled back on next open).
Lock contention is absorbed by SQLite's busy timeout plus a bounded retry with backoff; if the
file stays locked beyond that, a ``ReplayStoreError`` says so (never a bare ``sqlite3`` error).

After each write the WAL is checkpointed (passively) into the main file, so a store committed to
git while a kernel still has it open already holds every recording. Reads never write: replaying
leaves the file's bytes unchanged, and a store that does not exist is not created by a read.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from .errors import ReplayStoreError

logger = logging.getLogger(__name__)

__all__ = ["Recording", "ReplayStore", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
BUSY_TIMEOUT = 5.0  # seconds SQLite itself waits for a lock, per attempt
RETRIES = 5  # then attempts with backoff on top, for the cases the busy handler does not cover

_SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
    key          TEXT PRIMARY KEY NOT NULL,
    text         TEXT NOT NULL CHECK (length(text) > 0),
    thinking     TEXT NOT NULL DEFAULT '',
    stats        TEXT NOT NULL DEFAULT '{}',
    done_reason  TEXT,
    model        TEXT NOT NULL DEFAULT '',
    model_digest TEXT,
    request      TEXT,
    created      TEXT NOT NULL,
    last_used    TEXT
)
"""
_COLUMNS = ("key, text, thinking, stats, done_reason, model, model_digest, request, created, "
            "last_used")
_INHERITED: list[sqlite3.Connection] = []  # connections from a parent process: never used or closed

T = TypeVar("T")


@dataclass(frozen=True)
class Recording:
    """A recorded reply: what a replay returns instead of calling the model."""

    text: str
    thinking: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    done_reason: str | None = None
    model: str = ""
    model_digest: str | None = None
    created: str = ""  # ISO-8601 UTC, set by the store when empty


class ReplayStore:
    """Recordings keyed by ``call_key``, in the SQLite file ``path`` (opened on first use).

    Thread-safe (one connection behind a lock) and process-safe (SQLite locking). The file and
    its parent directory are created by the first write. ``busy_timeout`` is how long SQLite
    waits for another writer's lock on each of ``RETRIES`` attempts.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = Path(path).expanduser()
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._finalizer: weakref.finalize | None = None
        self._read_only = False  # opened through the read-only fallback

    # -- reading -----------------------------------------------------------------------------
    def get(self, key: str) -> Recording | None:
        """The recording under ``key``, or None."""
        rows = self._read("SELECT text, thinking, stats, done_reason, model, model_digest, created "
                          "FROM recordings WHERE key = ?", (key,))
        if not rows:
            return None
        text, thinking, stats, done_reason, model, digest, created = rows[0]
        return Recording(text=text, thinking=thinking, stats=json.loads(stats or "{}"),
                         done_reason=done_reason, model=model, model_digest=digest,
                         created=created)

    def request(self, key: str) -> dict[str, Any] | None:
        """The canonical request stored with ``key`` (for debugging a miss), or None."""
        rows = self._read("SELECT request FROM recordings WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows and rows[0][0] else None

    def count(self) -> int:
        rows = self._read("SELECT count(*) FROM recordings")
        return rows[0][0] if rows else 0

    def keys(self) -> list[str]:
        """All keys, sorted."""
        return [r[0] for r in self._read("SELECT key FROM recordings ORDER BY key")]

    def size_bytes(self) -> int:
        """Bytes on disk: the database file plus its write-ahead log."""
        total = 0
        for p in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                total += p.stat().st_size
            except FileNotFoundError:
                pass
        return total

    # -- writing -----------------------------------------------------------------------------
    def put(self, key: str, recording: Recording, *, status: str,
            request: dict[str, Any] | None = None) -> None:
        """Store one finished reply (INSERT OR REPLACE, one transaction).

        ``status`` is the reply's status and must be "done": errors, interrupted and stopped
        replies raise ``ValueError``, as does an empty (or whitespace-only) text.
        """
        self.put_many([(key, recording, status, request)])

    def put_many(self, entries: Iterable[tuple[Any, ...]]) -> int:
        """Store several replies in one transaction: all of them or (on any failure) none.

        Each entry is ``(key, recording, status)`` or ``(key, recording, status, request)``;
        every entry is checked as in ``put`` before anything is written. Returns the count.
        """
        now = _now()
        rows = []
        for entry in entries:
            key, rec, status, *rest = entry
            _check(key, rec, status)
            request = rest[0] if rest else None
            rows.append((key, rec.text, rec.thinking or "",
                         json.dumps(rec.stats or {}, sort_keys=True, default=str),
                         rec.done_reason, rec.model or "", rec.model_digest,
                         None if request is None else json.dumps(request, sort_keys=True,
                                                                 ensure_ascii=False, default=str),
                         rec.created or now, now))
        if rows:
            self._transaction(lambda conn: conn.executemany(
                f"INSERT OR REPLACE INTO recordings ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows))
            self._checkpoint("PASSIVE")
        return len(rows)

    def touch(self, keys: Iterable[str]) -> None:
        """Set ``last_used`` to now for ``keys`` (those not stored are ignored)."""
        now = _now()
        rows = [(now, k) for k in keys]
        if rows and self.path.exists():
            self._transaction(lambda conn: conn.executemany(
                "UPDATE recordings SET last_used = ? WHERE key = ?", rows))

    def mark_used(self, key: str) -> None:
        self.touch([key])

    def prune(self, keep: Iterable[str], *, vacuum: bool = True) -> int:
        """Delete every recording whose key is not in ``keep``; return how many were deleted.

        With ``vacuum`` the file is compacted afterwards (it is usually committed to git).
        """
        if not self.path.exists():
            return 0
        keep_rows = [(k,) for k in set(keep)]

        def work(conn: sqlite3.Connection) -> int:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS prune_keep (key TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM temp.prune_keep")
            conn.executemany("INSERT INTO temp.prune_keep (key) VALUES (?)", keep_rows)
            removed = conn.execute("DELETE FROM recordings "
                                   "WHERE key NOT IN (SELECT key FROM temp.prune_keep)").rowcount
            conn.execute("DELETE FROM temp.prune_keep")
            return removed

        removed = self._transaction(work)
        if removed and vacuum:
            with self._lock:
                conn = self._connection(create=True)
                self._retry(lambda: conn.execute("VACUUM"))
            self._checkpoint("TRUNCATE")
        return removed

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close (the store reopens on next use)."""
        with self._lock:
            self._drop_inherited()
            if self._conn is not None:
                self._checkpoint("TRUNCATE")
                if self._finalizer is not None:
                    self._finalizer()  # closes the connection, once
            self._conn = self._finalizer = None
            self._read_only = False

    def __enter__(self) -> ReplayStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReplayStore({str(self.path)!r})"

    # -- internals ---------------------------------------------------------------------------
    def _drop_inherited(self) -> None:
        if self._conn is not None and self._pid != os.getpid():
            # inherited across fork: SQLite forbids using it here, and closing it could release
            # the parent's locks, so it is set aside for good
            _INHERITED.append(self._conn)
            if self._finalizer is not None:
                self._finalizer.detach()
            self._conn = self._finalizer = None

    def _connection(self, *, create: bool) -> sqlite3.Connection | None:
        """The open connection (caller holds the lock); None if reading a missing store."""
        self._drop_inherited()
        if self._conn is None:
            if not create and not self.path.exists():
                return None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = self._retry(self._open)
            except ReplayStoreError as exc:
                if create or not any(w in exc.message for w in ("unable to open", "readonly")):
                    raise
                # A read-only folder or mount: WAL needs its side files. Replay reads a
                # committed (checkpointed) store all the same.
                conn = self._open_read_only()
            self._conn, self._pid = conn, os.getpid()
            self._finalizer = weakref.finalize(self, conn.close)
        return self._conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a killed process loses no commit (a power cut may lose the last few)
            conn.execute("PRAGMA synchronous=NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ReplayStoreError(
                    f"The replay store {self.path} was written by a newer gleitzeit_nb (schema "
                    f"{version}, this one reads {SCHEMA_VERSION}); upgrade gleitzeit_nb.",
                    path=self.path)
            exists = conn.execute("SELECT 1 FROM sqlite_master "
                                  "WHERE type = 'table' AND name = 'recordings'").fetchone()
            if not exists:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(_SCHEMA)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_read_only(self) -> sqlite3.Connection:
        wal = self.path.with_name(self.path.name + "-wal")
        if wal.exists() and wal.stat().st_size:  # an immutable read would not see those
            raise ReplayStoreError(
                f"The replay store {self.path} cannot be opened in a folder it cannot write "
                f"while {wal.name} holds recordings not yet merged into it; open it once where "
                "it is writable (any read merges them), then commit the .sqlite file.",
                path=self.path)
        uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute("SELECT count(*) FROM recordings").fetchone()
        except sqlite3.Error as exc:
            raise ReplayStoreError(f"The replay store {self.path} cannot be read: {exc}.",
                                   path=self.path) from None
        logger.info("replay store %s opened read-only", self.path)
        self._read_only = True
        return conn

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            conn = self._connection(create=False)
            if conn is None:
                return []
            return self._retry(lambda: conn.execute(sql, params).fetchall())

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def attempt() -> T:
            conn.execute("BEGIN IMMEDIATE")  # take the write lock now: the busy handler applies
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the original error says more
                raise
            return result

        with self._lock:
            conn = self._connection(create=True)
            assert conn is not None
            if self._read_only:
                raise ReplayStoreError(
                    f"The replay store {self.path} is read-only here (its folder cannot be "
                    "written); to record, point GLEITZEIT_STORE at a writable file.",
                    path=self.path)
            return self._retry(attempt)

    def _checkpoint(self, mode: str) -> None:
        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.execute(f"PRAGMA wal_checkpoint({mode})")
            except sqlite3.Error:
                pass  # best effort: a later write or close checkpoints again

    def _retry(self, fn: Callable[[], T]) -> T:
        delay = 0.02
        for attempt in range(RETRIES):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                text = str(exc).lower()
                if ("locked" in text or "busy" in text) and attempt < RETRIES - 1:
                    time.sleep(delay * (1 + random.random()))
                    delay *= 2
                    continue
                raise self._error(exc) from exc
            except sqlite3.DatabaseError as exc:
                raise self._error(exc) from exc
        raise AssertionError("unreachable")

    def _error(self, exc: sqlite3.Error) -> ReplayStoreError:
        text = str(exc)
        if "locked" in text.lower() or "busy" in text.lower():
            msg = (f"The replay store {self.path} stayed locked by another process for too long "
                   f"({text}); try again, or point GLEITZEIT_STORE at another file.")
        elif "not a database" in text.lower():
            msg = (f"{self.path} is not a replay store (not an SQLite database); move it away or "
                   "point GLEITZEIT_STORE at another file.")
        else:
            msg = f"The replay store {self.path} cannot be used: {text}."
        return ReplayStoreError(msg, path=self.path)


def _check(key: Any, rec: Any, status: Any) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError("a recording needs a non-empty string key (from call_key)")
    if not isinstance(rec, Recording):
        raise TypeError(f"expected a Recording, not {type(rec).__name__}")
    if status != "done":
        raise ValueError(f"only finished replies are recorded; this one is {status!r}")
    if not isinstance(rec.text, str) or not rec.text.strip():
        raise ValueError("an empty reply is not recorded")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
