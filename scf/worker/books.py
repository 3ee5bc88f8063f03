"""A worker's bookkeeping, kept off each operation's critical path: stored results, metrics, breakers.

Results: each is stored from its reply's own bytes; stores that arrive while one pipeline is in flight
go together in the next, so under load many results cost one round trip. Metrics and breaker successes
are counted in memory and flushed in one pipeline each, at most once per `interval` (the first
operation after a quiet spell is flushed at once, so a lone call's metrics are readable right after it);
`close` flushes what is left, so a graceful stop loses no count.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from scf.fleet.state import StateStore
from scf.fleet.tally import Tally
from scf.schemas.errors import ConnectorError
from scf.schemas.operation import OperationResult
from scf.worker.shared_breakers import RedisBreakerBoard

log = structlog.get_logger(__name__)

#: Results per pipeline: bounds a pipeline's memory (a result may be large) and its round trip.
MAX_RESULTS_PER_PIPELINE = 128


class ResultWriter:
    """Stores results in Redis, coalescing concurrent stores into one pipeline."""

    def __init__(self, state: StateStore, ttl: int) -> None:
        self.state = state
        self.ttl = ttl
        self._pending: list[tuple[str, bytes, asyncio.Future[Exception | None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def store(self, operation_id: str, body: bytes) -> None:
        """Returns once stored; raises the store's typed error (STATE_UNAVAILABLE) if it failed."""
        done: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self._pending.append((operation_id, body, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="result-writer")
        error = await done
        if error is not None:
            raise error

    async def _write(self) -> None:
        while self._pending:
            batch = self._pending[:MAX_RESULTS_PER_PIPELINE]
            del self._pending[:MAX_RESULTS_PER_PIPELINE]
            error: Exception | None = None
            try:
                await self.state.store_results([(op, body) for op, body, _ in batch], self.ttl)
            except Exception as exc:  # told to every waiter, never lost in a task nobody awaits
                error = exc
            for _, _, done in batch:
                if not done.done():
                    done.set_result(error)


class Books:
    """The metrics tally and the breakers' successes, flushed in the background."""

    def __init__(
        self,
        state: StateStore,
        breakers: RedisBreakerBoard,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.breakers = breakers
        self.interval = interval
        self.clock = clock
        self.tally = Tally()
        self._due = asyncio.Event()
        self._stop = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="worker-books")

    def count(self, service_name: str, result: OperationResult) -> None:
        self.tally.count(service_name, result, self.clock())
        self._due.set()

    async def flush(self) -> None:
        """Everything counted so far, to Redis; never raises (counts that failed stay for the next)."""
        async with self._flushing:
            taken = self.tally.take()
            if taken:
                try:
                    await self.state.add_tally(taken)
                except ConnectorError as exc:
                    self.tally.restore(taken, self.clock())
                    log.warning("metrics_flush_failed", code=exc.code)
                except Exception as exc:  # a bug here must not stop the loop, nor lose the counts
                    self.tally.restore(taken, self.clock())
                    log.error("metrics_flush_failed", error=type(exc).__name__)
                except BaseException:  # cancelled mid-flush: keep the counts for whoever flushes next
                    self.tally.restore(taken, self.clock())
                    raise
            try:
                await self.breakers.flush()
            except Exception as exc:  # it handles Redis itself; anything else is a bug to log, not die of
                log.error("breaker_flush_failed", error=type(exc).__name__)

    async def close(self) -> None:
        """Stop the loop and flush what is left (the worker has drained: nothing is counted after).
        The loop is asked to stop, not cancelled: a flush is never cut off half way."""
        self._stop.set()
        self._due.set()
        if self._loop is not None:
            await asyncio.gather(self._loop, return_exceptions=True)
        await self.flush()

    async def _run(self) -> None:
        while not self._stop.is_set():
            # nothing counted within an interval: still flush breaker successes and refresh their views
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), self.interval)
            if self._stop.is_set():
                return
            self._due.clear()
            await self.flush()
            with contextlib.suppress(TimeoutError):  # at most one flush per interval
                await asyncio.wait_for(self._stop.wait(), self.interval)
