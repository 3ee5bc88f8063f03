"""Raw AMQP access for the poison and fuzz scenarios: bodies no well-behaved client would send.

`CountingRpcClient` is the fleet's own RPC client that also counts every reply it receives by correlation
id, so a second reply to one request (which `RpcClient` would only log as unmatched) shows up.
`publish_without_reply` sends a message nobody waits for (no `reply_to`), confirmed by the broker.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from scf.fleet import amqp
from scf.fleet.rpc import RpcClient
from tests.faults.conftest import Stack


class CountingRpcClient(RpcClient):
    """An `RpcClient` that counts the replies it receives per correlation id (duplicates included)."""

    def __init__(self, connection: aio_pika.abc.AbstractRobustConnection) -> None:
        super().__init__(connection, owns_connection=True)
        self.replies: Counter[str] = Counter()

    @classmethod
    async def open(cls, amqp_url: str) -> CountingRpcClient:
        client = cls(await amqp.connect(amqp_url, "scf-fault-counting-client"))
        await client.start()
        return client

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        if not (message.type or "").endswith(".progress"):
            self.replies[message.correlation_id or ""] += 1
        await super()._on_reply(message)

    def duplicated(self) -> int:
        """Correlation ids that were answered more than once."""
        return sum(1 for n in self.replies.values() if n > 1)


async def publish_without_reply(
    channel: AbstractChannel,
    body: bytes,
    *,
    message_type: str,
    message_id: str,
    content_type: str = amqp.JSON,
    exchange: str = "scf",
    routing_key: str = "requests",
) -> None:
    """Publish (confirmed, mandatory) a persistent message without `reply_to`."""
    message = aio_pika.Message(
        body,
        content_type=content_type,
        type=message_type,
        message_id=message_id,
        correlation_id=message_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    target = await channel.get_exchange(exchange, ensure=False)
    await amqp.publish(target, message, routing_key)


def fleet_alive(fleet: Stack) -> dict[str, bool]:
    """Every fleet process of the stack, and whether it is still running."""
    return {name: process.proc.poll() is None for name, process in fleet.processes.items()}


def failed_code(reply: dict[str, Any]) -> str | None:
    """The error code of a failed reply (`OperationResult` or control-plane shape); None otherwise."""
    error = reply.get("error")
    if reply.get("status") != "failed" or not isinstance(error, dict):
        return None
    code = error.get("code")
    return code if isinstance(code, str) else None
