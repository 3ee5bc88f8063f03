"""Every PostgreSQL operation through the fleet: AMQP request -> dispatcher -> worker -> real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from scf.fleet import keys
from scf.fleet.client import FleetClient
from scf.schemas.operation import OperationResult
from tests.support.services import PG_DSN

pytestmark = pytest.mark.integration

SERVICE = "orders_db"


@pytest.fixture(scope="module")
async def orders(client: FleetClient) -> AsyncIterator[str]:
    table = f"scf_orders_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_DSN)
    await admin.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, sku text NOT NULL, qty int NOT NULL)")
    created = await client.create_connector(
        {
            "service_type": "postgresql",
            "service_name": SERVICE,
            "host": "127.0.0.1",
            "port": 5432,
            "database": "test",
            "username": "postgres",
            "custom_config": {"schema": "public", "connection_pool_size": 2, "max_connections": 8},
        }
    )
    assert created.created.connector_info.connection_status == "connected", created.created
    try:
        yield table
    finally:
        await client.delete_connector(SERVICE)
        await admin.execute(f"DROP TABLE IF EXISTS {table}")
        await admin.close()


async def call(client: FleetClient, operation: str, **body: Any) -> OperationResult:
    return await client.execute_operation(SERVICE, {"operation": operation, **body})


async def ok(client: FleetClient, operation: str, **body: Any) -> OperationResult:
    result = await call(client, operation, **body)
    assert result.status == "success", result.error
    return result


async def count(table: str, where: str = "true") -> int:
    admin = await asyncpg.connect(PG_DSN)
    try:
        return int(await admin.fetchval(f"SELECT count(*) FROM {table} WHERE {where}"))
    finally:
        await admin.close()


async def test_keyed_insert_delivered_twice_writes_once_and_says_replayed(
    client: FleetClient, orders: str
) -> None:
    body = {"data": {"table_name": orders, "records": [{"id": 1, "sku": "a", "qty": 1}]}}
    key = f"fleet-{orders}-1"
    first = await ok(client, "insert", idempotency_key=key, **body)
    second = await ok(client, "insert", idempotency_key=key, **body)

    assert (first.replayed, second.replayed) == (False, True)
    assert second.result_data == {"inserted_rows": 1, "updated_rows": 0}
    assert await count(orders, "id = 1") == 1


async def test_upsert_update_delete_and_a_transaction(client: FleetClient, orders: str) -> None:
    records = [{"id": i, "sku": f"s{i}", "qty": i} for i in range(10, 20)]
    await ok(client, "insert", data={"table_name": orders, "records": records})
    upsert = await ok(
        client,
        "insert",
        data={
            "table_name": orders,
            "records": [{"id": 10, "sku": "s10", "qty": 100}, {"id": 20, "sku": "n", "qty": 1}],
        },
        parameters={"on_conflict": "update"},
    )
    assert upsert.result_data == {"inserted_rows": 1, "updated_rows": 1}

    updated = await ok(
        client,
        "update",
        data={
            "table_name": orders,
            "values": {"qty": 0},
            "filters": [{"column": "id", "operator": "in", "value": [11, 12]}],
        },
    )
    deleted = await ok(
        client,
        "delete",
        data={"table_name": orders, "filters": [{"column": "id", "operator": ">=", "value": 18}]},
    )
    assert (updated.records_affected, deleted.records_affected) == (2, 3)

    tx = await ok(
        client,
        "transaction",
        data={
            "steps": [
                {
                    "operation": "insert",
                    "data": {"table_name": orders, "records": [{"id": 30, "sku": "t", "qty": 1}]},
                },
                {
                    "operation": "delete",
                    "data": {"table_name": orders, "filters": [{"column": "id", "value": 10}]},
                },
            ]
        },
    )
    assert tx.records_affected == 2
    assert await count(orders, "id BETWEEN 10 AND 30") == 8  # 10..17 + 30 - 10


async def test_a_paged_query_through_the_fleet_returns_every_row_once(
    client: FleetClient, orders: str
) -> None:
    records = [{"id": i, "sku": f"p{i}", "qty": i % 7} for i in range(1000, 3500)]
    await ok(client, "insert", data={"table_name": orders, "records": records})
    seen: list[int] = []
    token: str | None = None
    pages = 0
    while True:
        page = await ok(
            client,
            "query",
            parameters={
                "query": f"SELECT id, sku FROM {orders} WHERE id >= $1",
                "query_params": [1000],
                "page_size": 400,
                "page_key": ["id"],
            },
            page_token=token,
        )
        pages += 1
        seen.extend(r["id"] for r in page.result_data["rows"])
        token = page.next_page_token
        if token is None:
            break

    assert seen == list(range(1000, 3500))
    assert pages == 7


async def test_cache_ttl_keeps_the_reply_in_the_fleets_redis(
    client: FleetClient, orders: str, redis_url: str
) -> None:
    await ok(client, "insert", data={"table_name": orders, "records": [{"id": 5000, "sku": "c", "qty": 1}]})
    read = {"parameters": {"query": f"SELECT qty FROM {orders} WHERE id = 5000", "cache_ttl": 30}}
    first = await ok(client, "query", **read)
    await ok(
        client,
        "update",
        data={"table_name": orders, "values": {"qty": 2}, "filters": [{"column": "id", "value": 5000}]},
    )
    second = await ok(client, "query", **read)

    assert (first.result_data["cached"], second.result_data["cached"]) == (False, True)
    assert second.result_data["rows"] == [{"qty": 1}]
    state = aioredis.Redis.from_url(redis_url)
    try:
        cached = [k async for k in state.scan_iter(match=keys.cached_result(SERVICE, "*"))]
        ttl = await state.ttl(cached[0])
    finally:
        await state.aclose()
    assert len(cached) == 1
    assert 0 < ttl <= 30


async def test_typed_errors_come_back_through_the_fleet(client: FleetClient, orders: str) -> None:
    bad_name = await call(client, "insert", data={"table_name": "x; DROP TABLE y", "records": [{"id": 1}]})
    conflict_key = f"fleet-{orders}-conflict"
    await ok(
        client,
        "insert",
        idempotency_key=conflict_key,
        data={"table_name": orders, "records": [{"id": 7000, "sku": "k", "qty": 1}]},
    )
    conflict = await call(
        client,
        "insert",
        idempotency_key=conflict_key,
        data={"table_name": orders, "records": [{"id": 7001, "sku": "k", "qty": 1}]},
    )
    writes = await call(client, "query", parameters={"query": f"DELETE FROM {orders}"})

    assert bad_name.error is not None and bad_name.error.code == "INVALID_IDENTIFIER"
    assert conflict.error is not None and conflict.error.code == "IDEMPOTENCY_CONFLICT"
    assert writes.error is not None and writes.error.code == "PERMISSION_DENIED"
    assert not any(e.retryable for e in (bad_name.error, conflict.error, writes.error))
