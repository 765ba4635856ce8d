"""``ReplayStore``: recorded replies as a folder of JSON files, one per recording, for git.

``llm-replay/<hex>.json`` holds the recording keyed ``sha256:<hex>``: pretty-printed, sorted
keys, UTF-8 (non-ASCII text as is), ending in a newline, so ``git diff`` shows a re-recorded
answer as text, file by file::

    {
      "created": "2026-12-01T13:57:29.183Z",
      "done_reason": "stop",
      "key": "sha256:7a09…",
      "model": "llama3.2:latest",
      "reply": {"text": "…", "thinking": ""},
      "request": {"api": "ollama", "messages": […], "model": "llama3.2:latest", "v": 2},
      "stats": {"finish_reason": "stop", "output_tokens": 40, …}
    }

(``None`` values are left out.) The folder is flat: a lookup opens one file by name, never lists
the folder, and a flat listing reads best in a review; git and the file systems in use handle
thousands of files in one folder.

A recording is written to a temporary file in the same folder (``.<hex>.<random>.tmp``), flushed to
disk and renamed over its final name (``os.replace``, atomic): a reader, another writer or a
process killed mid-write sees the old recording or the new one, never half of one; readers
ignore the temporary files (``prune`` deletes those left by a killed writer, as does the folder's
``.gitignore``). Reads never write, so replaying works from a read-only checkout and leaves the
folder unchanged. Re-recording an answer identical to the stored one (same text, thinking,
model, finish reason and request) leaves its file as it was: its timings would only churn diffs.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ReplayStoreError

__all__ = ["Recording", "ReplayStore", "KEY_PATTERN"]

KEY_PATTERN = re.compile(r"sha256:([0-9a-f]{64})")
_FILE = re.compile(r"[0-9a-f]{64}\.json")
_CONFLICT = re.compile(rb"(?m)^<<<<<<< ")
_TMP_PREFIX, _TMP_SUFFIX = ".", ".tmp"
_STALE_TMP_SECONDS = 600.0  # prune deletes temporary files older than this (a killed writer's)
_GITIGNORE = "# temporary files of a recording being written\n.*.tmp\n"


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
    #: a round of a tool conversation: the calls the model made (neutral dicts: id, name,
    #: arguments) and the results they got when recorded (id, name, result)
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_results: tuple[dict[str, Any], ...] = ()


class ReplayStore:
    """Recordings keyed ``sha256:<hex>`` in the folder ``path`` (created by the first write).

    Safe for threads and processes without locks: each recording is its own file, replaced
    atomically. ``put_many`` checks every entry before writing any; each recording is then
    written whole or not at all (a process killed during ``put_many`` keeps those written).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    # -- reading -----------------------------------------------------------------------------
    def get(self, key: str) -> Recording | None:
        """The recording under ``key``, or None."""
        doc = self._load(key)
        if doc is None:
            return None
        reply = doc["reply"]
        return Recording(text=reply["text"], thinking=reply.get("thinking") or "",
                         stats=doc.get("stats") or {}, done_reason=doc.get("done_reason"),
                         model=doc.get("model") or "", model_digest=doc.get("model_digest"),
                         created=doc.get("created") or "",
                         tool_calls=tuple(reply.get("tool_calls") or ()),
                         tool_results=tuple(doc.get("tool_results") or ()))

    def request(self, key: str) -> dict[str, Any] | None:
        """The canonical request stored with ``key`` (for debugging a miss), or None."""
        doc = self._load(key)
        return None if doc is None else doc.get("request")

    def count(self) -> int:
        return len(self._names())

    def keys(self) -> list[str]:
        """All keys, sorted."""
        return sorted("sha256:" + name[:-5] for name in self._names())

    def size_bytes(self) -> int:
        """Bytes of the recordings' files."""
        total = 0
        for name in self._names():
            try:
                total += (self.path / name).stat().st_size
            except FileNotFoundError:
                pass  # pruned meanwhile
        return total

    # -- writing -----------------------------------------------------------------------------
    def put(self, key: str, recording: Recording, *, status: str,
            request: dict[str, Any] | None = None) -> None:
        """Store one finished reply (replacing an older one under ``key``).

        ``status`` is the reply's status and must be "done": errors, interrupted and stopped
        replies raise ``ValueError``, as does an empty (or whitespace-only) text.
        """
        self.put_many([(key, recording, status, request)])

    def put_many(self, entries: Iterable[tuple[Any, ...]]) -> int:
        """Store several replies; every entry is checked as in ``put`` before any is written.

        Each entry is ``(key, recording, status)`` or ``(key, recording, status, request)``.
        Returns the count.
        """
        now = _now()
        docs = []
        for entry in entries:
            key, rec, status, *rest = entry
            _check(key, rec, status)
            docs.append(_document(key, rec, rest[0] if rest else None, now))
        if docs:
            self._ensure_folder()
            for doc in docs:
                self._write(doc)
            _sync_folder(self.path)
        return len(docs)

    def prune(self, keep: Iterable[str]) -> int:
        """Delete every recording whose key is not in ``keep``; return how many were deleted.

        Temporary files left by a killed writer (older than a few minutes) go too.
        """
        keep = set(keep)
        removed = 0
        for name in self._names():
            if "sha256:" + name[:-5] not in keep:
                removed += self._unlink(self.path / name)
        cutoff = time.time() - _STALE_TMP_SECONDS
        for entry in self._scan():
            try:
                if _is_tmp(entry.name) and entry.stat().st_mtime < cutoff:
                    self._unlink(Path(entry.path))
            except FileNotFoundError:
                pass  # renamed into place meanwhile
        return removed

    def close(self) -> None:
        """Nothing to release (no file stays open); kept for the callers that close stores."""

    def __enter__(self) -> ReplayStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReplayStore({str(self.path)!r})"

    # -- internals ---------------------------------------------------------------------------
    def _file(self, key: str) -> Path:
        return self.path / f"{_hex(key)}.json"

    def _load(self, key: str) -> dict[str, Any] | None:
        path = self._file(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            raise self._not_a_folder() from None
        except OSError as exc:
            raise ReplayStoreError(f"The recording {path} cannot be read: {exc.strerror}.",
                                   path=self.path) from exc
        try:
            doc = json.loads(data.decode("utf-8"))
            if not isinstance(doc, dict) or doc.get("key") != key:
                raise ValueError(f"it holds no recording of {key}")
            reply = doc.get("reply")
            if not isinstance(reply, dict) or not isinstance(reply.get("text"), str):
                raise ValueError("it has no reply text")
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
            conflict = (" (an unresolved git merge conflict?)"
                        if _CONFLICT.search(data) else "")
            raise ReplayStoreError(
                f"The recording {path} is not a valid recording{conflict}: {exc}. Fix it, or "
                "delete the file and record that call again.", path=self.path) from None
        return doc

    def _scan(self) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self.path) as entries:
                return list(entries)
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            raise self._not_a_folder() from None

    def _names(self) -> list[str]:
        return [e.name for e in self._scan() if _FILE.fullmatch(e.name)]

    def _ensure_folder(self) -> None:
        if self.path.is_file():
            raise self._not_a_folder()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            ignore = self.path / ".gitignore"
            if not ignore.exists():
                ignore.write_text(_GITIGNORE, encoding="utf-8")
        except OSError as exc:
            raise self._unwritable(exc) from exc

    def _write(self, doc: dict[str, Any]) -> None:
        target = self._file(doc["key"])
        try:
            old = self._load(doc["key"])
        except ReplayStoreError:
            old = None  # unreadable (a merge conflict): replaced by the new recording
        if old is not None and _same_answer(old, doc):
            return
        data = (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, default=str)
                + "\n").encode("utf-8")
        tmp = self.path / f"{_TMP_PREFIX}{target.stem}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        except OSError as exc:
            raise self._unwritable(exc) from exc
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException as exc:
            self._unlink(tmp)
            if isinstance(exc, OSError):
                raise self._unwritable(exc) from exc
            raise

    @staticmethod
    def _unlink(path: Path) -> int:
        try:
            path.unlink()
            return 1
        except FileNotFoundError:
            return 0

    def _not_a_folder(self) -> ReplayStoreError:
        return ReplayStoreError(
            f"The replay store {self.path} is a file, not a folder of recordings. If it is an "
            "SQLite store of an older gleitzeit_nb, convert it: python -m gleitzeit_nb.replay "
            f"migrate {self.path}", path=self.path)

    def _unwritable(self, exc: OSError) -> ReplayStoreError:
        return ReplayStoreError(
            f"The replay store {self.path} cannot be written here ({exc.strerror or exc}); to "
            "record, point GLEITZEIT_STORE at a writable folder.", path=self.path)


