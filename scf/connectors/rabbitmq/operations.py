"""The operations as thin I/O on one channel, after `plans.py` has parsed and checked everything.

Publishing waits for the broker's confirm of every message. Consuming is `basic.get` in a loop (never a
long-lived consumer) and settles the batch once it is decoded into the reply: a failure before that
requeues it all; a reply lost after it loses the batch (at-least-once up to the reply).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aio_pika.exceptions import ChannelInvalidStateError, ChannelNotFoundEntity
from pamqp.common import FieldTable

from scf.connectors.rabbitmq.messages import decode_body, jsonable
from scf.connectors.rabbitmq.requests import (
    BindParameters,
    DeclareExchangeParameters,
    DeclareQueueParameters,
    DeleteExchangeParameters,
    DeleteQueueParameters,
)
from scf.schemas.operation import OperationOutcome

#: First and longest pause between two empty `basic.get` while a consume waits for messages.
POLL_FIRST, POLL_MAX = 0.02, 0.25


@dataclass(frozen=True)
class Outgoing:
    """Everything to publish, encoded: the bodies and the properties they share."""

    exchange: str
    routing_key: str
    bodies: Sequence[bytes]
    message_ids: Sequence[str]
    content_type: str
    persistent: bool
    mandatory: bool
    headers: dict[str, Any] | None = None
    priority: int | None = None
    expiration_ms: int | None = None
    correlation_id: str | None = None

    def message(self, index: int) -> aio_pika.Message:
        return aio_pika.Message(
            self.bodies[index],
            content_type=self.content_type,
            message_id=self.message_ids[index],
            headers=self.headers,
            priority=self.priority,
            # aio-pika takes seconds and truncates `seconds * 1000`: 1001 / 1000 * 1000 is 1000.99...
            expiration=None if self.expiration_ms is None else (self.expiration_ms + 0.5) / 1000,
            correlation_id=self.correlation_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            if self.persistent
            else aio_pika.DeliveryMode.NOT_PERSISTENT,
            timestamp=time.time(),
        )


async def publish(channel: AbstractChannel, outgoing: Outgoing) -> None:
    """Publish every message and wait for all confirms; the first failure is raised.

    The publishes are pipelined on one channel (written in order, confirmed together), so a batch keeps
    its order in a queue. Raises the driver's PublishError (unroutable) or DeliveryError (nack).
    """
    exchange = (
        channel.default_exchange
        if outgoing.exchange == ""
        else await channel.get_exchange(outgoing.exchange, ensure=False)
    )
    results = await asyncio.gather(
        *(
            exchange.publish(outgoing.message(i), outgoing.routing_key, mandatory=outgoing.mandatory)
            for i in range(len(outgoing.bodies))
        ),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        # When the broker closes the channel (e.g. 404 for a missing exchange) every pending publish
        # fails; the broker's own reason is more useful than "channel closed".
        raise min(
            failures, key=lambda exc: isinstance(exc, ChannelInvalidStateError | asyncio.CancelledError)
        )


@dataclass(frozen=True)
class Take:
    queue: str
    max_messages: int
    ack: bool
    wait: float
    #: Seconds after which no more messages are taken, so what was taken is settled and answered
    #: before the operation's deadline (past it, everything taken would be requeued and the work lost).
    time_limit: float


async def consume(channel: AbstractChannel, take: Take) -> list[dict[str, Any]]:
    """Up to `max_messages`, waiting at most `wait` seconds for the first one.

    With `ack`, one `basic.ack` (multiple) settles the batch after all are decoded. Without it (a peek)
    one `basic.nack` (multiple, requeue) puts them all back in place: they stay in the queue, marked
    redelivered (and a quorum queue counts it as a delivery towards its `x-delivery-limit`).
    """
    queue = await channel.get_queue(take.queue, ensure=False)
    taken: list[dict[str, Any]] = []
    last: AbstractIncomingMessage | None = None
    started = time.monotonic()
    pause = POLL_FIRST
    # On any failure the pool closes this channel, and the broker requeues whatever it still holds.
    while len(taken) < take.max_messages:
        elapsed = time.monotonic() - started
        if taken and elapsed >= take.time_limit:
            break
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            if taken or elapsed >= take.wait:
                break
            await asyncio.sleep(min(pause, max(0.0, take.wait - elapsed)))
            pause = min(pause * 2, POLL_MAX)
            continue
        taken.append(describe(message))
        last = message
    if last is not None:
        if take.ack:
            await last.ack(multiple=True)
        else:
            await last.nack(multiple=True, requeue=True)
    return taken


def describe(message: AbstractIncomingMessage) -> dict[str, Any]:
    """One consumed message as JSON."""
    body, encoding = decode_body(message.body, message.content_type)
    described: dict[str, Any] = {
        "body": body,
        "body_encoding": encoding,
        "content_type": message.content_type,
        "headers": jsonable(dict(message.headers or {})),
        "exchange": message.exchange,
        "routing_key": message.routing_key,
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "redelivered": bool(message.redelivered),
    }
    if message.priority is not None:
        described["priority"] = message.priority
    if message.timestamp is not None:
        described["timestamp"] = jsonable(message.timestamp)
    return described


async def queue_counts(channel: AbstractChannel, name: str) -> dict[str, Any]:
    """Passive declare: counts without creating. A missing queue raises the broker's 404."""
    queue = await channel.declare_queue(name, passive=True)
    result = queue.declaration_result
    return {"queue": name, "message_count": result.message_count, "consumer_count": result.consumer_count}


