"""Chat memory across cells: named sessions of messages, shared by magics, ``chat()`` and panels."""

from __future__ import annotations

from dataclasses import dataclass, field
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
                 model: str | None = None, steps: list[dict[str, Any]] = ()) -> None:
        """The user's message, the tool transcript (``steps``: assistant messages with
        ``tool_calls`` and the ``tool`` results) and the reply."""
        self.messages.append(user)
        self.messages.extend(steps)
        turn: dict[str, Any] = {"role": "assistant", "content": reply_text}
        if interrupted:
            turn["interrupted"] = True
        if model:
            turn["model"] = model
        self.messages.append(turn)

    def request_messages(self) -> list[dict[str, Any]]:
        """The history as request messages (bookkeeping keys removed)."""
        keep = ("role", "content", "images", "tool_calls", "tool_name", "tool_call_id")
        return [{k: m[k] for k in keep if k in m} for m in self.messages]

    def reset(self) -> None:
        self.messages.clear()

    def __len__(self) -> int:
        return len(self.messages)


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
