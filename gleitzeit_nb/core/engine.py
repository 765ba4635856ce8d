"""Tasks and the ``ExecutionEngine`` that runs them on registered providers."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import LLMError, ProviderTimeoutError, ProviderUnavailableError
from .registry import ProtocolProviderRegistry

logger = logging.getLogger(__name__)


class TaskStatus(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass
class Task:
    """One protocol call: ``method`` of ``protocol`` with ``params``.

    ``provider_id`` pins the task to one provider; otherwise the registry chooses.
    """

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    protocol: str = "llm/v1"
    method: str = "chat"
    params: dict[str, Any] = field(default_factory=dict)
    provider_id: str | None = None


@dataclass
class TaskResult:
    """What running a task produced; ``error`` is the typed exception when ``status`` is FAILED."""

    task_id: str
    status: TaskStatus
    result: Any = None
    error: BaseException | None = None
    provider_id: str | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    attempts: int = 0

    @property
    def duration(self) -> float:
        """Wall-clock seconds from start to finish."""
        return self.finished_at - self.started_at

    @property
    def ok(self) -> bool:
        return self.status is TaskStatus.COMPLETED


class ExecutionEngine:
    """Runs tasks on the registry's providers.

    ``execute_task`` never raises for a failed task (the error is in the result) but lets
    cancellation through. When a provider is unreachable (refused, or no connection within
    its connect timeout) it is marked unhealthy and the next healthy one is tried.
    """

    def __init__(self, registry: ProtocolProviderRegistry, *, failover: bool = True) -> None:
        self.registry = registry
        self.failover = failover

    async def execute_task(self, task: Task) -> TaskResult:
        res = TaskResult(task_id=task.id, status=TaskStatus.RUNNING, started_at=time.time())
        tried: set[str] = set()
        try:
            while True:
                provider = (self.registry.get_provider(task.provider_id) if task.provider_id
                            else self.registry.select_provider(task.protocol, exclude=tried))
                res.provider_id, res.attempts = provider.provider_id, res.attempts + 1
                try:
                    with provider.track_request():
                        res.result = await provider.handle_request(task.method, dict(task.params))
                    self.registry.mark_health(provider.provider_id, True)
                    res.status = TaskStatus.COMPLETED
                    break
                except (ProviderUnavailableError, ProviderTimeoutError) as exc:
                    if isinstance(exc, ProviderTimeoutError) and exc.phase != "connect":
                        raise  # it answered: a slow model, not an unreachable host
                    self.registry.mark_health(provider.provider_id, False)
                    tried.add(provider.provider_id)
                    others = [p for p in self.registry.get_providers(task.protocol)
                              if p.provider_id not in tried]
                    if task.provider_id or not self.failover or not others:
                        raise
                    logger.warning("task %s: provider %s unreachable, trying %s",
                                   task.id, provider.provider_id, others[0].provider_id)
        except LLMError as exc:
            res.status, res.error = TaskStatus.FAILED, exc
        except Exception as exc:  # a provider bug must not escape a batch either; keep the object
            logger.exception("task %s failed with an unexpected error", task.id)
            res.status, res.error = TaskStatus.FAILED, exc
        finally:
            res.finished_at = time.time()
        logger.debug("task %s %s in %.3fs on %s", task.id, res.status.value, res.duration,
                     res.provider_id)
        return res

    async def execute_many(self, tasks: Iterable[Task], concurrency: int = 4) -> list[TaskResult]:
        """Run tasks with at most ``concurrency`` at once; results keep the input order.

        Cancelling the caller cancels every running task and waits for their cleanup.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        sem = asyncio.Semaphore(concurrency)

        async def run(task: Task) -> TaskResult:
            async with sem:
                return await self.execute_task(task)

        jobs = [asyncio.ensure_future(run(t)) for t in tasks]
        try:
            return list(await asyncio.gather(*jobs))
        except BaseException:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            raise
