"""A poison dead letter must never freeze the fleet, nor stop it from starting again.

The attack (issue 11, item 1): anyone may publish to `scf.dlx`, and a request too big to run with no
`reply_to` is dead-lettered by the dispatcher. A 24 MB body of long letter runs and URL-like text used
to be parsed, redacted (a quadratic pattern) and dumped on the event loop dispatcher and desk share:
the loop froze, RabbitMQ dropped the connection, and after a restart the same letter froze it again.
Here a private fleet (own vhost, own Redis db, real processes) takes such letters while running and
across a restart; it must keep answering and store each letter with its body shown only as a size.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import pytest
from cryptography.fernet import Fernet

from scf.fleet.client import FleetClient
from scf.schemas import topology
from scf.schemas.dead_letters import DeadLetter
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.services import Vhost, claim_redis_db, create_vhost, delete_vhost

pytestmark = pytest.mark.integration

CANARY = "poison-canary-7f3a"
READY_SECONDS = 30.0  # FleetProcess.wait_ready's usual bound
ANSWER_SECONDS = 5.0  # a control call answered by a live dispatcher takes milliseconds


def poison(operation_id: str, megabytes: int = 24) -> bytes:
    """Long letter runs (the old pattern's quadratic case) and URL-like text with a password."""
    chunk = "a" * 40_000 + f" x://user:{CANARY}@host " + "b://c:" * 100
    text = chunk * (megabytes * 1024 * 1024 // len(chunk))
    request = {"service_name": "poisoned", "operation": "query", "operation_id": operation_id}
    return json.dumps({"request": {**request, "data": {"q": text}}, "service_type": "postgresql"}).encode()


@dataclass
class Private:
    vhost: Vhost
    env: dict[str, str]
    logs: Path
    procs: dict[str, FleetProcess]

    def start(self) -> float:
        started = time.monotonic()
        self.procs = {
            "dispatcher": FleetProcess(["dispatcher"], self.env, self.logs / "dispatcher.log"),
            "worker": FleetProcess(["worker", "--concurrency", "4"], self.env, self.logs / "worker.log"),
        }
        for proc in self.procs.values():
            proc.wait_ready(READY_SECONDS)
        return time.monotonic() - started

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()

    def output(self) -> str:
        return "".join(proc.output() for proc in self.procs.values())


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Private]:
    vhost, claimed = create_vhost(), claim_redis_db()
    logs = Path(tmp_path_factory.mktemp("poison"))
    fleet = Private(
        vhost, fleet_env(vhost.amqp_url, claimed.url, Fernet.generate_key().decode(), logs), logs, {}
    )
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.stop()
        delete_vhost(vhost)
        claimed.release()


@pytest.fixture
async def channel(private: Private) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect_robust(private.vhost.amqp_url)
    try:
        yield await connection.channel(publisher_confirms=True)
    finally:
        await connection.close()


async def publish(
    channel: aio_pika.abc.AbstractChannel, exchange: str, key: str, body: bytes, mid: str
) -> None:
    target = await channel.get_exchange(exchange)
    message = aio_pika.Message(
        body, content_type="application/json", type="operation.execute", message_id=mid
    )
    await target.publish(message, routing_key=key)


async def answers(client: FleetClient) -> float:
    """How long a normal control call took; fails if the dispatcher does not answer in time."""
    started = time.monotonic()
    await asyncio.wait_for(client.list_connectors(), ANSWER_SECONDS)
    return time.monotonic() - started


async def stored(client: FleetClient, wanted: set[str], within: float) -> dict[str, DeadLetter]:
    """The dead letters whose operation id is in `wanted`, polling until all are there (bounded)."""
    deadline = time.monotonic() + within
    while True:
        page = await asyncio.wait_for(client.dead_letters(limit=100), ANSWER_SECONDS)
        found = {d.operation_id: d for d in page.dead_letters if d.operation_id in wanted}
        if set(found) == wanted or time.monotonic() > deadline:
            assert set(found) == wanted, f"stored {sorted(found)} of {sorted(wanted)}"
            return found
        await asyncio.sleep(0.2)


async def dead_queue_settled(channel: aio_pika.abc.AbstractChannel, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        queue = await channel.declare_queue(topology.DEAD_LETTER_QUEUE, passive=True)
        if queue.declaration_result.message_count == 0 or time.monotonic() > deadline:
            assert queue.declaration_result.message_count == 0
            return
        await asyncio.sleep(0.2)


def assert_truncated(letter: DeadLetter) -> None:
    assert isinstance(letter.body, dict) and letter.body.get("truncated") is True
    assert letter.body["bytes"] > 16 * 1024 * 1024
    assert CANARY not in letter.model_dump_json()


async def test_a_running_fleet_keeps_answering_while_it_stores_a_poison_dead_letter(
    private: Private, channel: aio_pika.abc.AbstractChannel
) -> None:
    async with await FleetClient.connect(private.vhost.amqp_url, timeout=ANSWER_SECONDS) as client:
        await answers(client)
        await publish(channel, topology.DEAD_LETTER_EXCHANGE, "", poison("poison-live"), "m-live")
        deadline = time.monotonic() + 60
        slowest = 0.0
        letters: dict[str, DeadLetter] = {}
        while not letters and time.monotonic() < deadline:
            slowest = max(slowest, await answers(client))  # the old code froze here
            page = await asyncio.wait_for(client.dead_letters(limit=100), ANSWER_SECONDS)
            letters = {d.operation_id or "": d for d in page.dead_letters if d.operation_id == "m-live"}
            await asyncio.sleep(0.1)
        assert "m-live" in letters, "the poison letter was never stored"
        assert_truncated(letters["m-live"])
        assert slowest < ANSWER_SECONDS
    await dead_queue_settled(channel, 30)
    assert CANARY not in private.output()


async def test_the_fleet_starts_and_serves_with_a_poison_letter_and_a_poison_request_queued(
    private: Private, channel: aio_pika.abc.AbstractChannel
) -> None:
    private.stop()
    await publish(channel, topology.DEAD_LETTER_EXCHANGE, "", poison("poison-dead"), "m-dead")
    # Over the dispatcher's 16 MiB limit and nobody waiting: refused, then kept as a dead letter.
    request = poison("poison-request", megabytes=20)
    await publish(channel, topology.REQUEST_EXCHANGE, topology.REQUEST_ROUTING_KEY, request, "m-request")

    took = private.start()
    async with await FleetClient.connect(private.vhost.amqp_url, timeout=ANSWER_SECONDS) as client:
        await answers(client)
        letters = await stored(client, {"m-dead", "m-request"}, within=60)
        await answers(client)

    assert took < READY_SECONDS
    for letter in letters.values():
        assert_truncated(letter)
    assert letters["m-request"].error.code == "LIMIT_EXCEEDED"
    await dead_queue_settled(channel, 30)
    assert CANARY not in private.output()
