"""Fault injection: the fault kinds, their parameters and a thread-safe
book of pending faults consumed by matching requests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

#: Paths a fault with ``path=None`` applies to.
GENERATION_PATHS = ("/api/chat", "/api/generate", "/v1/chat/completions")

#: Every fault kind with its keyword parameters and their defaults.
FAULT_KINDS: dict[str, dict[str, Any]] = {
    "http_error": {"status": 500, "message": "simulated server error"},
    "stall_before": {"seconds": 1.0},
    "stall_after": {"after": 1, "seconds": 1.0},
    "mid_stream_error": {"after": 1, "message": "simulated error during generation"},
    "malformed_line": {"after": 1},
    "drop": {"after": 1},
    "slow": {"token_delay": 0.05},
}

#: Faults that end a streamed response early; at most one applies per request.
TERMINAL_KINDS = ("drop", "mid_stream_error", "malformed_line")


@dataclass
class Fault:
    """One injected fault; ``remaining`` counts the requests it still applies to."""

    kind: str
    params: dict[str, Any]
    remaining: int = 1
    path: str | None = None

    def matches(self, path: str) -> bool:
        """Whether this fault targets ``path``."""
        if self.path is None:
            return path in GENERATION_PATHS
        return path == self.path

    def __getattr__(self, name: str) -> Any:
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        raise AttributeError(name)


@dataclass
class FaultBook:
    """Pending faults in injection order (thread-safe)."""

    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, kind: str, *, count: int = 1, path: str | None = None,
               **kw: Any) -> Fault:
        """Queue ``kind`` for the next ``count`` requests matching ``path``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        unknown = set(kw) - set(FAULT_KINDS[kind])
        if unknown:
            raise TypeError(f"fault {kind!r} takes {sorted(FAULT_KINDS[kind])}, got {sorted(unknown)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        params = {**FAULT_KINDS[kind], **kw}
        if "after" in params and int(params["after"]) < 0:
            raise ValueError("after must be >= 0")
        fault = Fault(kind, params, count, path)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, path: str) -> dict[str, Fault]:
        """Consume the oldest pending fault of each kind that matches ``path``."""
        taken: dict[str, Fault] = {}
        with self._lock:
            for fault in self._faults:
                if fault.kind not in taken and fault.remaining > 0 and fault.matches(path):
                    fault.remaining -= 1
                    taken[fault.kind] = fault
            self._faults = [f for f in self._faults if f.remaining > 0]
        return taken

    def pending(self) -> list[Fault]:
        """A snapshot of faults not yet used up."""
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()