def _document(key: str, rec: Recording, request: dict[str, Any] | None, now: str
              ) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "key": key, "reply": {"text": rec.text, "thinking": rec.thinking or ""},
        "tool_results": list(rec.tool_results) or None,
        "stats": dict(rec.stats or {}), "model": rec.model or "", "created": rec.created or now,
        "done_reason": rec.done_reason, "model_digest": rec.model_digest, "request": request}
    if rec.tool_calls:
        doc["reply"]["tool_calls"] = list(rec.tool_calls)
    return {k: v for k, v in doc.items() if v is not None}


_ANSWER_FIELDS = ("reply", "model", "done_reason", "model_digest", "request", "tool_results")


def _same_answer(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """The same answer to the same request (stats and creation time aside)."""
    new = json.loads(json.dumps(new, default=str))  # as it would read back
    return all(old.get(f) == new.get(f) for f in _ANSWER_FIELDS)


def _check(key: Any, rec: Any, status: Any) -> None:
    _hex(key)
    if not isinstance(rec, Recording):
        raise TypeError(f"expected a Recording, not {type(rec).__name__}")
    if status != "done":
        raise ValueError(f"only finished replies are recorded; this one is {status!r}")
    if not isinstance(rec.text, str) or not (rec.text.strip() or rec.tool_calls):
        raise ValueError("an empty reply is not recorded")


def _hex(key: Any) -> str:
    match = KEY_PATTERN.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        raise ValueError(f"a replay key is 'sha256:' and 64 hex digits (from key_of), not {key!r}")
    return match.group(1)


def _is_tmp(name: str) -> bool:
    return name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX)


def _sync_folder(path: Path) -> None:
    """Make the renames durable (best effort: some systems cannot fsync a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
