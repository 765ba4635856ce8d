"""Downloading a model onto a server, backend-neutral: the progress events a backend yields
(:meth:`~gleitzeit_nb.core.provider.BackendProvider.pull`) and a tracker that sums them up.

A pull reports a few phases by ``status`` ("pulling manifest", "verifying sha256 digest",
"writing manifest", "success") and, while a layer downloads, that layer's ``digest`` with its
``total`` and ``completed`` bytes. Layers come one after the other; a layer the server already
has (from an earlier, interrupted pull) starts with ``completed`` above 0.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["PullEvent", "PullLayer", "PullResult", "PullTracker", "human_bytes"]

#: Seconds of recent progress the rate is measured over.
RATE_WINDOW = 3.0


@dataclass(frozen=True, slots=True)
class PullEvent:
    """One progress event: ``status``, and for a layer its ``digest``, ``total`` and
    ``completed`` bytes (None when the event is about no layer)."""

    status: str
    digest: str = ""
    total: int | None = None
    completed: int | None = None

    @property
    def success(self) -> bool:
        return self.status == "success"


@dataclass(slots=True)
class PullLayer:
    """One layer's bytes; ``resumed`` is what the server had when this pull first saw it."""

    digest: str
    total: int
    completed: int = 0
    resumed: int = 0

    @property
    def short(self) -> str:
        """The digest as Ollama's CLI shows it (12 hex digits)."""
        return self.digest.split(":", 1)[-1][:12]

    @property
    def done(self) -> bool:
        return self.total > 0 and self.completed >= self.total


@dataclass(frozen=True, slots=True)
class PullResult:
    """A finished pull: the model, where, its bytes (``resumed`` of them were already on the
    server when it started) and how long it took."""

    model: str
    url: str
    total: int
    resumed: int
    seconds: float
    layers: int

    def __str__(self) -> str:
        resumed = f", resumed from {human_bytes(self.resumed)}" if self.resumed else ""
        return (f"Pulled {self.model} on {self.url}: {human_bytes(self.total)} in "
                f"{self.layers} layers, {self.seconds:.1f} s{resumed}.")

    def _repr_pretty_(self, p: object, cycle: bool) -> None:
        p.text(str(self))  # type: ignore[attr-defined]


@dataclass
class PullTracker:
    """Sums up a pull's events: the layers in order, bytes done, rate and what it is doing."""

    model: str
    status: str = "starting"
    layers: dict[str, PullLayer] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, event: PullEvent) -> PullLayer | None:
        """Take one event; returns its layer (None for a phase without one)."""
        self.status = event.status or self.status
        if not event.digest:
            return None
        layer = self.layers.get(event.digest)
        completed = event.completed or 0
        if layer is None:
            layer = self.layers[event.digest] = PullLayer(event.digest, event.total or 0,
                                                          completed, resumed=completed)
        layer.total = event.total or layer.total
        layer.completed = max(layer.completed, completed)
        self._sample()
        return layer

    # -- sums ----------------------------------------------------------------------------------
    @property
    def total(self) -> int:
        """Bytes of the layers seen so far (later layers add to it as they start)."""
        return sum(layer.total for layer in self.layers.values())

    @property
    def completed(self) -> int:
        return sum(min(layer.completed, layer.total) for layer in self.layers.values())

    @property
    def resumed(self) -> int:
        """Bytes the server already had when this pull started."""
        return sum(layer.resumed for layer in self.layers.values())

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def finished(self) -> bool:
        return self.status == "success"

    def rate(self) -> float:
        """Bytes per second over the last few seconds (0 before two samples)."""
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def eta(self) -> float | None:
        """Seconds left for the layers seen so far, when a rate is known."""
        rate = self.rate()
        return (self.total - self.completed) / rate if rate > 0 else None

    def result(self, url: str) -> PullResult:
        return PullResult(self.model, url, self.total, self.resumed, self.elapsed,
                          len(self.layers))

    def _sample(self) -> None:
        now = time.monotonic()
        self._samples.append((now, self.completed))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW:
            self._samples.popleft()


def human_bytes(n: float) -> str:
    """Bytes in decimal units as Ollama shows them: ``2.0 GB``, ``561 B``."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{int(n)} B"