async def queue_exists(channel: AbstractChannel, name: str) -> bool:
    """Whether `name` exists. The broker answers a missing queue by closing the channel: use a
    channel of its own (the caller drops it)."""
    try:
        await channel.declare_queue(name, passive=True)
    except ChannelNotFoundEntity:
        return False
    return True


async def declare_queue(channel: AbstractChannel, params: DeclareQueueParameters) -> OperationOutcome:
    queue = await channel.declare_queue(
        params.queue,
        durable=params.durable,
        exclusive=params.exclusive,
        auto_delete=params.auto_delete,
        arguments=params.arguments.to_amqp() or None,
    )
    result = queue.declaration_result
    return OperationOutcome(
        records_affected=1,
        result_data={
            "queue": params.queue,
            "message_count": result.message_count,
            "consumer_count": result.consumer_count,
        },
    )


async def declare_exchange(channel: AbstractChannel, params: DeclareExchangeParameters) -> OperationOutcome:
    await channel.declare_exchange(
        params.exchange, params.type, durable=params.durable, auto_delete=params.auto_delete
    )
    return OperationOutcome(
        records_affected=1, result_data={"exchange": params.exchange, "type": params.type}
    )


async def delete_exchange(channel: AbstractChannel, params: DeleteExchangeParameters) -> OperationOutcome:
    await channel.exchange_delete(params.exchange, if_unused=params.if_unused)
    return OperationOutcome(records_affected=1, result_data={"exchange": params.exchange, "deleted": True})


async def bind(channel: AbstractChannel, params: BindParameters, *, unbind: bool) -> OperationOutcome:
    queue = await channel.get_queue(params.queue, ensure=False)
    # JSON values are a subset of AMQP field values.
    arguments = cast("FieldTable | None", params.arguments)
    if unbind:
        await queue.unbind(params.exchange, params.routing_key, arguments=arguments)
    else:
        await queue.bind(params.exchange, params.routing_key, arguments=arguments)
    return OperationOutcome(
        records_affected=1,
        result_data={
            "queue": params.queue,
            "exchange": params.exchange,
            "routing_key": params.routing_key,
            "bound": not unbind,
        },
    )


async def delete_queue(channel: AbstractChannel, params: DeleteQueueParameters) -> OperationOutcome:
    result = await channel.queue_delete(params.queue, if_unused=params.if_unused, if_empty=params.if_empty)
    removed = int(result.message_count or 0)
    return OperationOutcome(
        records_affected=removed,
        result_data={"queue": params.queue, "deleted": True, "message_count": removed},
    )


async def purge_queue(channel: AbstractChannel, name: str) -> OperationOutcome:
    queue = await channel.get_queue(name, ensure=False)
    result = await queue.purge()
    purged = int(result.message_count or 0)
    return OperationOutcome(records_affected=purged, result_data={"queue": name, "purged": purged})
