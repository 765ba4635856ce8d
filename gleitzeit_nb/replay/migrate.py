"""Convert an SQLite replay store (gleitzeit_nb before the text store) into a folder of JSON files.

    python -m gleitzeit_nb.replay migrate notebooks/llm-replay.sqlite   # → notebooks/llm-replay/

The old file is only read (with the standard library's ``sqlite3``), never changed: delete it
once the folder is committed. Every row becomes one recording with its text, thinking, stats,
finish reason, model, request and creation time (``last_used`` is dropped).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from .errors import ReplayStoreError
from .store import KEY_PATTERN, Recording, ReplayStore

__all__ = ["migrate_sqlite", "default_target"]

_SCHEMA_VERSION = 1  # the last SQLite schema
_COLUMNS = "key, text, thinking, stats, done_reason, model, model_digest, request, created"


def default_target(source: str | os.PathLike[str]) -> Path:
    """``llm-replay.sqlite`` → ``llm-replay`` beside it (any suffix is dropped)."""
    path = Path(source)
    return path.with_name(path.stem if path.suffix else path.name + "-replay")


def migrate_sqlite(source: str | os.PathLike[str],
                   target: str | os.PathLike[str] | None = None) -> tuple[int, list[str]]:
    """Write every recording of the SQLite store ``source`` into the folder ``target``.

    Returns ``(recordings written, keys skipped)``; rows whose key is not a ``sha256:`` key
    (never made by ``key_of``) or whose text is empty are skipped. A recording already in the
    folder under the same key is replaced (unless it holds the same answer).
    """
    source = Path(source)
    store = ReplayStore(default_target(source) if target is None else target)
    rows = _read_rows(source)
    entries: list[tuple[Any, ...]] = []
    skipped: list[str] = []
    for key, text, thinking, stats, done_reason, model, digest, request, created in rows:
        if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key) or not (text or "").strip():
            skipped.append(str(key))
            continue
        rec = Recording(text=text, thinking=thinking or "", stats=json.loads(stats or "{}"),
                        done_reason=done_reason, model=model or "", model_digest=digest,
                        created=created or "")
        entries.append((key, rec, "done", json.loads(request) if request else None))
    return store.put_many(entries), skipped


def _read_rows(source: Path) -> list[tuple[Any, ...]]:
    if not source.is_file():
        raise ReplayStoreError(f"{source} is not a file (expected an SQLite replay store).",
                               path=source)
    uri = source.resolve().as_uri()
    errors: list[str] = []
    wal = source.with_name(source.name + "-wal")
    # immutable=1 reads the file alone and leaves no -wal/-shm beside it; mode=ro also reads
    # recordings still in a -wal (a store whose last writer did not close it)
    queries = ["?mode=ro", "?mode=ro&immutable=1"]
    if not (wal.exists() and wal.stat().st_size):
        queries.reverse()
    for query in queries:
        conn = sqlite3.connect(uri + query, uri=True)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise ReplayStoreError(f"{source} has SQLite schema {version}; this converter "
                                       f"reads {_SCHEMA_VERSION}.", path=source)
            return conn.execute(f"SELECT {_COLUMNS} FROM recordings ORDER BY key").fetchall()
        except sqlite3.Error as exc:
            errors.append(str(exc))
        finally:
            conn.close()
    raise ReplayStoreError(f"{source} is not an SQLite replay store ({errors[-1]}).", path=source)
