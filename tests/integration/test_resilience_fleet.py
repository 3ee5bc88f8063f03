"""Resilience through the session fleet: delayed retries, cancellation and keyed (idempotent) calls."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from scf.fleet.client import FleetClient
from scf.schemas.errors import ConnectorError
from tests.support.fleet import FleetProcess
from tests.support.proxy import TcpProxy
from tests.support.services import PG_DSN, claim_redis_db

pytestmark = pytest.mark.integration


@pytest.fixture
async def table() -> AsyncIterator[str]:
    name = f"scf_res_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_DSN)
    await admin.execute(f"CREATE TABLE {name} (id int, note text)")
    try:
        yield name
    finally:
        await admin.execute(f"DROP TABLE IF EXISTS {name}")
        await admin.close()


async def rows(table: str) -> int:
    admin = await asyncpg.connect(PG_DSN)
    try:
        return int(await admin.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await admin.close()


def pg_body(name: str, port: int, **extra: Any) -> dict[str, Any]:
    return {
        "service_type": "postgresql",
        "service_name": name,
        "host": "127.0.0.1",
        "port": port,
        "database": "test",
        "username": "postgres",
        "connection_timeout": 2,
        "test_on_create": False,
        **extra,
    }


async def test_a_transient_outage_shorter_than_the_deadline_is_ridden_out_by_a_delayed_retry(
    client: FleetClient, table: str, fleet: dict[str, FleetProcess]
) -> None:
    proxy = TcpProxy(5432)
    await proxy.start()
    port = proxy.port
    await proxy.stop()  # the database "is down": connections to the proxy port are refused
    name = f"flaky_{uuid.uuid4().hex[:6]}"
    await client.create_connector(pg_body(name, port, retry_attempts=0))
    operation_id = f"op_{uuid.uuid4().hex}"
    insert = {"table_name": table, "records": [{"id": 1}]}
    try:
        call = asyncio.create_task(
            client.execute_operation(
                name, {"operation": "insert", "operation_id": operation_id, "data": insert, "timeout": 20}
            )
        )
        for _ in range(100):  # until the worker says the first try went to a delayed-retry queue
            if moved_to_retry(fleet["worker"], operation_id):
                break
            await asyncio.sleep(0.05)
        assert moved_to_retry(fleet["worker"], operation_id), (
            "the first try should have gone to a retry queue"
        )
        restored = TcpProxy(5432)
        restored.port = port
        await restored.start()  # back up before the retry comes round
        try:
            result = await asyncio.wait_for(call, 30)
        finally:
            await restored.stop()
    finally:
        await client.delete_connector(name)

    assert result.status == "success", result.error
    assert await rows(table) == 1


def moved_to_retry(worker: FleetProcess, operation_id: str) -> bool:
    return any(operation_id in line and "retry_later" in line for line in worker.output().splitlines())


async def test_a_cancelled_ingest_stops_between_batches(client: FleetClient, table: str) -> None:
    sink_name, csv_name = f"sink_{uuid.uuid4().hex[:6]}", f"csv_{uuid.uuid4().hex[:6]}"
    await client.create_connector(pg_body(sink_name, 5432))
    await client.create_connector({"service_type": "csv", "service_name": csv_name, "test_on_create": False})
    total = 60_000
    body = "id,note\n" + "".join(f"{i},row {i}\n" for i in range(total))
    cancelled: list[str] = []

    def on_progress(update: dict[str, Any]) -> None:
        if not cancelled:
            cancelled.append(update["operation_id"])
            asyncio.get_running_loop().create_task(client.cancel_operation(update["operation_id"]))

    try:
        result = await client.execute_operation(
            csv_name,
            {
                "operation": "ingest",
                "data": {"file_data": body},
                "parameters": {"sink": {"service_name": sink_name, "table_name": table, "batch_size": 100}},
                "timeout": 120,
            },
            on_progress=on_progress,
        )
    finally:
        await client.delete_connector(csv_name)
        await client.delete_connector(sink_name)

    assert cancelled, "no progress was reported"
    assert result.status == "failed"
    assert result.error is not None and result.error.code == "CANCELLED"
    written = await rows(table)
    assert 0 < written < total  # what was written before the cancel stays; the rest never ran


async def test_a_cancel_sent_before_the_operation_exists_is_refused_and_stops_nothing(
    client: FleetClient, table: str
) -> None:
    """A cancel binds to an existing operation: one sent in advance would stop whoever used the id next.
    (Cancelling a queued operation: tests/security/test_amqp_envelopes.py.)"""
    name = f"pg_{uuid.uuid4().hex[:6]}"
    await client.create_connector(pg_body(name, 5432))
    operation_id = f"op_{uuid.uuid4().hex}"
    try:
        with pytest.raises(ConnectorError) as refused:
            await client.cancel_operation(operation_id)
        result = await client.execute_operation(
            name,
            {
                "operation": "insert",
                "operation_id": operation_id,
                "data": {"table_name": table, "records": [{"id": 1}]},
            },
        )
    finally:
        await client.delete_connector(name)

    assert refused.value.code == "NOT_FOUND"
    assert result.status == "success", result.error
    assert await rows(table) == 1


async def test_an_idempotency_key_makes_a_non_transactional_write_happen_once(client: FleetClient) -> None:
    name = f"cache_{uuid.uuid4().hex[:6]}"
    db = claim_redis_db()  # the session's private Redis, not a user's db 3 on the shared one
    await client.create_connector(
        {
            "service_type": "redis",
            "service_name": name,
            "host": db.host,
            "port": db.port,
            "custom_config": {"db": db.index},
        }
    )
    key = f"counter-{uuid.uuid4().hex}"
    incr = {"operation": "incr", "data": {"key": key, "amount": 5}, "idempotency_key": f"once-{key}"}
    try:
        results = await asyncio.gather(*(client.execute_operation(name, incr) for _ in range(5)))
        again = await client.execute_operation(name, incr)
        read = await client.execute_operation(name, {"operation": "get", "data": {"key": key}})
        conflict = await client.execute_operation(name, {**incr, "data": {"key": key, "amount": 6}})
        await client.execute_operation(name, {"operation": "delete", "data": {"keys": [key]}})
    finally:
        await client.delete_connector(name)
        db.release()

    assert all(r.status == "success" for r in results), [r.error for r in results]
    assert sorted(r.replayed for r in results) == [False, True, True, True, True]
    assert again.replayed and again.result_data == results[0].result_data
    assert read.result_data["value"] == "5"
    assert conflict.error is not None and conflict.error.code == "IDEMPOTENCY_CONFLICT"
