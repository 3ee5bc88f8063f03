"""One settlement for every message the fleet consumes: publish, then ack or give back.

A `Disposition` (the pure decision, `scf.fleet.disposition`) says what is published before the ack: the
reply, a copy parked in a delayed-retry queue, a dead letter, or nothing (dropped, or already sent: the
dispatcher's forward, the dead-letter desk's reply). `settle` carries it out, the same way for the
worker, the dispatcher and its dead-letter desk (and `settle_crashed` for a handler that crashed):
each publish is confirmed before the ack, so a crash in between leaves the message unacked and RabbitMQ
delivers it again (nothing is lost, at worst something is repeated, which an idempotency key makes
harmless). When the broker fails us mid-settlement the message is handed back at once (`give_back`,
never held unacked: the queue's delivery limit bounds the repeats, then the dead letters have it); when
the channel is gone even for the ack or the nack, the broker delivers the message again anyway, so that
is logged, never raised.
A dead-lettered request gets no reply from here; the dispatcher's desk that takes it from `scf.dead`
answers the caller once, with the error recorded in its headers.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage

from scf.fleet import amqp
from scf.fleet.access import carried
from scf.fleet.disposition import Disposition, Kind
from scf.fleet.metrics import DELAYED_RETRIES_TOTAL, DROPPED_TOTAL, ORPHAN_REPLIES
from scf.schemas import topology
from scf.schemas.dead_letters import DeadReason
from scf.schemas.errors import ErrorInfo

log = structlog.get_logger(__name__)


def delayed_retries(message: AbstractIncomingMessage) -> int:
    raw = (message.headers or {}).get(topology.DELAYED_RETRIES_HEADER, 0)
    return raw if isinstance(raw, int) and raw >= 0 else 0


def copy_of(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    """The same request (body, ids, reply queue) with `headers` added; the broker's x-death dropped."""
    kept = {k: v for k, v in (message.headers or {}).items() if k != "x-death"}
    user_id, carried_headers = carried(message.user_id, {**kept, **headers})
    copy = amqp.build_message(
        message.body,
        message_type=message.type or "",
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        message_id=message.message_id,
        headers=carried_headers,
    )
    copy.user_id = user_id
    return copy


class Settler:
    """The publishing side of settlements on one channel (the exchanges are looked up once each)."""

    def __init__(self, channel: AbstractChannel, origin: str = topology.OPS_EXCHANGE) -> None:
        self.channel = channel
        self.origin = origin  # the exchange this role's messages came from (recorded in dead letters)
        self._exchanges: dict[str, AbstractExchange] = {}

    async def _exchange(self, name: str) -> AbstractExchange:
        if name not in self._exchanges:
            self._exchanges[name] = await self.channel.get_exchange(name)
        return self._exchanges[name]

    async def reply(self, message: AbstractIncomingMessage, body: bytes) -> None:
        """The one reply (confirmed); a caller whose reply queue is gone is counted, not an error."""
        try:
            await amqp.reply(self.channel, message, body)
        except amqp.UnroutableError:
            ORPHAN_REPLIES.inc()
            log.info("reply_orphaned", type=message.type, message_id=message.message_id)

    async def retry_later(self, message: AbstractIncomingMessage, tier: str) -> None:
        """Park it in `scf.retry.<tier>`; the queue's TTL sends it back to `scf.ops` with its routing key."""
        outgoing = copy_of(message, {topology.DELAYED_RETRIES_HEADER: delayed_retries(message) + 1})
        exchange = await self._exchange(topology.retry_exchange(tier))
        await amqp.publish(exchange, outgoing, message.routing_key or "")
        DELAYED_RETRIES_TOTAL.labels(tier).inc()

    async def dead_letter(
        self, message: AbstractIncomingMessage, reason: DeadReason, error: ErrorInfo
    ) -> None:
        """To `scf.dlx` with why, how often and where from (origin exchange, the message's routing key)."""
        outgoing = copy_of(
            message,
            {
                topology.DEAD_REASON_HEADER: reason.value,
                topology.DEAD_ERROR_HEADER: error.model_dump_json(),
                topology.ATTEMPTS_HEADER: amqp.delivery_count(message) + 1 + delayed_retries(message),
                topology.ORIGIN_EXCHANGE_HEADER: self.origin,
                topology.ORIGIN_ROUTING_KEY_HEADER: message.routing_key or "",
            },
        )
        exchange = await self._exchange(topology.DEAD_LETTER_EXCHANGE)
        await amqp.publish(exchange, outgoing, message.routing_key or "")


