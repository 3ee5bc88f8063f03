"""The worker's own operation-id claim and cancel check, with work messages published straight to
`scf.ops` (as a client on the fast path does: no dispatcher claimed anything first).

A read runs while its id is claimed and a write waits for the claim, so both must end the same way when
the id is someone else's: OPERATION_ID_IN_USE, nothing stored under the id, no effect. A cancel the
worker heard as an event stops a delivery that starts afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import asyncpg
import pytest
import redis.asyncio as aioredis

from scf.fleet import keys
from scf.fleet.client import FleetClient
from scf.schemas import topology
from scf.schemas.operation import OperationEnvelope, OperationRequest, delivery_identity
from tests.support.pg_schema import create_schema, drop_schema
from tests.support.services import PG_DSN, Vhost

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def service(client: FleetClient) -> AsyncIterator[tuple[str, str, int]]:
    """A PostgreSQL connector on a schema of our own with one table: (name, schema, version)."""
    admin = await asyncpg.connect(PG_DSN)
    schema = await create_schema(admin)
    await admin.execute(f"CREATE TABLE {schema}.claimed (id int)")
    name = f"claims_{uuid.uuid4().hex[:6]}"
    await client.create_connector(
        {
            "service_type": "postgresql",
            "service_name": name,
            "host": "127.0.0.1",
            "port": 5432,
            "database": "test",
            "username": "postgres",
            "test_on_create": False,
            "custom_config": {"schema": schema},
        }
    )
    try:
        yield name, schema, (await client.get_connector(name)).version
    finally:
        await client.delete_connector(name)
        await drop_schema(admin, schema)
        await admin.close()


@pytest.fixture
async def state(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.from_url(redis_url, decode_responses=True)
    try:
        yield redis
    finally:
        await redis.aclose()


@pytest.fixture
async def channel(vhost: Vhost) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect_robust(vhost.amqp_url)
    try:
        yield await connection.channel(publisher_confirms=True)
    finally:
        await connection.close()


async def send(
    channel: aio_pika.abc.AbstractChannel, service: tuple[str, str, int], request: dict[str, Any], corr: str
) -> dict[str, Any]:
    """Publish one work message straight to `scf.ops` and wait for its reply."""
    name, _, version = service
    envelope = OperationEnvelope(
        request=OperationRequest.model_validate({**request, "service_name": name}),
        service_type="postgresql",
        connector_version=version,
        deadline=time.time() + 30,
    )
    replies = await channel.declare_queue("", exclusive=True, auto_delete=True)
    ops = await channel.get_exchange(topology.OPS_EXCHANGE)
    message = aio_pika.Message(
        envelope.model_dump_json().encode(),
        type="operation.execute",
        content_type="application/json",
        correlation_id=corr,
        reply_to=replies.name,
        message_id=envelope.request.operation_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    await ops.publish(message, "postgresql", mandatory=True)
    async with asyncio.timeout(30), replies.iterator() as incoming:
        async for reply in incoming:
            await reply.ack()
            body: dict[str, Any] = json.loads(reply.body)
            return body
    raise AssertionError("no reply")


async def count(schema: str) -> int:
    admin = await asyncpg.connect(PG_DSN)
    try:
        return int(await admin.fetchval(f"SELECT count(*) FROM {schema}.claimed"))
    finally:
        await admin.close()


def code(reply: dict[str, Any]) -> str | None:
    error = reply.get("error")
    return error.get("code") if isinstance(error, dict) else None


async def test_a_read_whose_id_another_request_holds_is_refused_and_stores_nothing(
    channel: aio_pika.abc.AbstractChannel, service: tuple[str, str, int], state: aioredis.Redis
) -> None:
    operation_id = f"op_read_taken_{uuid.uuid4().hex[:8]}"
    await state.set(keys.operation_claim(operation_id), "someone-else", ex=60)
    query = {"operation": "query", "operation_id": operation_id, "parameters": {"query": "SELECT 1 AS x"}}

    reply = await send(channel, service, query, uuid.uuid4().hex)
    await asyncio.sleep(0.2)  # a store would have landed with the ack

    assert code(reply) == "OPERATION_ID_IN_USE", reply
    assert "result_data" not in reply or reply["result_data"] is None
    assert await state.exists(keys.result(operation_id)) == 0
    assert await state.get(keys.operation_claim(operation_id)) == "someone-else"


async def test_a_read_whose_id_is_free_claims_it_and_stores_its_result(
    channel: aio_pika.abc.AbstractChannel, service: tuple[str, str, int], state: aioredis.Redis
) -> None:
    operation_id = f"op_read_free_{uuid.uuid4().hex[:8]}"
    corr = uuid.uuid4().hex
    query = {"operation": "query", "operation_id": operation_id, "parameters": {"query": "SELECT 7 AS x"}}

    reply = await send(channel, service, query, corr)

    request = OperationRequest.model_validate({**query, "service_name": service[0]})
    assert reply["status"] == "success", reply
    assert await state.get(keys.operation_claim(operation_id)) == delivery_identity(None, corr, request)
    stored = json.loads(await state.get(keys.result(operation_id)) or "{}")
    assert stored["result_data"] == reply["result_data"]


async def test_a_write_whose_id_another_request_holds_never_runs(
    channel: aio_pika.abc.AbstractChannel, service: tuple[str, str, int], state: aioredis.Redis
) -> None:
    operation_id = f"op_write_taken_{uuid.uuid4().hex[:8]}"
    await state.set(keys.operation_claim(operation_id), "someone-else", ex=60)
    insert = {
        "operation": "insert",
        "operation_id": operation_id,
        "data": {"table_name": "claimed", "records": [{"id": 1}]},
    }

    reply = await send(channel, service, insert, uuid.uuid4().hex)

    assert code(reply) == "OPERATION_ID_IN_USE", reply
    assert await count(service[1]) == 0
    assert await state.exists(keys.result(operation_id)) == 0


async def test_a_cancel_heard_before_the_delivery_stops_it_when_it_starts(
    channel: aio_pika.abc.AbstractChannel,
    service: tuple[str, str, int],
    state: aioredis.Redis,
    client: FleetClient,
) -> None:
    operation_id = f"op_cancel_heard_{uuid.uuid4().hex[:8]}"
    corr = uuid.uuid4().hex
    insert = {
        "operation": "insert",
        "operation_id": operation_id,
        "data": {"table_name": "claimed", "records": [{"id": 2}]},
    }
    request = OperationRequest.model_validate({**insert, "service_name": service[0]})
    # The operation exists (claimed, as a dispatcher would have) but has not reached a worker yet.
    await state.set(keys.operation_claim(operation_id), delivery_identity(None, corr, request), ex=60)
    await client.cancel_operation(operation_id)  # the mark, then the event every worker hears
    await asyncio.sleep(0.3)  # the event is on its way to the worker while the message is "queued"

    reply = await send(channel, service, insert, corr)

    assert code(reply) == "CANCELLED", reply
    assert await count(service[1]) == 0
