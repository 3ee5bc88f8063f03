"""AMQP plumbing shared by every process: robust connection, topology declaration, confirmed publishing.

Every publish of the fleet waits for the broker's confirm and uses `mandatory=True`, so "sent" means
"queued by RabbitMQ"; an unroutable message raises `UnroutableError`, a broker refusal (queue full,
`reject-publish`) raises `BrokerRefusedError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from aio_pika.exceptions import (
    AMQPConnectionError,
    ChannelClosed,
    ChannelInvalidStateError,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
    DeliveryError,
    PublishError,
)
from aiormq.exceptions import ChannelAccessRefused
from pydantic import BaseModel

from scf.fleet import broker_endpoints
from scf.schemas import topology
from scf.schemas.errors import ErrorCode, ResourceError, TransientError
from scf.schemas.plugins import known_types

JSON = "application/json"
HEARTBEAT_SECONDS = 30
RECONNECT_INTERVAL_SECONDS = 1.0


class UnroutableError(TransientError):
    """The broker returned the message: no queue is bound for its routing key (or the reply queue is gone)."""


class BrokerRefusedError(ResourceError):
    """The broker nacked the publish, e.g. the target queue is at its length limit."""


async def connect(url: str, name: str) -> AbstractRobustConnection:
    """A robust connection to the broker at `url`, or to the first of several that accepts it.

    `url` may list several endpoints (a cluster's nodes; `broker_endpoints`): each is tried in turn now,
    and every reconnection later moves on to the next one.
    """
    # Heartbeats every 30 s: a dead peer is noticed within about a minute, not at the next TCP timeout.
    # Reconnect attempts every second (aio-pika's default is 5 s): a restarted broker is used again within
    # about a second, well inside the publish retries' budget (RECONNECT_WAITS); at 5 s, three missed
    # attempts outlasted that budget while a broker restarted under load (CI: 15 calls failed).
    urls = broker_endpoints.endpoints(url)
    for start in range(len(urls)):
        connection = broker_endpoints.RoundRobinConnection(
            urls,
            start,
            client_properties={"connection_name": name},
            heartbeat=HEARTBEAT_SECONDS,
            reconnect_interval=RECONNECT_INTERVAL_SECONDS,
        )
        try:
            await connection.connect(timeout=10)
        except BaseException as exc:
            await connection.close()
            # A cancel is not a refusal: it is never swallowed to try the next endpoint. After the last
            # endpoint its error is raised, and the caller explains it (refused, unreachable, ...).
            if not isinstance(exc, Exception) or start == len(urls) - 1:
                raise
            continue
        return connection
    raise AssertionError("unreachable: endpoints() returns at least one URL")


async def open_channel(connection: AbstractRobustConnection, prefetch: int | None = None) -> AbstractChannel:
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    if prefetch is not None:
        await channel.set_qos(prefetch_count=prefetch)
    return channel


async def declare_topology(channel: AbstractChannel, limits: topology.QueueLimits) -> None:
    """Declare every exchange, queue and binding (docs/architecture.md); idempotent, same in every process."""
    requests = await channel.declare_exchange(
        topology.REQUEST_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    ops = await channel.declare_exchange(topology.OPS_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    dlx = await channel.declare_exchange(
        topology.DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
    )
    await channel.declare_exchange(topology.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)

    work_args = topology.work_queue_arguments(limits)
    request_queue = await channel.declare_queue(topology.REQUEST_QUEUE, durable=True, arguments=work_args)
    await request_queue.bind(requests, topology.REQUEST_ROUTING_KEY)
    for service_type in known_types():
        queue = await channel.declare_queue(
            topology.work_queue(service_type), durable=True, arguments=work_args
        )
        await queue.bind(ops, service_type)

    dead = await channel.declare_queue(
        topology.DEAD_LETTER_QUEUE, durable=True, arguments=topology.dead_letter_queue_arguments()
    )
    await dead.bind(dlx)
    for tier in topology.RETRY_TIERS:
        exchange = await channel.declare_exchange(
            topology.retry_exchange(tier), aio_pika.ExchangeType.FANOUT, durable=True
        )
        queue = await channel.declare_queue(
            topology.retry_queue(tier), durable=True, arguments=topology.retry_queue_arguments(tier)
        )
        await queue.bind(exchange)


#: orjson options for a dict body: keys as `json.dumps` writes them (`1` -> `"1"`), and datetimes and
#: dataclasses handed to `default=str` as before (orjson would otherwise write its own forms).
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def encode(body: BaseModel | dict[str, Any]) -> bytes:
    """One AMQP body: a model through its own (Rust) serializer, a dict through orjson.

    A dict orjson refuses (an integer past 64 bits, a lone surrogate, a key type it cannot write) is
    encoded by `json.dumps` exactly as before, so such inputs still reach the receiver's refusal (or
    raise here) unchanged. orjson writes non-finite floats as `null`, as the model serializer always did
    (the `NaN` token `json.dumps` wrote is not JSON; the dispatcher's envelope already turned it to null).
    """
    if isinstance(body, BaseModel):
        return body.model_dump_json(by_alias=False).encode()
    try:
        return orjson.dumps(body, default=str, option=_ORJSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(body, separators=(",", ":"), default=str).encode()


#: Every digit as "0", everything else as a space: a run of 19 digits (an integer that may lie outside
#: orjson's 64-bit range, which it would read as a float: a silent loss of precision) is then a plain
#: substring search. Such a body is read by `json` instead; digits inside strings trip it too, which
#: only costs the slower decoder, never a different answer. (A regex for the run cost more than orjson.)
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_NUMBER = b"0" * 19


def decode(raw: bytes) -> Any:
    """A JSON body read by orjson, with `json.loads` semantics kept exactly.

    Strict UTF-8 (encoded surrogates refused), as `json.loads(raw.decode("utf-8"))`. orjson refuses some
    texts the standard decoder accepts (`NaN`, `1e400`, a lone `\\udfff` escape, nesting past 1024) and
    reads integers past 64 bits as floats; all of those go through the standard decoder, so every input
    gets the value (or the ValueError / RecursionError) it got before.
    """
    if _LONG_NUMBER not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw.decode("utf-8"))


def build_message(
    body: bytes,
    *,
    message_type: str,
    correlation_id: str | None,
    reply_to: str | None,
    message_id: str | None = None,
    headers: dict[str, Any] | None = None,
    persistent: bool = True,
    expiration: float | None = None,
) -> aio_pika.Message:
    """A JSON message; `expiration` (seconds) makes the broker dead-letter it if still queued by then."""
    return aio_pika.Message(
        body,
        content_type=JSON,
        type=message_type,
        correlation_id=correlation_id,
        reply_to=reply_to,
        message_id=message_id,
        headers=headers or {},
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        if persistent
        else aio_pika.DeliveryMode.NOT_PERSISTENT,
        expiration=max(0.001, expiration) if expiration is not None else None,
    )


#: What a publish raises while the robust connection is down or being re-established.
RECONNECTING = (ChannelInvalidStateError, AMQPConnectionError, ConnectionError, ChannelClosed)
#: Waits between publish attempts while reconnecting (about 31 s in all: a broker restarting on a busy
#: machine can take 15 s or more before it accepts connections again).
RECONNECT_WAITS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 7.0, 8.0, 8.0)


async def publish(
    exchange: AbstractExchange, message: aio_pika.Message, routing_key: str, timeout: float = 10
) -> None:
    """Publish and wait for the broker's confirm; translate refusals into typed errors.

    A publish that fails because the connection is being re-established is sent again, the same message
    (same message id), once the robust connection is back; if it never comes back within the waits, a
    `transient` CONNECTION_FAILED is raised and the caller leaves its own message unacked.
    """
    nacked = 0
    for wait in (*RECONNECT_WAITS, None):
        try:
            await exchange.publish(message, routing_key, mandatory=True, timeout=timeout)
            return
        except PublishError as exc:
            raise UnroutableError(
                f"no queue accepts routing key {routing_key!r}", code=ErrorCode.NO_WORKER, detail=str(exc)
            ) from exc
        except DeliveryError as exc:
            if nacked < STALE_LEADER_RETRIES and await _renewed_after_failover(exchange):
                nacked += 1
                await asyncio.sleep(1.0)  # the election takes about half a second
                continue
            raise BrokerRefusedError(
                "the broker refused the message (queue full)",
                code=ErrorCode.QUEUE_FULL,
                retry_after=1.0,
                detail=str(exc),
            ) from exc
        except (ChannelNotFoundEntity, ChannelPreconditionFailed, ChannelAccessRefused):
            raise  # the broker answered: waiting for a reconnection will not change its answer
        except RECONNECTING as exc:
            if wait is None:
                raise TransientError(
                    "the broker connection did not come back",
                    code=ErrorCode.CONNECTION_FAILED,
                    detail=repr(exc),
                ) from exc
            await asyncio.sleep(wait)


#: A nack soon after a failover may be a stale quorum-queue leader, not a full queue (RabbitMQ 3.10: a
#: channel whose first publish to a quorum queue came while its leader was being elected has every later
#: publish to it nacked, as long as the channel lives; a fresh channel is served by the new leader,
#: rabbitmq-server#9241). Within this many seconds of a (re)connection a nacked publish renews its
#: channel (at most once per RENEW_EVERY) and is tried again, up to STALE_LEADER_RETRIES times; outside
#: it, a nack is QUEUE_FULL at once, so an overloaded queue never makes a channel churn.
STALE_LEADER_WINDOW = 30.0
RENEW_EVERY = 2.0
STALE_LEADER_RETRIES = 3


async def _renewed_after_failover(exchange: AbstractExchange) -> bool:
    """True if the nacked publish on `exchange` may be tried again: its connection is fresh from a
    (re)connection, and its channel was renewed now (or moments ago by a publish beside this one)."""
    channel = getattr(exchange, "channel", None)  # aio-pika's Exchange keeps it; the ABC does not say so
    connected_at = getattr(getattr(channel, "_connection", None), "connected_at", None)
    now = time.monotonic()
    if (
        not isinstance(channel, AbstractChannel)
        or connected_at is None
        or now - connected_at > STALE_LEADER_WINDOW
    ):
        return False
    if now - getattr(channel, "_scf_renewed_at", float("-inf")) >= RENEW_EVERY:
        channel._scf_renewed_at = now  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):  # closed or reconnecting already: being renewed anyway
            underlay = await channel.get_underlay_channel()
            if not underlay.is_closed:
                await underlay.close()  # the robust channel opens a new one (consumers restored)
    return True


async def reply(
    channel: AbstractChannel, request: AbstractIncomingMessage, body: bytes, timeout: float = 10
) -> None:
    """Send the one reply of `request` to its caller's queue (confirmed; raises UnroutableError if gone)."""
    if not request.reply_to:
        return
    message = build_message(
        body,
        message_type=f"{request.type or 'unknown'}.reply",
        correlation_id=request.correlation_id,
        reply_to=None,
        persistent=False,
    )
    await publish(channel.default_exchange, message, request.reply_to, timeout=timeout)


#: When the dispatcher forwarded a request. A decimal string of Unix seconds: a float header is sent as a
#: 32-bit float by the AMQP encoder (pamqp), a minute off at today's times; a string is exact.
FORWARDED_AT_HEADER = topology.FORWARDED_AT_HEADER


def forwarded_at_value(now: float) -> str:
    return f"{now:.6f}"


def forwarded_at(message: AbstractIncomingMessage) -> float | None:
    """The forward time of a message, as either the string written now or a number written before."""
    raw = (message.headers or {}).get(FORWARDED_AT_HEADER)
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    try:
        return float(raw) if isinstance(raw, str | int | float) and not isinstance(raw, bool) else None
    except ValueError:
        return None


def delivery_count(message: AbstractIncomingMessage) -> int:
    """How many times the broker delivered this message before (quorum queues count it)."""
    raw = (message.headers or {}).get("x-delivery-count", 0)
    return int(raw) if isinstance(raw, int | str) and str(raw).isdigit() else 0
