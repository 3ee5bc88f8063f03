"""Dead letters end to end: a dispatcher with no real worker, a broker that gives up, one reply each.

The fleet here is a dispatcher alone, in its own vhost and Redis database. A fake heartbeat makes it
believe a `csv` worker is alive, so requests are forwarded to `scf.ops.csv`, where the test plays the
worker: it lets requests expire, or rejects them until the broker's delivery limit dead-letters them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import redis
from cryptography.fernet import Fernet

from scf.fleet import keys
from scf.fleet.client import FleetClient
from scf.schemas import topology
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.services import Vhost, claim_redis_db, create_vhost, delete_vhost

pytestmark = pytest.mark.integration

SERVICE = "dlq_csv"
ABSENT = "dl_" + "0" * 32  # well formed, never given out


@pytest.fixture(scope="module")
def lonely_dispatcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vhost, str]]:
    vhost, claimed = create_vhost(), claim_redis_db()
    logs = tmp_path_factory.mktemp("dlq")
    env = fleet_env(vhost.amqp_url, claimed.url, Fernet.generate_key().decode(), Path(logs) / "data")
    env["SCF_DELIVERY_LIMIT"] = "2"
    dispatcher = FleetProcess(["dispatcher"], env, Path(logs) / "dispatcher.log")
    try:
        dispatcher.wait_ready()
        state = redis.Redis.from_url(claimed.url)
        state.zadd(keys.workers_of_type("csv"), {"fake-worker": time.time() + 3600})
        state.close()
        yield vhost, claimed.url
    finally:
        dispatcher.stop()
        delete_vhost(vhost)
        claimed.release()


@pytest.fixture(scope="module")
async def client(lonely_dispatcher: tuple[Vhost, str]) -> AsyncIterator[FleetClient]:
    vhost, _ = lonely_dispatcher
    async with await FleetClient.connect(vhost.amqp_url, timeout=30) as fleet_client:
        await fleet_client.create_connector(
            {"service_type": "csv", "service_name": SERVICE, "test_on_create": False}
        )
        yield fleet_client


@pytest.fixture
async def work_queue(lonely_dispatcher: tuple[Vhost, str]) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    vhost, _ = lonely_dispatcher
    connection = await aio_pika.connect_robust(vhost.amqp_url)
    channel = await connection.channel()
    queue = await channel.get_queue(topology.work_queue("csv"))
    try:
        yield queue
    finally:
        await connection.close()


def request(**extra: Any) -> dict[str, Any]:
    return {"operation": "preview", "data": {"file_data": "a\n1\n", "password": "dlq-canary-secret"}, **extra}


async def test_a_request_that_expires_in_the_queue_gets_one_deadline_reply_and_is_kept(
    client: FleetClient,
) -> None:
    result = await client.execute_operation(SERVICE, request(timeout=0.5))

    assert result.error is not None and result.error.code == "DEADLINE_EXCEEDED"
    page = await client.dead_letters(reason="expired", service_name=SERVICE)
    letter = next(d for d in page.dead_letters if d.operation_id == result.operation_id)
    assert letter.routing_key == "csv" and letter.exchange == topology.OPS_EXCHANGE
    assert "dlq-canary-secret" not in letter.model_dump_json()  # redacted for display
    stored = await client.get_result(result.operation_id)
    assert stored.error is not None and stored.error.code == "DEADLINE_EXCEEDED"


async def test_a_request_no_worker_can_finish_is_dead_lettered_at_the_delivery_limit(
    client: FleetClient, work_queue: aio_pika.abc.AbstractQueue
) -> None:
    call = asyncio.create_task(client.execute_operation(SERVICE, request(timeout=60)))
    rejected = 0
    async with work_queue.iterator() as deliveries:
        async for delivery in deliveries:  # a worker that dies on it every time
            await delivery.nack(requeue=True)
            rejected += 1
            if rejected == 3:  # the limit is 2: the third delivery was the last
                break
    result = await asyncio.wait_for(call, 30)

    assert result.error is not None and result.error.code == "DEAD_LETTERED"
    assert not result.error.retryable
    page = await client.dead_letters(reason="delivery_limit")
    letter = next(d for d in page.dead_letters if d.operation_id == result.operation_id)
    assert (letter.service_name, letter.attempts) == (SERVICE, 3)


async def test_replay_republishes_the_original_with_a_fresh_deadline_then_forgets_it(
    client: FleetClient, work_queue: aio_pika.abc.AbstractQueue
) -> None:
    expired = await client.execute_operation(SERVICE, request(timeout=0.3))
    page = await client.dead_letters(service_name=SERVICE, reason="expired")
    letter = next(d for d in page.dead_letters if d.operation_id == expired.operation_id)

    outcome = await client.replay_dead_letters([letter.id, ABSENT])
    message = await work_queue.get(timeout=10, fail=True)
    assert message is not None
    await message.ack()

    assert (outcome.done, outcome.missing) == (1, [ABSENT])
    envelope = json.loads(message.body)
    assert envelope["request"]["operation_id"] == expired.operation_id
    assert (
        envelope["request"]["data"]["password"] == "dlq-canary-secret"
    )  # the original, not the redacted view
    assert envelope["deadline"] > time.time()
    assert (message.headers or {})[topology.REPLAYED_FROM_HEADER] == letter.id
    after = await client.dead_letters(service_name=SERVICE)
    assert letter.id not in {d.id for d in after.dead_letters}


async def test_purge_by_filter_and_by_id(client: FleetClient) -> None:
    for _ in range(3):
        await client.execute_operation(SERVICE, request(timeout=0.2))
    before = await client.dead_letters(reason="expired")
    one = before.dead_letters[0].id

    by_id = await client.purge_dead_letters([one])
    rest = await client.purge_dead_letters(all=True, reason="expired")
    after = await client.dead_letters(reason="expired")

    assert by_id.done == 1 and rest.done == before.total - 1
    assert after.total == 0


async def test_a_refused_request_without_a_reply_queue_is_kept_not_dropped(
    lonely_dispatcher: tuple[Vhost, str], client: FleetClient
) -> None:
    vhost, _ = lonely_dispatcher
    connection = await aio_pika.connect_robust(vhost.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.REQUEST_EXCHANGE)
        body = json.dumps({"service_name": "no_such_connector", "operation": "query"}).encode()
        await exchange.publish(
            aio_pika.Message(
                body, type="operation.execute", content_type="application/json", message_id="op_nobody"
            ),
            topology.REQUEST_ROUTING_KEY,
        )
    finally:
        await connection.close()

    for _ in range(50):
        page = await client.dead_letters(reason="failed_without_reply")
        if any(d.operation_id == "op_nobody" for d in page.dead_letters):
            break
        await asyncio.sleep(0.1)
    letter = next(d for d in page.dead_letters if d.operation_id == "op_nobody")
    assert letter.error.code == "CONNECTOR_NOT_FOUND"
    assert (letter.exchange, letter.routing_key) == (topology.REQUEST_EXCHANGE, topology.REQUEST_ROUTING_KEY)
