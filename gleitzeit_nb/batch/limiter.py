"""How many requests a batch keeps in flight, and the dispatcher that honours that limit.

The limit comes from, in order: an explicit ``concurrency=`` ("configured"); the servers' own
capacity hints when every server gives one ("server slots": llama.cpp publishes its slots,
a local Ollama says it through its environment); otherwise it is learned ("learned") by
``AdaptiveLimit``.

Learning rests on how servers behave: requests beyond its parallel slots wait in its queue, so
over-subscribing costs latency but no throughput, while under-subscribing leaves slots idle
(and nothing is learned before the first replies come back). So the ramp starts at
``LEARN_START`` per host (the slot count Ollama picks by itself when memory allows; a server
with fewer slots shows in the first window) and measures windows of completions, as many as
the limit. After each window:

* first window only: the server's effective parallelism is estimated by Little's law,
  throughput (tokens/s) over the best single-request rate. If it is well below the limit
  (``QUEUE_FRACTION``), requests queued in the server: the limit drops to that estimate plus
  ``QUEUE_MARGIN`` (a server with one slot gets 2), and the next window checks that no
  throughput was lost by coming down;
* then the limit doubles (up to ``LEARN_CAP`` per host) while throughput beats the previous
  window by ``GAIN_MARGIN``. When it does not, the limit is settled for the rest of the batch,
  one step back if latency per token also rose by ``QUEUE_MARGIN`` (more in flight only queued).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ..core.errors import InvalidParamsError

logger = logging.getLogger(__name__)
T = TypeVar("T")

LEARN_START = 4
LEARN_CAP = 16
GAIN_MARGIN = 0.10
QUEUE_MARGIN = 0.25
QUEUE_FRACTION = 0.4


class FixedLimit:
    """A limit that does not change: configured, or the servers' own slots."""

    def __init__(self, limit: int, source: str) -> None:
        self.limit = limit
        self.source = source
        self.trace = [limit]

    def start(self) -> None:
        pass

    def observe(self, latency: float, work: float = 1.0) -> None:
        pass

    def describe(self) -> str:
        return f"concurrency {self.limit} ({self.source})"


class AdaptiveLimit:
    """A limit learned from throughput and latency, window by window (see the module doc).

    ``work`` is what a completion produced (generated tokens for chat, inputs for embed), so
    replies of different lengths compare fairly; failed requests report 0 and only count
    towards closing a window.
    """

    source = "learned"

    def __init__(self, start: int = LEARN_START, cap: int = LEARN_CAP, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cap = max(1, cap)
        self.limit = max(1, min(start, self.cap))
        self.growing = True
        self.trace = [self.limit]
        self._clock = clock
        self._prev: tuple[float, float, int] | None = None  # throughput, latency per work, limit
        self._open(clock())

    def _open(self, now: float) -> None:
        self._t0, self._size = now, max(self.limit, 2)
        self._n, self._work, self._latency, self._best_rate = 0, 0.0, 0.0, 0.0

    def start(self) -> None:
        """Open the first window now (when the first request goes out)."""
        self._open(self._clock())

    def observe(self, latency: float, work: float = 1.0) -> None:
        """Record one completed request."""
        if not self.growing:
            return
        self._n += 1
        if work > 0:
            self._work += work
            self._latency += latency
            self._best_rate = max(self._best_rate, work / max(latency, 1e-6))
        if self._n < self._size:
            return
        now = self._clock()
        if self._work > 0:
            self._decide(self._work / max(now - self._t0, 1e-6), self._latency / self._work)
        self._open(now)

    def _decide(self, throughput: float, latency_per_work: float) -> None:
        served = throughput / self._best_rate  # requests the server actually ran at once
        prev, self._prev = self._prev, (throughput, latency_per_work, self.limit)
        if prev is None and served < self.limit * QUEUE_FRACTION:
            # Started above the server's slots: come down to what it serves, then compare.
            self.limit = max(1, min(self.cap, math.ceil(served * (1 + QUEUE_MARGIN))))
        elif prev is not None and prev[2] > self.limit:
            if throughput < prev[0] * (1 - GAIN_MARGIN):
                self.limit = prev[2]  # coming down lost throughput: undo
            self.growing = False
        elif prev is None or throughput >= prev[0] * (1 + GAIN_MARGIN):
            self.limit = min(self.limit * 2, self.cap)
            self.growing = self.limit < self.cap
        else:
            if latency_per_work > prev[1] * (1 + QUEUE_MARGIN):
                self.limit = prev[2]  # more in flight only queued in the server
            self.growing = False
        if self.limit != self.trace[-1]:
            self.trace.append(self.limit)
        logger.debug("window: %.1f work/s, %.2f served at once, %.4f s per unit of work "
                     "-> limit %d%s", throughput, served, latency_per_work, self.limit,
                     "" if self.growing else " (settled)")

    def describe(self) -> str:
        ramp = "→".join(str(v) for v in self.trace)
        return f"concurrency {self.limit} (learned: {ramp})"


Limit = FixedLimit | AdaptiveLimit


def choose_limit(concurrency: int | None, hints: Sequence[int | None]) -> Limit:
    """The limit for a batch over servers with capacity ``hints`` (one per server, None when
    a server does not publish its slots): configured, the servers' slots, or learned."""
    hosts = max(1, len(hints))
    if concurrency is not None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidParamsError(
                f"concurrency must be a whole number >= 1 (or None to use the server's "
                f"capacity), not {concurrency!r}.", param="concurrency")
        return FixedLimit(concurrency, "configured")
    if hints and all(h for h in hints):
        return FixedLimit(sum(h for h in hints if h), "server slots")
    return AdaptiveLimit(LEARN_START * hosts, LEARN_CAP * hosts)


async def dispatch(count: int, job: Callable[[int], Awaitable[T]], limit: Limit,
                   handle: Callable[[int, T], None],
                   work: Callable[[T], float] = lambda _: 1.0) -> None:
    """Run ``job(i)`` for ``i`` in ``range(count)`` with at most ``limit.limit`` at once.

    ``handle(i, result)`` sees each result as it completes; if it raises, the rest stop.
    Leaving early for any reason (an error, cancellation, an interrupt) cancels every running
    job and waits for each to finish its cleanup, so every connection is closed on return.
    """
    pending: dict[asyncio.Future[Any], tuple[int, float]] = {}
    nxt = 0
    limit.start()
    try:
        while nxt < count or pending:
            while nxt < count and len(pending) < limit.limit:
                pending[asyncio.ensure_future(job(nxt))] = (nxt, time.monotonic())
                nxt += 1
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            now = time.monotonic()
            stop: BaseException | None = None
            for fut in sorted(done, key=lambda f: pending[f][0]):
                i, started = pending.pop(fut)
                result = fut.result()
                limit.observe(now - started, work(result))
                try:
                    handle(i, result)
                except Exception as exc:  # record the rest of this round first, then stop
                    stop = stop or exc
            if stop is not None:
                raise stop
    finally:
        if pending:
            for fut in pending:
                fut.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
