"""What a worker lends its connectors: other connectors by name, and a sink that writes through the fleet.

A CSV ingest with a sink sends each batch as an `operation.execute` to the dispatcher, like any caller,
so batches are routed, retried, metered and audited as ordinary operations; progress goes back to the
original caller's reply queue as `operation.execute.progress` messages.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from scf.connectors.sources import SinkTarget
from scf.fleet import amqp
from scf.fleet.rpc import RpcClient
from scf.schemas.control import MessageType
from scf.schemas.errors import ErrorCode, TransientError, error_from_info
from scf.schemas.operation import MAX_TIMEOUT_SECONDS, OperationRequest, OperationResult

log = structlog.get_logger(__name__)

PROGRESS_SUFFIX = ".progress"


class FleetSink:
    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

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
        reply = await self.rpc.call(
            MessageType.OPERATION_EXECUTE,
            request.model_dump(exclude_none=True),
            timeout=remaining + 5,
            message_id=request.operation_id,
        )
        result = OperationResult.model_validate(reply)
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
