"""Chat memory across cells: named sessions of messages, shared by magics, ``chat()`` and panels."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_SESSION = "default"


@dataclass
class ChatSession:
    """One conversation. ``messages`` are what the next request sends before the new prompt.

    An interrupted or stopped reply is kept (marked ``interrupted``) and sent on: the model sees
    what it had said so far, and the user's question is not left without an answer.
    """

    name: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def add_turn(self, user: dict[str, Any], reply_text: str, *, interrupted: bool = False,
                 model: str | None = None, steps: list[dict[str, Any]] = (),
                 stats: dict[str, Any] | None = None, thinking: str = "",
                 status: str = "") -> None:
        """The user's message (its ``system`` key: the system prompt it was asked with), the
        tool transcript (``steps``: assistant messages with ``tool_calls`` and the ``tool``
        results) and the reply, with its model, usage (``stats``), thinking and status kept
        beside it for exports (never sent)."""
        self.messages.append(user)
        self.messages.extend(steps)
        turn: dict[str, Any] = {"role": "assistant", "content": reply_text}
        if interrupted:
            turn["interrupted"] = True
        if model:
            turn["model"] = model
        if stats:
            turn["stats"] = dict(stats)
        if thinking:
            turn["thinking"] = thinking
        if status and status != "done":
            turn["status"] = status
        self.messages.append(turn)

    def request_messages(self) -> list[dict[str, Any]]:
        """The history as request messages (bookkeeping keys removed)."""
        keep = ("role", "content", "images", "tool_calls", "tool_name", "tool_call_id")
        return [{k: m[k] for k in keep if k in m} for m in self.messages]

    def reset(self) -> None:
        self.messages.clear()

    def export(self, path: str | os.PathLike[str]) -> Path:
        """Write the conversation to ``path``: ``.md``, ``.html`` (self-contained, sanitised)
        or ``.json`` (loads back with :meth:`load`). Returns the path written."""
        from .session_io import export_session

        return export_session(self, Path(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, name: str | None = None,
             replace: bool = False) -> "ChatSession":
        """A session from a ``.json`` export, registered under its name (or ``name``) so
        ``%%llm -s NAME`` and ``chat(session=NAME)`` continue it. A session of that name that
        already has messages is only replaced with ``replace=True``."""
        from ..core.errors import InvalidParamsError
        from .connections import CONNECTIONS
        from .session_io import load_session

        session = load_session(Path(path), name=name)
        store = CONNECTIONS.sessions
        if not replace and session.name in store.names() and len(store.get(session.name)):
            raise InvalidParamsError(
                f"A session '{session.name}' with {len(store.get(session.name))} messages "
                f"exists already: load it under another name (name='…'), or pass "
                "replace=True to replace it.", param="name")
        store.put(session)
        return session

    def __len__(self) -> int:
        return len(self.messages)


#: The public name (``gleitzeit_nb.Session.load(path)``).
Session = ChatSession


class SessionStore:
    """Sessions by name, created on first use."""

    def __init__(self) -> None:
        self._sessions: dict[str, ChatSession] = {}

    def get(self, name: str | None = None) -> ChatSession:
        name = name or DEFAULT_SESSION
        if name not in self._sessions:
            self._sessions[name] = ChatSession(name)
        return self._sessions[name]

    def reset(self, name: str | None = None) -> None:
        self.get(name).reset()

    def names(self) -> list[str]:
        """The sessions there are (used or loaded), in the order they were made."""
        return list(self._sessions)

    def put(self, session: ChatSession) -> None:
        """Register ``session`` under its name (replacing one of the same name)."""
        self._sessions[session.name] = session
