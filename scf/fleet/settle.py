"""Moving a message on instead of replying: to a delayed-retry queue, or to the dead letters.

Each path publishes with confirms before the caller acks, so a crash in between leaves the message
unacked and RabbitMQ delivers it again: nothing is lost, at worst something is repeated (which an
idempotency key makes harmless). A dead-lettered request gets no reply from here; the dispatcher that
takes it from `scf.dead` answers the caller once, with the error recorded in its headers.
"""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage

from scf.fleet import amqp
from scf.fleet.metrics import DELAYED_RETRIES_TOTAL
from scf.schemas import topology
from scf.schemas.dead_letters import DeadReason
from scf.schemas.errors import ErrorInfo


def delayed_retries(message: AbstractIncomingMessage) -> int:
    raw = (message.headers or {}).get(topology.DELAYED_RETRIES_HEADER, 0)
    return raw if isinstance(raw, int) and raw >= 0 else 0


def copy_of(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    """The same request (body, ids, reply queue) with `headers` added; the broker's x-death dropped."""
    kept = {k: v for k, v in (message.headers or {}).items() if k != "x-death"}
    return amqp.build_message(
        message.body,
        message_type=message.type or "",
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        message_id=message.message_id,
        headers={**kept, **headers},
    )


class Settler:
    """Holds the exchanges a worker settles through."""

    def __init__(self, channel: AbstractChannel) -> None:
        self.channel = channel
        self._exchanges: dict[str, AbstractExchange] = {}

    async def _exchange(self, name: str) -> AbstractExchange:
        if name not in self._exchanges:
            self._exchanges[name] = await self.channel.get_exchange(name)
        return self._exchanges[name]

    async def retry_later(self, message: AbstractIncomingMessage, tier: str) -> None:
        """Park it in `scf.retry.<tier>`; the queue's TTL sends it back to `scf.ops` with its routing key."""
        outgoing = copy_of(message, {topology.DELAYED_RETRIES_HEADER: delayed_retries(message) + 1})
        exchange = await self._exchange(topology.retry_exchange(tier))
        await amqp.publish(exchange, outgoing, message.routing_key or "")
        DELAYED_RETRIES_TOTAL.labels(tier).inc()

    async def dead_letter(
        self,
        message: AbstractIncomingMessage,
        reason: DeadReason,
        error: ErrorInfo,
        origin: str = topology.OPS_EXCHANGE,
    ) -> None:
        """To `scf.dlx` with why, how often and where from (`origin` exchange, the message's routing key)."""
        outgoing = copy_of(
            message,
            {
                topology.DEAD_REASON_HEADER: reason.value,
                topology.DEAD_ERROR_HEADER: error.model_dump_json(),
                topology.ATTEMPTS_HEADER: amqp.delivery_count(message) + 1 + delayed_retries(message),
                topology.ORIGIN_EXCHANGE_HEADER: origin,
                topology.ORIGIN_ROUTING_KEY_HEADER: message.routing_key or "",
            },
        )
        exchange = await self._exchange(topology.DEAD_LETTER_EXCHANGE)
        await amqp.publish(exchange, outgoing, message.routing_key or "")
