"""From a parsed request to a plan: check names and limits, encode bodies.

Everything here happens before any I/O, so a malformed request never reaches the broker. A plan is a
coroutine over the connector's `Link`; most take one channel, `enqueue` takes two (a missing queue
closes the channel that asked about it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from aio_pika.abc import AbstractChannel

from scf.connectors.operation_table import Call, NoData
from scf.connectors.rabbitmq import operations as ops
from scf.connectors.rabbitmq.channels import Link
from scf.connectors.rabbitmq.messages import (
    DEFAULT_CONTENT_TYPES,
    check_data_format,
    check_size,
    encode_body,
    message_ids,
)
from scf.connectors.rabbitmq.names import refuse_direct_route, refuse_fleet, refuse_reserved
from scf.connectors.rabbitmq.requests import (
    BindParameters,
    ConsumeParameters,
    DeclareQueueParameters,
    DeleteQueueParameters,
    EnqueueData,
    EnqueueParameters,
    PublishData,
    PublishParameters,
    QueueTarget,
)
from scf.schemas.configs.rabbitmq import RabbitMQConfig
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome, OperationRequest

Run = Callable[[Link], Awaitable[OperationOutcome]]
#: Messages one consume takes when `parameters.page_size` is unset.
DEFAULT_CONSUME = 10


def _limit(count: int, limit: int, what: str, setting: str) -> None:
    if count > limit:
        raise PermanentError(
            f"{what} has {count} entries; this connector allows {limit} (custom_config.{setting})",
            code=ErrorCode.LIMIT_EXCEEDED,
        )


def _encode(request: OperationRequest, bodies: list[Any], where: str, config: RabbitMQConfig) -> list[bytes]:
    """Each body as bytes; `where` is "data.message" (one) or a list field such as "data.messages"."""
    data_format = check_data_format(request.data_format)
    encoded = []
    for index, body in enumerate(bodies):
        place = where if where == "data.message" else f"{where}[{index}]"
        raw = encode_body(body, data_format, place)
        check_size(raw, config.max_message_bytes, place)
        encoded.append(raw)
    return encoded


def _id_key(request: OperationRequest) -> str | None:
    """What derived message ids hang on: the idempotency key, else the operation id (the same on a
    fleet retry or redelivery of this request)."""
    return request.idempotency_key or request.operation_id


def plan_publish(call: Call[PublishData, PublishParameters], config: RabbitMQConfig, budget: float) -> Run:
    data, params, request = call.data, call.parameters, call.request
    bodies = list(data.bodies)
    _limit(len(bodies), config.max_batch, "data.messages", "max_batch")
    if params.message_id is not None and len(bodies) > 1:
        raise PermanentError(
            "parameters.message_id applies to one message; a batch gets ids derived from idempotency_key",
            code=ErrorCode.INVALID_REQUEST,
        )
    exchange = config.default_exchange if params.exchange is None else params.exchange
    refuse_fleet(exchange, "parameters.exchange", config.allow_fleet_names)
    if exchange == "":
        refuse_direct_route(params.routing_key, "parameters.routing_key", config.allow_fleet_names)
    where = "data.messages" if data.messages is not None else "data.message"
    encoded = _encode(request, bodies, where, config)
    ids = [params.message_id] if params.message_id is not None else message_ids(_id_key(request), len(bodies))
    outgoing = ops.Outgoing(
        exchange=exchange,
        routing_key=params.routing_key,
        bodies=encoded,
        message_ids=ids,
        content_type=params.content_type or DEFAULT_CONTENT_TYPES[request.data_format],
        persistent=params.persistent,
        mandatory=params.mandatory,
        headers=params.headers,
        priority=params.priority,
        expiration_ms=params.expiration_ms,
        correlation_id=params.correlation_id,
    )

    async def run(link: Link) -> OperationOutcome:
        async with link.channel() as channel:
            await ops.publish(channel, outgoing)
        count = len(encoded)
        return OperationOutcome(
            records_processed=count,
            records_affected=count,
            result_data={"published": count, "message_ids": ids},
        )

    return run


def plan_enqueue(call: Call[EnqueueData, EnqueueParameters], config: RabbitMQConfig, budget: float) -> Run:
    data, params, request = call.data, call.parameters, call.request
    _limit(len(data.jobs), config.max_batch, "data.jobs", "max_batch")
    _creatable(params.queue, "parameters.queue", config)
    encoded = _encode(request, list(data.jobs), "data.jobs", config)
    ids = message_ids(_id_key(request), len(encoded))
    outgoing = ops.Outgoing(
        exchange="",
        routing_key=params.queue,
        bodies=encoded,
        message_ids=ids,
        content_type=params.content_type or DEFAULT_CONTENT_TYPES[request.data_format],
        persistent=True,
        mandatory=True,
        headers=params.headers,
        priority=params.priority,
        expiration_ms=params.expiration_ms,
        correlation_id=params.correlation_id,
    )

    async def run(link: Link) -> OperationOutcome:
        async with link.channel() as probe:
            exists = await ops.queue_exists(probe, params.queue)
        if not exists and not params.create:
            raise PermanentError(
                f"queue {params.queue!r} does not exist (parameters.create is false)",
                code=ErrorCode.NOT_FOUND,
            )
        async with link.channel() as channel:
            if not exists:
                await channel.declare_queue(
                    params.queue, durable=True, arguments={"x-queue-type": params.queue_type}
                )
            await ops.publish(channel, outgoing)
        count = len(encoded)
        return OperationOutcome(
            records_processed=count,
            records_affected=count,
            result_data={"enqueued": count, "queue": params.queue, "created": not exists, "message_ids": ids},
        )

    return run


def plan_consume(call: Call[NoData, ConsumeParameters], config: RabbitMQConfig, budget: float) -> Run:
    """Up to `page_size` messages; a full page answers a `next_page_token` (more may be waiting)."""
    params = call.parameters
    size = params.page_size or DEFAULT_CONSUME
    _limit(size, config.max_consume, "parameters.page_size", "max_consume")
    refuse_fleet(params.queue, "parameters.queue", config.allow_fleet_names)
    if call.page_token is not None and call.page_token != consume_token(params.queue):
        raise PermanentError(
            "page_token is not one a consume of this queue answered", code=ErrorCode.INVALID_REQUEST
        )
    # Leave part of the operation's budget for settling what was taken and replying.
    time_limit = max(0.0, budget - min(2.0, budget / 4))
    take = ops.Take(
        queue=params.queue,
        max_messages=size,
        ack=params.ack,
        wait=min(params.wait, time_limit),
        time_limit=time_limit,
    )

    async def run(link: Link) -> OperationOutcome:
        async with link.channel() as channel:
            messages = await ops.consume(channel, take)
        count = len(messages)
        return OperationOutcome(
            records_processed=count,
            records_affected=count if take.ack else 0,
            result_data={"queue": take.queue, "count": count, "acked": take.ack, "messages": messages},
            next_page_token=consume_token(take.queue) if count == size else None,
        )

    return run


def consume_token(queue: str) -> str:
    """A queue is its own cursor: the token only says "a full page came, ask this queue again"."""
    return "more:" + hashlib.sha256(queue.encode("utf-8", errors="surrogatepass")).hexdigest()[:32]


def _checked_dead_letters(params: DeclareQueueParameters, allowed: bool) -> None:
    dlx = params.arguments.dead_letter_exchange
    if dlx is not None:
        refuse_fleet(dlx, "parameters.arguments.x-dead-letter-exchange", allowed)
        if dlx == "" and params.arguments.dead_letter_routing_key is not None:
            refuse_fleet(params.arguments.dead_letter_routing_key, "x-dead-letter-routing-key", allowed)


def plan_declare_queue(
    call: Call[NoData, DeclareQueueParameters], config: RabbitMQConfig, budget: float
) -> Run:
    params = call.parameters
    _creatable(params.queue, "parameters.queue", config)
    _checked_dead_letters(params, config.allow_fleet_names)
    return _one_channel(lambda ch: ops.declare_queue(ch, params))


def _creatable(name: str, where: str, config: RabbitMQConfig) -> None:
    """A queue or exchange this connector may create or delete: not `amq.*`, not the fleet's own."""
    refuse_reserved(name, where)
    refuse_fleet(name, where, config.allow_fleet_names)


