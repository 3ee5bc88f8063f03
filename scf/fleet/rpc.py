"""RPC over AMQP: one exclusive reply queue per client, any number of concurrent calls by correlation id.

`RpcClient` is the transport (also used by the dispatcher to ask a worker for a connection test);
`FleetClient` in `scf.fleet.client` offers the factory's calls on top of it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Self

import structlog
from aio_pika import Message
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from pydantic import BaseModel, ValidationError

from scf.fleet import amqp, broker_endpoints, tracing
from scf.fleet.access import ACTING_FOR, forwarding_headers
from scf.schemas import topology
from scf.schemas.errors import (
    ConnectorError,
    ErrorCode,
    ErrorInfo,
    PermanentError,
    TransientError,
    error_from_info,
)

log = structlog.get_logger(__name__)

#: Who a call is made for (e.g. the HTTP client behind the gateway); sent as a header for the audit log.
CALLER: ContextVar[str | None] = ContextVar("scf_caller", default=None)
CALLER_HEADER = "x-scf-caller"

ProgressCallback = Callable[[dict[str, Any]], None]


class RpcTimeoutError(TransientError):
    """No reply arrived within the call's timeout; the request may still be running."""


class ReplyQueueLost(TransientError):
    """The broker connection dropped while the call waited: its reply queue went with it (an exclusive
    queue lives as long as its connection), so a reply sent meanwhile is gone. The request was confirmed
    before, so it is queued (or done): its stored result is where the answer is."""


