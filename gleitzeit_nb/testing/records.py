"""What the simulator records: requests as they arrive and client disconnects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received; ``time`` is ``time.monotonic()`` at arrival and
    ``authorization`` the raw ``Authorization`` header (None when absent)."""

    method: str
    path: str
    body: dict[str, Any] | None
    time: float
    authorization: str | None = None

    @property
    def bearer(self) -> str | None:
        """The key sent as ``Authorization: Bearer <key>``, else None."""
        scheme, _, token = (self.authorization or "").strip().partition(" ")
        return (token.strip() or None) if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class Disconnect:
    """The client closed the connection before the response was complete.

    ``chunks_sent`` counts NDJSON lines already written; ``time`` is
    ``time.monotonic()`` when the disconnect was noticed."""

    path: str
    time: float
    chunks_sent: int