def _on_exchange(
    step: Callable[[AbstractChannel, Any], Awaitable[OperationOutcome]],
) -> Callable[[Call[NoData, Any], RabbitMQConfig, float], Run]:
    """The planner of declare_exchange / delete_exchange: check the name, then one broker method."""

    def planner(call: Call[NoData, Any], config: RabbitMQConfig, budget: float) -> Run:
        params = call.parameters
        _creatable(params.exchange, "parameters.exchange", config)
        return _one_channel(lambda ch: step(ch, params))

    return planner


plan_declare_exchange = _on_exchange(ops.declare_exchange)
plan_delete_exchange = _on_exchange(ops.delete_exchange)


def _binding(call: Call[NoData, BindParameters], config: RabbitMQConfig, *, unbind: bool) -> Run:
    params = call.parameters
    refuse_fleet(params.queue, "parameters.queue", config.allow_fleet_names)
    refuse_fleet(params.exchange, "parameters.exchange", config.allow_fleet_names)
    return _one_channel(lambda ch: ops.bind(ch, params, unbind=unbind))


def plan_bind(call: Call[NoData, BindParameters], config: RabbitMQConfig, budget: float) -> Run:
    return _binding(call, config, unbind=False)


def plan_unbind(call: Call[NoData, BindParameters], config: RabbitMQConfig, budget: float) -> Run:
    return _binding(call, config, unbind=True)


def plan_delete_queue(
    call: Call[NoData, DeleteQueueParameters], config: RabbitMQConfig, budget: float
) -> Run:
    params = call.parameters
    _creatable(params.queue, "parameters.queue", config)
    return _one_channel(lambda ch: ops.delete_queue(ch, params))


def plan_purge_queue(call: Call[NoData, QueueTarget], config: RabbitMQConfig, budget: float) -> Run:
    queue = call.parameters.queue
    refuse_fleet(queue, "parameters.queue", config.allow_fleet_names)
    return _one_channel(lambda ch: ops.purge_queue(ch, queue))


def plan_queue_stats(call: Call[NoData, QueueTarget], config: RabbitMQConfig, budget: float) -> Run:
    """Read-only, so fleet queues may be watched."""
    queue = call.parameters.queue
    return _one_channel(lambda ch: _stats(ch, queue))


async def _stats(channel: AbstractChannel, name: str) -> OperationOutcome:
    counts = await ops.queue_counts(channel, name)
    return OperationOutcome(records_processed=1, result_data=counts)


def _one_channel(step: Callable[[AbstractChannel], Awaitable[OperationOutcome]]) -> Run:
    async def run(link: Link) -> OperationOutcome:
        async with link.channel() as channel:
            return await step(channel)

    return run
