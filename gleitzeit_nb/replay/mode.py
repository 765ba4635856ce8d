"""Replay modes, where the store lives, and ``Replayer``: the two calls the request pipeline makes.

Modes:

* ``off`` — always live; the store is never opened;
* ``record`` — always live, and every finished reply is recorded (replacing an older one);
* ``replay`` — replies come from the store only; a miss raises ``ReplayMissError``;
* ``auto`` — replay on a hit, otherwise live and record.

The environment variables ``GLEITZEIT_REPLAY`` and ``GLEITZEIT_STORE`` win over arguments and
configuration, so CI can force replay without touching the notebook.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..core.errors import InvalidParamsError
from .errors import ReplayMissError
from .keys import key_of
from .store import Recording, ReplayStore

logger = logging.getLogger(__name__)

__all__ = ["MODES", "STORE_NAME", "resolve", "default_store_dir", "Replayer"]

MODES = ("off", "record", "replay", "auto")
STORE_NAME = "llm-replay"
MODE_ENV = "GLEITZEIT_REPLAY"
STORE_ENV = "GLEITZEIT_STORE"
_PENDING_MAX = 64


def resolve(mode: str | None = None, store: str | os.PathLike[str] | None = None
            ) -> tuple[str, Path]:
    """The effective ``(mode, store path)``.

    ``GLEITZEIT_REPLAY`` / ``GLEITZEIT_STORE`` (when set and not empty) win over ``mode`` /
    ``store``. The mode defaults to "off". The store defaults to the folder ``llm-replay`` in the
    notebook's directory (``default_store_dir``). A relative path from the environment is
    relative to the current directory; a relative ``store`` argument is relative to the
    notebook's directory.
    """
    env_mode = os.environ.get(MODE_ENV, "").strip()
    chosen = env_mode or mode or "off"
    chosen = str(chosen).strip().lower()
    if chosen not in MODES:
        source = f"{MODE_ENV}={env_mode!r}" if env_mode else f"replay mode {mode!r}"
        raise InvalidParamsError(f"{source} is not a replay mode; use one of: "
                                 + ", ".join(MODES) + ".", param="replay")
    env_store = os.environ.get(STORE_ENV, "").strip()
    if env_store:
        path = Path(env_store).expanduser()
        path = path if path.is_absolute() else Path.cwd() / path
    elif store is not None and os.fspath(store):
        path = Path(store).expanduser()
        path = path if path.is_absolute() else default_store_dir() / path
    else:
        path = default_store_dir() / STORE_NAME
    return chosen, path


def default_store_dir() -> Path:
    """The notebook's directory: that of ``JPY_SESSION_NAME`` if it is an absolute path whose
    directory exists (jupyter_server sets it to the notebook's path), else the directory the
    process started in (where nbclient, nbval and jupyter_server start a notebook's kernel;
    a later ``%cd`` does not move the store)."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session and os.path.isabs(session):
        parent = Path(session).parent
        if parent.is_dir():
            return parent
    from .. import START_DIR

    return Path(START_DIR)


class Replayer:
    """Looks calls up and records replies according to the mode.

    Typical use in a pipeline::

        key, hit = replayer.find(chat_request_key(backend.kind, request))
        if hit is None:
            reply = ...  # live call
            replayer.save(key, text=reply.text, thinking=reply.thinking, stats=reply.stats,
                          model=reply.model, status=reply.status)

    ``used`` collects the keys replayed or recorded by this object (for ``store.prune(used)``).
    Lookups never write to the store, so a replay run leaves its folder unchanged.
    """

    def __init__(self, mode: str | None = None, store: str | os.PathLike[str] | None = None
                 ) -> None:
        self.mode, self.path = resolve(mode, store)
        self.used: set[str] = set()
        self._store: ReplayStore | None = None
        # canonical requests of recent misses, stored with the recording by save()
        self._pending: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._pending_lock = threading.Lock()

    @property
    def store(self) -> ReplayStore:
        if self._store is None:
            self._store = ReplayStore(self.path)
            old = self.path.with_name(self.path.name + ".sqlite")
            if not self.path.exists() and old.is_file():
                logger.warning("%s is an SQLite replay store of an older gleitzeit_nb, not read "
                               "any more: convert it with python -m gleitzeit_nb.replay migrate %s",
                               old, old)
        return self._store

    @property
    def active(self) -> bool:
        """False in "off" mode: the pipeline can skip key computation entirely."""
        return self.mode != "off"

    def key(self, canonical: dict[str, Any]) -> str:
        """The key of a canonical request; remembers the request for ``save``."""
        key = key_of(canonical)
        if self.mode in ("record", "auto"):
            with self._pending_lock:
                self._pending[key] = canonical
                self._pending.move_to_end(key)
                while len(self._pending) > _PENDING_MAX:
                    self._pending.popitem(last=False)
        return key

    def lookup(self, canonical: dict[str, Any], key: str | None = None) -> Recording | None:
        """The recorded reply for this call, or None to go live.

        "off" and "record" return None without touching the store; "auto" returns None on a
        miss; "replay" raises ``ReplayMissError`` on a miss. Pass ``key`` if already computed.
        """
        if self.mode in ("off", "record"):
            return None
        if key is None:
            key = self.key(canonical)
        found = self.store.get(key)
        if found is not None:
            self.used.add(key)
            self._forget(key)
            return found
        if self.mode == "replay":
            prompt = canonical.get("embed") or _last_user_text(canonical.get("messages") or [])
            raise ReplayMissError(prompt=prompt, model=canonical.get("model", ""),
                                  store=self.path, key=key)
        return None

    def find(self, canonical: dict[str, Any]) -> tuple[str, Recording | None]:
        """``(key, recording or None)``: the one lookup every pipeline makes."""
        key = self.key(canonical)
        return key, self.lookup(canonical, key)

    def save(self, key: str, *, text: str, status: str, thinking: str = "",
             stats: Mapping[str, Any] | None = None, model: str = "",
             done_reason: str | None = None, model_digest: str | None = None,
             request: dict[str, Any] | None = None,
             tool_calls: Iterable[Mapping[str, Any]] = (),
             tool_results: Iterable[Mapping[str, Any]] = ()) -> bool:
        """Record a live reply in "record"/"auto" mode; True if it was stored.

        Only finished, non-empty replies are stored: anything else (an interrupted or stopped
        reply, an empty text without tool calls) returns False. A round of a tool conversation
        stores the model's ``tool_calls`` and the ``tool_results`` they got. Call it after the reply is known good (e.g. after
        structured output parsed), so an error is never replayed. ``request`` defaults to the
        canonical request remembered by ``key()``.
        """
        if self.mode not in ("record", "auto"):
            return False
        calls = tuple(dict(c) for c in tool_calls)
        if status != "done" or not isinstance(text, str) or not (text.strip() or calls):
            return False
        stats = dict(stats or {})
        rec = Recording(text=text, thinking=thinking or "", stats=stats,
                        done_reason=done_reason or stats.get("finish_reason"), model=model,
                        model_digest=model_digest, tool_calls=calls,
                        tool_results=tuple(dict(r) for r in tool_results))
        pending = self._forget(key)
        self.store.put(key, rec, status=status, request=request if request is not None else pending)
        self.used.add(key)
        return True

    def save_many(self, items: Iterable[tuple[str, str, dict[str, Any]]], *,
                  model: str = "") -> int:
        """Record several finished ``(key, text, canonical request)`` replies at once
        ("record"/"auto")."""
        if self.mode not in ("record", "auto"):
            return 0
        entries = [(key, Recording(text=text, model=model), "done",
                    request or self._forget(key))
                   for key, text, request in items if text.strip()]
        count = self.store.put_many(entries)
        self.used.update(key for key, *_ in entries)
        return count

    def _forget(self, key: str) -> dict[str, Any] | None:
        with self._pending_lock:
            return self._pending.pop(key, None)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def __repr__(self) -> str:
        return f"Replayer(mode={self.mode!r}, store={str(self.path)!r})"


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for msg in reversed(messages):
        if isinstance(msg, Mapping) and msg.get("role") == "user":
            return str(msg.get("content") or "")
    return ""
