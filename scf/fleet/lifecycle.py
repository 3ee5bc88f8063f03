"""What dispatcher and worker share as long-running consumers: in-flight tracking and graceful draining.

On stop a service cancels its consumers first (no new deliveries), waits up to the grace period for
in-flight messages to settle, then cancels the rest; unacked messages go back to RabbitMQ.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from scf.fleet.metrics import INFLIGHT
from scf.fleet.settle import settle_crashed

log = structlog.get_logger(__name__)

MessageHandler = Callable[[AbstractIncomingMessage], Awaitable[None]]


class FleetService(ABC):
    role: str = "service"

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._ready = False
        self._stopping = False

    @property
    def ready(self) -> bool:
        return self._ready and not self._stopping

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def _close(self) -> None:
        """Release connections after draining."""

    async def consume(
        self, queue: AbstractQueue, handler: MessageHandler, *, dead_letters_on_reject: bool = True
    ) -> None:
        """Consume `queue` with `handler`; `dead_letters_on_reject` says the queue has a dead-letter
        exchange, so a message its handler crashed on is rejected there (else it is dropped, counted)."""
        tag = await queue.consume(self._tracked(handler, queue.name, dead_letters_on_reject))
        self._consumers.append((queue, tag))

    def _tracked(self, handler: MessageHandler, queue: str, dead_letters: bool) -> MessageHandler:
        inflight = INFLIGHT.labels(self.role)  # once per consumer, not twice per message

        async def run(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            inflight.inc()
            try:
                await handler(message)
            except Exception as exc:
                # A bug (or a message no handler foresaw) must never hold a delivery unacked: that
                # costs a prefetch slot until the channel closes, and a few such messages stop the
                # consumer. Settle it: to the queue's dead letters, or (without any) a counted drop.
                await settle_crashed(message, queue, dead_letters, exc)
            finally:
                inflight.dec()
                self._tasks.discard(task)

        return run

    async def stop(self, grace: float) -> None:
        if self._stopping:
            return
        self._stopping = True
        for queue, tag in self._consumers:
            try:
                await queue.cancel(tag)
            except Exception as exc:  # the channel may already be gone; draining still matters
                log.info("consumer_cancel_failed", role=self.role, error=str(exc))
        pending = {t for t in self._tasks if not t.done()}
        if pending:
            log.info("draining", role=self.role, in_flight=len(pending), grace=grace)
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                log.warning("drain_timeout", role=self.role, cancelled=len(still))
                await asyncio.wait(still, timeout=5)
        await self._close()
        log.info("stopped", role=self.role)
