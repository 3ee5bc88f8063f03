"""A nacked publish: QUEUE_FULL at once on a settled connection; renewed and retried just after a failover.

RabbitMQ 3.10 nacks every publish of a channel whose first publish to a quorum queue came while that
queue's leader was being elected (tests/faults/test_broker_cluster.py meets it for real); a fresh channel
is served. A nack on a connection that has been up for a while is a full queue and must not churn the
channel (renewing a consuming channel sends its unacked deliveries back).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from aio_pika import Message
from aio_pika.exceptions import DeliveryError
from pamqp import commands as spec

from scf.fleet import amqp
from scf.fleet.amqp import BrokerRefusedError


class Underlay:
    def __init__(self) -> None:
        self.is_closed = False
        self.closes = 0

    async def close(self) -> None:
        self.is_closed = True
        self.closes += 1


class Connection:
    def __init__(self, connected_at: float | None) -> None:
        self.connected_at = connected_at


class Channel:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.underlays: list[Underlay] = []

    async def get_underlay_channel(self) -> Underlay:
        if not self.underlays or self.underlays[-1].is_closed:
            self.underlays.append(Underlay())
        return self.underlays[-1]


class Exchange:
    """Nacks the first `nacks` publishes, then confirms."""

    def __init__(self, channel: Channel, nacks: int) -> None:
        self.channel = channel
        self.nacks = nacks
        self.attempts = 0

    async def publish(self, message: Message, routing_key: str, **kwargs: Any) -> None:
        self.attempts += 1
        await self.channel.get_underlay_channel()
        if self.attempts <= self.nacks:
            raise DeliveryError(None, spec.Basic.Nack(delivery_tag=self.attempts))


@pytest.fixture(autouse=True)
def channels_are_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(amqp, "AbstractChannel", Channel)
    monkeypatch.setattr("scf.fleet.amqp.asyncio.sleep", _no_wait)


async def _no_wait(seconds: float) -> None:
    return None


async def test_a_nack_on_a_settled_connection_is_queue_full_at_once_and_the_channel_is_kept() -> None:
    channel = Channel(Connection(connected_at=time.monotonic() - amqp.STALE_LEADER_WINDOW - 1))
    exchange = Exchange(channel, nacks=1)

    with pytest.raises(BrokerRefusedError) as refused:
        await amqp.publish(exchange, Message(b"x"), "postgresql")  # type: ignore[arg-type]

    assert refused.value.code == "QUEUE_FULL"
    assert exchange.attempts == 1
    assert [u.closes for u in channel.underlays] == [0]


async def test_a_nack_just_after_a_failover_renews_the_channel_and_the_publish_goes_through() -> None:
    channel = Channel(Connection(connected_at=time.monotonic()))
    exchange = Exchange(channel, nacks=1)

    await amqp.publish(exchange, Message(b"x"), "postgresql")  # type: ignore[arg-type]

    assert exchange.attempts == 2
    assert [u.closes for u in channel.underlays] == [1, 0]  # the stuck channel closed, a fresh one used


async def test_a_queue_that_stays_full_after_a_failover_is_still_queue_full_after_a_few_tries() -> None:
    channel = Channel(Connection(connected_at=time.monotonic()))
    exchange = Exchange(channel, nacks=100)

    with pytest.raises(BrokerRefusedError):
        await amqp.publish(exchange, Message(b"x"), "postgresql")  # type: ignore[arg-type]

    assert exchange.attempts == amqp.STALE_LEADER_RETRIES + 1
    assert len(channel.underlays) <= amqp.STALE_LEADER_RETRIES + 1


async def test_a_connection_without_a_failover_clock_never_renews() -> None:
    channel = Channel(Connection(connected_at=None))
    exchange = Exchange(channel, nacks=1)

    with pytest.raises(BrokerRefusedError):
        await amqp.publish(exchange, Message(b"x"), "postgresql")  # type: ignore[arg-type]
    assert exchange.attempts == 1
