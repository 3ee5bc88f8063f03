"""What a worker lends its connectors: other connectors by name, and a sink for parsed records.

A CSV ingest with a sink writes each batch as an ordinary operation on the target connector. When this
worker serves the target's type, the batch runs here, on the worker's own connector, through the same
path a message takes (registry check, idempotency key, breaker, retries, counted in the connector's
metrics), with no round trip through the broker. Otherwise it goes as an `operation.execute` to the
dispatcher, like any caller's. Progress goes back to the original caller's reply queue as
`operation.execute.progress` messages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from prometheus_client import Counter

from scf.connectors.sources import SinkTarget
from scf.fleet import amqp
from scf.fleet.rpc import RpcClient
from scf.schemas.control import MessageType
from scf.schemas.errors import ErrorCode, TransientError, error_from_info
from scf.schemas.operation import MAX_TIMEOUT_SECONDS, OperationRequest, OperationResult

log = structlog.get_logger(__name__)

#: Sink batches by route: run on this worker's own connector ("local") or sent through the fleet.
LOCAL_BATCHES = Counter("scf_sink_batches_total", "Sink batches written, by route", ["route"])

PROGRESS_SUFFIX = ".progress"


#: Runs a batch in this worker; None when this worker does not serve the target (the fleet must).
LocalRunner = Callable[[OperationRequest, float], Awaitable[OperationResult | None]]


class FleetSink:
    def __init__(self, rpc: RpcClient, local: LocalRunner | None = None) -> None:
        self.rpc = rpc
        self.local = local

    async def write(
        self, target: SinkTarget, records: list[dict[str, Any]], idempotency_key: str, deadline: float
    ) -> int:
        remaining = deadline - time.time()
        if remaining <= 0:
            raise TransientError("the ingest's deadline passed", code=ErrorCode.DEADLINE_EXCEEDED)
        data, parameters = target.request_body(records)
        request = OperationRequest(
            service_name=target.service_name,
            operation=target.operation,
            data=data,
            parameters=parameters,
            idempotency_key=idempotency_key,
            timeout=min(remaining, MAX_TIMEOUT_SECONDS),
        ).with_defaults()
        result = None if self.local is None else await self.local(request, deadline)
        if result is None:
            LOCAL_BATCHES.labels("fleet").inc()
            reply = await self.rpc.call(
                MessageType.OPERATION_EXECUTE,
                request.model_dump(exclude_none=True),
                timeout=remaining + 5,
                message_id=request.operation_id,
            )
            result = OperationResult.model_validate(reply)
        else:
            LOCAL_BATCHES.labels("local").inc()
        if result.error is not None:
            raise error_from_info(result.error)
        return result.records_affected


class ProgressPublisher:
    """Called from any thread with the records done; sends at most one progress message per interval."""

    def __init__(
        self,
        channel: AbstractChannel,
        request: AbstractIncomingMessage,
        operation_id: str,
        interval: float = 1.0,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._channel = channel
        self._request = request
        self._operation_id = operation_id
        self._interval = interval
        self._last = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last < self._interval or not self._request.reply_to:
            return
        self._last = now
        self._loop.call_soon_threadsafe(self._spawn, done)

    def _spawn(self, done: int) -> None:
        task = self._loop.create_task(self._publish(done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, done: int) -> None:
        body = amqp.encode({"operation_id": self._operation_id, "records_done": done})
        message = amqp.build_message(
            body,
            message_type=f"{self._request.type}{PROGRESS_SUFFIX}",
            correlation_id=self._request.correlation_id,
            reply_to=None,
            persistent=False,
        )
        try:
            await self._channel.default_exchange.publish(
                message, self._request.reply_to or "", mandatory=False
            )
        except Exception as exc:  # progress is a courtesy: never fail the operation for it
            log.info("progress_publish_failed", error=repr(exc))
