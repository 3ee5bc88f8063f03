"""An in-memory broker double of our own: the subset of aio-pika the fleet's message handlers use.

A handler under test gets `MemoryMessage`s (body, properties, ack / nack / reject) and publishes through
`MemoryChannel` exchanges; everything published is recorded in `MemoryBroker.published`, in order, and
each message remembers how it was settled. A second settlement of one message raises, so a test sees a
handler that settles twice. No network, no event loop of its own: a handler test runs in milliseconds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import aio_pika

from scf.schemas import topology

_TAGS = itertools.count(1)


@dataclass
class Published:
    exchange: str
    routing_key: str
    message: aio_pika.Message

    @property
    def body(self) -> bytes:
        return self.message.body

    @property
    def type(self) -> str | None:
        return self.message.type


@dataclass
class MemoryMessage:
    """An incoming delivery: what `AbstractIncomingMessage` offers the handlers, and how it ended."""

    body: bytes
    type: str | None = None
    content_type: str | None = "application/json"
    reply_to: str | None = "amq.gen-caller"
    correlation_id: str | None = "corr-1"
    message_id: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    routing_key: str | None = topology.REQUEST_ROUTING_KEY
    exchange: str | None = topology.REQUEST_EXCHANGE
    redelivered: bool = False
    expiration: float | None = None
    timestamp: Any = None
    user_id: str | None = None
    app_id: str | None = None
    priority: int | None = None
    delivery_mode: int = 2
    delivery_tag: int = field(default_factory=lambda: next(_TAGS))
    settlement: str | None = None  # "ack", "requeue" (nack), "reject"

    @property
    def processed(self) -> bool:
        return self.settlement is not None

    def _settle(self, how: str) -> None:
        if self.settlement is not None:
            raise AssertionError(f"settled twice: {self.settlement} then {how}")
        self.settlement = how

    async def ack(self, multiple: bool = False) -> None:
        self._settle("ack")

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        self._settle("requeue" if requeue else "reject")

    async def reject(self, requeue: bool = False) -> None:
        self._settle("requeue" if requeue else "reject")


class MemoryExchange:
    def __init__(self, name: str, broker: MemoryBroker) -> None:
        self.name = name
        self.broker = broker

    async def publish(
        self,
        message: aio_pika.Message,
        routing_key: str,
        *,
        mandatory: bool = True,
        timeout: float | None = None,
    ) -> None:
        if self.broker.failure is not None:
            raise self.broker.failure
        self.broker.published.append(Published(self.name, routing_key, message))


class MemoryChannel:
    """A channel: named exchanges (looked up, never declared here) and the default exchange."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self.default_exchange = MemoryExchange("", broker)
        self.is_closed = False

    async def get_exchange(self, name: str, ensure: bool = True) -> MemoryExchange:
        return MemoryExchange(name, self.broker)


@dataclass
class MemoryBroker:
    published: list[Published] = field(default_factory=list)
    #: Raised by every publish while set: the broker failing under a handler.
    failure: BaseException | None = None

    def channel(self) -> MemoryChannel:
        return MemoryChannel(self)

    def to(self, exchange: str, routing_key: str | None = None) -> list[Published]:
        return [
            p
            for p in self.published
            if p.exchange == exchange and (routing_key is None or p.routing_key == routing_key)
        ]

    def replies(self) -> list[Published]:
        """What went to callers' reply queues (the default exchange)."""
        return self.to("")