async def settle(
    message: AbstractIncomingMessage,
    disposition: Disposition,
    settler: Settler,
    *,
    body: bytes | None = None,
    error: ErrorInfo | None = None,
    alongside: Awaitable[None] | None = None,
) -> bool:
    """Carry out `disposition` for `message`: publish (`body` for a reply; `error` for a dead letter or
    a drop), wait for `alongside` (work the ack must wait for, e.g. storing the result), then ack; True.
    When the broker failed us, give the message back; False."""
    kind = disposition.kind
    try:
        if kind is Kind.REPLY or kind is Kind.SENT:  # the hot path, without a frame of its own
            if body is not None and kind is Kind.REPLY:
                await settler.reply(message, body)
            settled = True
        else:
            settled = await _move(message, disposition, settler, error)
    except Exception as exc:
        log.warning("settle_failed", type=message.type, message_id=message.message_id, error=repr(exc))
        settled = False
    if alongside is not None:
        await alongside
    if not settled:
        await give_back(message)
    elif not message.processed:  # else acked early (the fault suite's negative control)
        try:
            await message.ack()
        except Exception as exc:  # the channel is gone: the broker delivers it again, made safe for that
            log.info("ack_failed", message_id=message.message_id, error=repr(exc))
    return settled


async def _move(
    message: AbstractIncomingMessage, disposition: Disposition, settler: Settler, error: ErrorInfo | None
) -> bool:
    """Anything but a reply: to a delayed-retry queue or the dead letters, a counted drop, or (False)
    nothing may be acked because an earlier step failed."""
    kind = disposition.kind
    if kind is Kind.GIVE_BACK:
        return False
    code = error.code if error is not None else "none"
    if kind is Kind.DROP:
        DROPPED_TOTAL.labels(code).inc()
        return True
    if kind is Kind.RETRY_LATER and disposition.tier is not None:
        await settler.retry_later(message, disposition.tier)
    elif disposition.reason is not None and error is not None:
        await settler.dead_letter(message, disposition.reason, error)
    log.info("operation_moved", message_id=message.message_id, to=kind.value, code=code)
    return True


async def give_back(message: AbstractIncomingMessage) -> None:
    """The broker would not take a settlement (reply, retry, dead letter): hand the message back at
    once rather than hold it unacked. The queue's delivery limit bounds how often this can happen before
    the broker dead-letters it; if the channel is gone, the broker redelivers it anyway."""
    if message.processed:
        return
    try:
        await message.nack(requeue=True)
    except Exception as exc:
        log.info("nack_failed", message_id=message.message_id, error=repr(exc))


async def settle_crashed(
    message: AbstractIncomingMessage, queue: str, dead_letters: bool, exc: Exception
) -> None:
    """A handler crashed on `message`: reject it to the queue's dead letters (without any: a counted
    drop), never hold it unacked."""
    # Type and ids only: the exception's text may quote the message (and a secret in it).
    log.error(
        "handler_crashed",
        queue=queue,
        type=message.type,
        message_id=message.message_id,
        error=type(exc).__name__,
    )
    if message.processed:
        return
    if not dead_letters:
        DROPPED_TOTAL.labels(queue).inc()
    try:
        await message.reject(requeue=False)
    except Exception as settle_exc:  # the channel is gone: the broker redelivers it anyway
        log.info("reject_failed", queue=queue, error=repr(settle_exc))
