"""Raw AMQP access for the hostile-envelope suite: publish exactly the bytes and properties an attacker
would (no FleetClient validation in the way), collect replies, and read queue statistics from the broker.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from scf.schemas import topology
from tests.support.services import Vhost

#: Every queue a hostile message could be held in, unacked, by a fleet consumer.
FLEET_QUEUES_PREFIX = ("scf.requests", "scf.ops.", "scf.dead")


class RawAmqp:
    """One connection, a confirm channel and an exclusive reply queue (like any AMQP caller's)."""

    def __init__(self, channel: AbstractChannel, replies: AbstractQueue) -> None:
        self.channel = channel
        self.replies = replies
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def start(self) -> None:
        await self.replies.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._waiting.get(message.correlation_id or "")
        if future is not None and not future.done():
            future.set_result(json.loads(message.body))

    async def publish(
        self,
        body: bytes,
        *,
        message_type: str | None,
        exchange: str = topology.REQUEST_EXCHANGE,
        routing_key: str = topology.REQUEST_ROUTING_KEY,
        reply: bool = True,
        correlation_id: str | None = None,
        content_type: str | None = "application/json",
        headers: dict[str, Any] | None = None,
        message_id: str | None = None,
        user_id: str | None = None,
    ) -> asyncio.Future[dict[str, Any]] | None:
        """Publish (confirmed); with `reply`, a future of the reply body (correlated by a fresh id)."""
        correlation_id = correlation_id or (uuid.uuid4().hex if reply else None)
        future: asyncio.Future[dict[str, Any]] | None = None
        if reply:
            assert correlation_id is not None
            future = asyncio.get_running_loop().create_future()
            self._waiting[correlation_id] = future
        message = aio_pika.Message(
            body,
            type=message_type,
            content_type=content_type,
            correlation_id=correlation_id,
            reply_to=self.replies.name if reply else None,
            headers=headers or {},
            message_id=message_id,
            user_id=user_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        target = await self.channel.get_exchange(exchange) if exchange else self.channel.default_exchange
        await target.publish(message, routing_key, mandatory=True)
        return future

    async def call(self, body: bytes, *, timeout: float = 20.0, **props: Any) -> dict[str, Any]:
        future = await self.publish(body, **props)
        assert future is not None
        async with asyncio.timeout(timeout):
            return await future


@asynccontextmanager
async def raw_amqp(vhost: Vhost) -> AsyncIterator[RawAmqp]:
    connection = await aio_pika.connect_robust(vhost.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        replies = await channel.declare_queue("", exclusive=True, auto_delete=True)
        raw = RawAmqp(channel, replies)
        await raw.start()
        yield raw
    finally:
        await connection.close()


def queue_stats(vhost: Vhost) -> dict[str, tuple[int, int]]:
    """name -> (ready, unacknowledged) of every queue of the vhost, from the broker itself."""
    out = subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "list_queues",
            "-p",
            vhost.name,
            "name",
            "messages_ready",
            "messages_unacknowledged",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    stats: dict[str, tuple[int, int]] = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            stats[parts[0]] = (int(parts[1]), int(parts[2]))
    return stats


async def wait_settled(vhost: Vhost, timeout: float = 20.0) -> dict[str, tuple[int, int]]:
    """Poll until no fleet queue holds a message unacked (nor ready in `scf.requests`/`scf.dead`)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        stats = queue_stats(vhost)
        held = {
            name: counts
            for name, counts in stats.items()
            if name.startswith(FLEET_QUEUES_PREFIX)
            and (counts[1] > 0 or (counts[0] > 0 and "ops." not in name))
        }
        if not held:
            return stats
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"messages still held by fleet consumers: {held}")
        await asyncio.sleep(0.2)
