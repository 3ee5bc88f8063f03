"""From a request to a plan: parse `data` and `parameters`, check names and limits, encode bodies.

Everything here happens before any I/O, so a malformed request never reaches the broker. A plan is a
coroutine over the connector's `Link`; most take one channel, `enqueue` takes two (a missing queue
closes the channel that asked about it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aio_pika.abc import AbstractChannel

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
    DeclareExchangeParameters,
    DeclareQueueParameters,
    DeleteExchangeParameters,
    DeleteQueueParameters,
    EnqueueData,
    EnqueueParameters,
    NoData,
    PublishData,
    PublishParameters,
    QueueTarget,
    parse,
)
from scf.schemas.configs.rabbitmq import RabbitMQConfig
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome, OperationRequest

Run = Callable[[Link], Awaitable[OperationOutcome]]


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


def plan_publish(request: OperationRequest, config: RabbitMQConfig) -> Run:
    data = parse(PublishData, request.data, "data")
    params = parse(PublishParameters, request.parameters, "parameters")
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


def plan_enqueue(request: OperationRequest, config: RabbitMQConfig) -> Run:
    data = parse(EnqueueData, request.data, "data")
    params = parse(EnqueueParameters, request.parameters, "parameters")
    _limit(len(data.jobs), config.max_batch, "data.jobs", "max_batch")
    refuse_reserved(params.queue, "parameters.queue")
    refuse_fleet(params.queue, "parameters.queue", config.allow_fleet_names)
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


def plan_consume(request: OperationRequest, config: RabbitMQConfig, budget: float) -> Run:
    parse(NoData, request.data, "data")
    params = parse(ConsumeParameters, request.parameters, "parameters")
    _limit(params.max_messages, config.max_consume, "parameters.max_messages", "max_consume")
    refuse_fleet(params.queue, "parameters.queue", config.allow_fleet_names)
    # Leave part of the operation's budget for settling what was taken and replying.
    time_limit = max(0.0, budget - min(2.0, budget / 4))
    take = ops.Take(
        queue=params.queue,
        max_messages=params.max_messages,
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
        )

    return run


def plan_admin(request: OperationRequest, config: RabbitMQConfig) -> Run:
    """declare_queue, declare_exchange, delete_exchange, bind, unbind, delete_queue, purge_queue,
    queue_stats: one channel, one broker method."""
    parse(NoData, request.data, "data")
    allowed = config.allow_fleet_names
    match request.operation:
        case "declare_queue":
            dq = parse(DeclareQueueParameters, request.parameters, "parameters")
            refuse_reserved(dq.queue, "parameters.queue")
            refuse_fleet(dq.queue, "parameters.queue", allowed)
            dlx = dq.arguments.dead_letter_exchange
            if dlx is not None:
                refuse_fleet(dlx, "parameters.arguments.x-dead-letter-exchange", allowed)
                if dlx == "" and dq.arguments.dead_letter_routing_key is not None:
                    refuse_fleet(dq.arguments.dead_letter_routing_key, "x-dead-letter-routing-key", allowed)
            return _one_channel(lambda ch: ops.declare_queue(ch, dq))
        case "declare_exchange" | "delete_exchange":
            model = (
                DeclareExchangeParameters
                if request.operation == "declare_exchange"
                else DeleteExchangeParameters
            )
            ex = parse(model, request.parameters, "parameters")
            refuse_reserved(ex.exchange, "parameters.exchange")
            refuse_fleet(ex.exchange, "parameters.exchange", allowed)
            if isinstance(ex, DeclareExchangeParameters):
                return _one_channel(lambda ch: ops.declare_exchange(ch, ex))
            assert isinstance(ex, DeleteExchangeParameters)
            return _one_channel(lambda ch: ops.delete_exchange(ch, ex))
        case "bind" | "unbind":
            bp = parse(BindParameters, request.parameters, "parameters")
            refuse_fleet(bp.queue, "parameters.queue", allowed)
            refuse_fleet(bp.exchange, "parameters.exchange", allowed)
            unbind = request.operation == "unbind"
            return _one_channel(lambda ch: ops.bind(ch, bp, unbind=unbind))
        case "delete_queue":
            dl = parse(DeleteQueueParameters, request.parameters, "parameters")
            refuse_reserved(dl.queue, "parameters.queue")
            refuse_fleet(dl.queue, "parameters.queue", allowed)
            return _one_channel(lambda ch: ops.delete_queue(ch, dl))
        case "purge_queue":
            pq = parse(QueueTarget, request.parameters, "parameters")
            refuse_fleet(pq.queue, "parameters.queue", allowed)
            return _one_channel(lambda ch: ops.purge_queue(ch, pq.queue))
        case _:  # queue_stats: read-only, so fleet queues may be watched
            qs = parse(QueueTarget, request.parameters, "parameters")
            return _one_channel(lambda ch: _stats(ch, qs.queue))


async def _stats(channel: AbstractChannel, name: str) -> OperationOutcome:
    counts = await ops.queue_counts(channel, name)
    return OperationOutcome(records_processed=1, result_data=counts)


def _one_channel(step: Callable[[AbstractChannel], Awaitable[OperationOutcome]]) -> Run:
    async def run(link: Link) -> OperationOutcome:
        async with link.channel() as channel:
            return await step(channel)

    return run


ADMIN_OPERATIONS = frozenset(
    {
        "declare_queue",
        "declare_exchange",
        "delete_exchange",
        "bind",
        "unbind",
        "delete_queue",
        "purge_queue",
        "queue_stats",
    }
)
OPERATIONS = ADMIN_OPERATIONS | {"publish", "enqueue", "consume"}


def plan(request: OperationRequest, config: RabbitMQConfig, budget: float) -> Run:
    if request.operation == "publish":
        return plan_publish(request, config)
    if request.operation == "enqueue":
        return plan_enqueue(request, config)
    if request.operation == "consume":
        return plan_consume(request, config, budget)
    return plan_admin(request, config)