class RpcClient:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        *,
        owns_connection: bool = False,
        user_id: str | None = None,
    ) -> None:
        self._connection = connection
        # RabbitMQ checks `user_id` against the connection's login, so the audit log can trust it.
        self._user_id = user_id
        self._owns_connection = owns_connection
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._progress: dict[str, ProgressCallback] = {}
        self._recoverable: set[str] = set()  # calls told at a reconnection (ReplyQueueLost), not left waiting
        self._exchanges: dict[str, AbstractExchange] = {}

    @classmethod
    async def connect(cls, url: str, name: str = "scf-client") -> RpcClient:
        user = broker_endpoints.login_of(url)
        client = cls(await amqp.connect(url, name), owns_connection=True, user_id=user)
        await client.start()
        return client

    async def start(self) -> None:
        self._channel = await amqp.open_channel(self._connection)
        self._queue = await self._channel.declare_queue("", exclusive=True, auto_delete=True)
        await self._queue.consume(self._on_reply, no_ack=True)
        callbacks = getattr(self._connection, "reconnect_callbacks", None)
        if callbacks is not None:  # a robust connection: told after it reconnected and restored channels
            callbacks.add(self._on_reconnected)

    def _on_reconnected(self, *_: Any) -> None:
        for correlation_id in self._recoverable:
            future = self._pending.get(correlation_id)
            if future is not None and not future.done():
                future.set_exception(
                    ReplyQueueLost(
                        "the broker connection was lost while waiting for the reply",
                        code=ErrorCode.CONNECTION_FAILED,
                    )
                )

    async def close(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(TransientError("client closed before the reply arrived"))
        self._pending.clear()
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        if self._owns_connection:
            await self._connection.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def connection(self) -> AbstractRobustConnection:
        """The AMQP connection the calls go over (e.g. for a subscription of the same client)."""
        return self._connection

    @property
    def connected(self) -> bool:
        channel = self._channel
        return not self._connection.is_closed and channel is not None and not channel.is_closed

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def call(
        self,
        message_type: str,
        body: BaseModel | dict[str, Any],
        *,
        timeout: float,
        exchange: str = topology.REQUEST_EXCHANGE,
        routing_key: str = topology.REQUEST_ROUTING_KEY,
        message_id: str | None = None,
        headers: dict[str, Any] | None = None,
        expiration: float | None = None,
        on_progress: ProgressCallback | None = None,
        recoverable: bool = False,
    ) -> dict[str, Any]:
        """Publish one request (confirmed) and wait for its reply. Raises RpcTimeoutError, publish errors;
        `recoverable`: ReplyQueueLost as soon as the connection came back from a drop (the caller fetches
        the stored result), instead of waiting out the timeout for a reply that is gone."""
        return await self.call_raw(
            message_type,
            amqp.encode(body),
            timeout=timeout,
            exchange=exchange,
            routing_key=routing_key,
            message_id=message_id,
            headers=headers,
            expiration=expiration,
            on_progress=on_progress,
            recoverable=recoverable,
        )

    async def call_raw(
        self,
        message_type: str,
        body: bytes,
        *,
        timeout: float,
        exchange: str = topology.REQUEST_EXCHANGE,
        routing_key: str = topology.REQUEST_ROUTING_KEY,
        message_id: str | None = None,
        headers: dict[str, Any] | None = None,
        content_type: str = amqp.JSON,
        expiration: float | None = None,
        on_progress: ProgressCallback | None = None,
        recoverable: bool = False,
    ) -> dict[str, Any]:
        """`expiration` (seconds): the broker dead-letters the request if it is still queued by then."""
        assert self._queue is not None, "RpcClient.start() was not called"
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        if on_progress is not None:
            self._progress[correlation_id] = on_progress
        if recoverable:
            self._recoverable.add(correlation_id)
        try:
            with tracing.span("scf.client", message_type, {"messaging.destination": routing_key}):
                message = self._message(
                    message_type, body, correlation_id, self._queue.name, message_id, headers, expiration
                )
                message.content_type = content_type
                await amqp.publish(await self._exchange(exchange), message, routing_key)
                async with asyncio.timeout(timeout):
                    return await future
        except TimeoutError:
            raise RpcTimeoutError(
                f"no reply to {message_type} within {timeout:g}s", code=ErrorCode.TIMEOUT
            ) from None
        finally:
            self._pending.pop(correlation_id, None)
            self._progress.pop(correlation_id, None)
            self._recoverable.discard(correlation_id)

    async def send(
        self,
        message_type: str,
        body: BaseModel | dict[str, Any],
        *,
        message_id: str,
        exchange: str = topology.REQUEST_EXCHANGE,
        routing_key: str = topology.REQUEST_ROUTING_KEY,
    ) -> None:
        """Publish one request with no reply queue (fire and forget): returns once the broker confirmed
        it. The fleet keeps its result (`operation.result`), and a refusal as a dead letter."""
        with tracing.span("scf.client", message_type, {"messaging.destination": routing_key}):
            message = self._message(message_type, amqp.encode(body), None, None, message_id, None, None)
            await amqp.publish(await self._exchange(exchange), message, routing_key)

    def _message(
        self,
        message_type: str,
        body: bytes,
        correlation_id: str | None,
        reply_to: str | None,
        message_id: str | None,
        headers: dict[str, Any] | None,
        expiration: float | None,
    ) -> Message:
        message = amqp.build_message(
            body,
            message_type=message_type,
            correlation_id=correlation_id,
            reply_to=reply_to,
            message_id=message_id,
            headers=headers,
            expiration=expiration,
        )
        message.user_id = self._user_id
        caller = CALLER.get()
        if caller is not None:
            message.headers = {**(message.headers or {}), CALLER_HEADER: caller}
        acting_for = ACTING_FOR.get()
        if acting_for is not None:  # believed by the fleet only from a trusted forwarder's login
            message.headers = {**(message.headers or {}), **forwarding_headers(acting_for)}
        if tracing.active():
            message.headers = dict(tracing.inject(dict(message.headers or {})))
        return message

    async def _exchange(self, name: str) -> AbstractExchange:
        assert self._channel is not None
        if name == "":
            return self._channel.default_exchange
        if name not in self._exchanges:
            self._exchanges[name] = await self._channel.get_exchange(name, ensure=False)
        return self._exchanges[name]

    def _on_progress(self, message: AbstractIncomingMessage) -> None:
        callback = self._progress.get(message.correlation_id or "")
        if callback is None:
            return
        try:
            body = amqp.decode(message.body)
        except (ValueError, RecursionError):
            return
        if isinstance(body, dict):
            try:
                callback(body)
            except Exception as exc:  # a caller's progress hook must never break reply delivery
                log.warning("progress_callback_failed", error=repr(exc))

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        if (message.type or "").endswith(".progress"):
            self._on_progress(message)
            return
        future = self._pending.get(message.correlation_id or "")
        if future is None or future.done():
            log.info("reply_unmatched", correlation_id=message.correlation_id)
            return
        try:
            body = amqp.decode(message.body)
        except (ValueError, RecursionError):
            future.set_exception(
                TransientError("the fleet sent an unreadable reply", code=ErrorCode.INTERNAL)
            )
            return
        future.set_result(body if isinstance(body, dict) else {"result": body})


def reply_error(reply: dict[str, Any]) -> ConnectorError:
    """The typed error a failed reply carries (`{"status": "failed", "error": {...}}`)."""
    try:
        return error_from_info(ErrorInfo.model_validate(reply.get("error")))
    except ValidationError:
        return PermanentError("the fleet sent a reply without a readable error", code=ErrorCode.INTERNAL)
