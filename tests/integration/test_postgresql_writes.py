"""Keyed (exactly-once) writes, transactions, deadlines and the query cache against real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from scf.connectors.postgresql import PostgreSQLOutputConnector
from scf.connectors.sources import DEADLINE
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode
from scf.schemas.operation import OperationOutcome, OperationRequest
from tests.support.postgres import Admin, MakeTable, admin, connector, make_table, pg_connection

pytestmark = pytest.mark.integration

__all__ = ["admin", "connector", "make_table"]  # fixtures used by name below

LEDGER = "scf_idempotency_ledger"


@pytest.fixture
async def items(make_table: MakeTable) -> str:
    # no unique constraint: a duplicated effect stays visible as a second row
    return await make_table("sku text NOT NULL, qty int NOT NULL")


# Keys carry the test's table name: the ledger outlives a test run, and a key is per connector.


def keyed(operation: str, key: str | None, data: dict[str, Any], **parameters: Any) -> OperationRequest:
    return OperationRequest(operation=operation, data=data, parameters=parameters, idempotency_key=key)


async def rows(admin: Admin, table: str) -> list[tuple[str, int]]:
    return [
        (r["sku"], r["qty"]) for r in await admin.fetch(f"SELECT sku, qty FROM {table} ORDER BY sku, qty")
    ]


async def test_the_same_keyed_insert_twice_writes_one_row_and_replays(
    connector: PostgreSQLOutputConnector, admin: Admin, items: str
) -> None:
    request = keyed("insert", f"order-1-{items}", {"table_name": items, "records": [{"sku": "a", "qty": 1}]})
    first = await connector.execute(request)
    second = await connector.execute(request)

    assert await rows(admin, items) == [("a", 1)]
    assert not first.replayed
    assert second.replayed
    assert second.result_data == first.result_data == {"inserted_rows": 1, "updated_rows": 0}
    assert second.records_affected == 1


async def test_the_same_key_with_another_payload_is_a_permanent_conflict(
    connector: PostgreSQLOutputConnector, admin: Admin, items: str
) -> None:
    await connector.execute(
        keyed("insert", f"k-{items}", {"table_name": items, "records": [{"sku": "a", "qty": 1}]})
    )
    with pytest.raises(ConnectorError) as caught:
        await connector.execute(
            keyed("insert", f"k-{items}", {"table_name": items, "records": [{"sku": "a", "qty": 2}]})
        )

    assert caught.value.code == ErrorCode.IDEMPOTENCY_CONFLICT
    assert caught.value.category is ErrorCategory.PERMANENT
    assert await rows(admin, items) == [("a", 1)]


async def test_concurrent_duplicates_of_one_key_apply_once(admin: Admin, items: str) -> None:
    pg = PostgreSQLOutputConnector(pg_connection(custom_config={"max_connections": 8}))
    request = keyed("insert", f"burst-{items}", {"table_name": items, "records": [{"sku": "b", "qty": 5}]})
    try:
        outcomes = await asyncio.gather(*(pg.execute(request) for _ in range(8)))
    finally:
        await pg.close()

    assert await rows(admin, items) == [("b", 5)]
    assert sorted(o.replayed for o in outcomes) == [False] + [True] * 7


async def test_keys_are_per_connector(admin: Admin, items: str) -> None:
    data = {"table_name": items, "records": [{"sku": "c", "qty": 1}]}
    one = PostgreSQLOutputConnector(pg_connection(service_name="writer_one"))
    two = PostgreSQLOutputConnector(pg_connection(service_name="writer_two"))
    try:
        await one.execute(keyed("insert", f"shared-{items}", data))
        replay = await two.execute(keyed("insert", f"shared-{items}", data))
    finally:
        await one.close()
        await two.close()

    assert not replay.replayed
    assert await rows(admin, items) == [("c", 1), ("c", 1)]


async def test_a_failed_keyed_write_leaves_the_key_free(
    connector: PostgreSQLOutputConnector, admin: Admin, items: str
) -> None:
    bad = keyed(
        "insert", f"retry-me-{items}", {"table_name": items, "records": [{"sku": "d", "qty": "many"}]}
    )
    with pytest.raises(ConnectorError):
        await connector.execute(bad)
    good = keyed("insert", f"retry-me-{items}", {"table_name": items, "records": [{"sku": "d", "qty": 4}]})
    outcome = await connector.execute(good)

    assert not outcome.replayed
    assert await rows(admin, items) == [("d", 4)]


async def test_keyed_update_and_delete_replay_without_changing_again(
    connector: PostgreSQLOutputConnector, admin: Admin, items: str
) -> None:
    await admin.execute(f"INSERT INTO {items} VALUES ('e', 1), ('e', 2)")
    bump = keyed(
        "update",
        f"bump-{items}",
        {"table_name": items, "values": {"qty": 10}, "filters": [{"column": "qty", "value": 1}]},
    )
    first = await connector.execute(bump)
    await admin.execute(f"INSERT INTO {items} VALUES ('e', 1)")  # the filter matches again
    second = await connector.execute(bump)

    assert (first.records_affected, second.records_affected, second.replayed) == (1, 1, True)
    assert await rows(admin, items) == [("e", 1), ("e", 2), ("e", 10)]


async def test_the_ledger_cannot_be_written_by_operations(
    connector: PostgreSQLOutputConnector, items: str
) -> None:
    await connector.execute(
        keyed("insert", f"warm-{items}", {"table_name": items, "records": [{"sku": "f", "qty": 1}]})
    )
    with pytest.raises(ConnectorError) as caught:
        await connector.execute(keyed("delete", None, {"table_name": LEDGER, "filters": []}, allow_all=True))
    assert caught.value.code == ErrorCode.INVALID_REQUEST


async def test_a_transaction_applies_every_step_or_none(
    connector: PostgreSQLOutputConnector, admin: Admin, items: str
) -> None:
    steps: list[dict[str, Any]] = [
        {"operation": "insert", "data": {"table_name": items, "records": [{"sku": "g", "qty": 1}]}},
        {
            "operation": "update",
            "data": {"table_name": items, "values": {"qty": 2}, "filters": [{"column": "sku", "value": "g"}]},
        },
        {"operation": "insert", "data": {"table_name": items, "records": [{"sku": "h", "qty": 3}]}},
    ]
    outcome = await connector.execute(OperationRequest(operation="transaction", data={"steps": steps}))
    assert await rows(admin, items) == [("g", 2), ("h", 3)]
    assert [s["records_affected"] for s in outcome.result_data["steps"]] == [1, 1, 1]
    assert outcome.records_affected == 3

    failing = [
        *steps,
        {"operation": "insert", "data": {"table_name": items, "records": [{"sku": None, "qty": 1}]}},
    ]
    with pytest.raises(ConnectorError) as caught:
        await connector.execute(OperationRequest(operation="transaction", data={"steps": failing}))
    assert caught.value.category is ErrorCategory.PERMANENT
    assert await rows(admin, items) == [("g", 2), ("h", 3)]  # the first three steps were rolled back


async def test_a_bad_step_is_refused_before_any_step_runs(
    connector: PostgreSQLOutputConnector, admin: Admin, items: str
) -> None:
    steps = [
        {"operation": "insert", "data": {"table_name": items, "records": [{"sku": "i", "qty": 1}]}},
        {"operation": "delete", "data": {"table_name": items}},  # no filters, no allow_all
    ]
    with pytest.raises(ConnectorError) as caught:
        await connector.execute(OperationRequest(operation="transaction", data={"steps": steps}))
    assert "data.steps[1]" in caught.value.message
    assert await rows(admin, items) == []


async def test_a_keyed_transaction_replays(
    connector: PostgreSQLOutputConnector, admin: Admin, items: str
) -> None:
    steps = [{"operation": "insert", "data": {"table_name": items, "records": [{"sku": "j", "qty": 1}]}}]
    request = OperationRequest(
        operation="transaction", data={"steps": steps}, idempotency_key=f"tx-1-{items}"
    )
    await connector.execute(request)
    replay = await connector.execute(request)
    assert replay.replayed
    assert await rows(admin, items) == [("j", 1)]


async def test_a_statement_past_the_deadline_is_cancelled_on_the_server(
    connector: PostgreSQLOutputConnector, admin: Admin
) -> None:
    marker = f"deadline-{time.time_ns()}"
    request = OperationRequest(
        operation="query", parameters={"query": f"SELECT pg_sleep(600), '{marker}'"}, timeout=1.5
    )
    token = DEADLINE.set(time.time() + 1.5)
    started = time.monotonic()
    try:
        with pytest.raises(ConnectorError) as caught:
            await connector.execute(request)
    finally:
        DEADLINE.reset(token)
    elapsed = time.monotonic() - started

    assert caught.value.code == ErrorCode.TIMEOUT
    assert elapsed < 10  # bounded by the deadline, not by pg_sleep(600)
    still = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active'", f"%{marker}%"
    )
    assert still == 0  # the server stopped the statement; it is not left running after the caller gave up


async def test_cache_ttl_serves_a_repeated_read_from_the_cache(
    connector: PostgreSQLOutputConnector, admin: Admin, items: str
) -> None:
    await admin.execute(f"INSERT INTO {items} VALUES ('k', 1)")
    read = OperationRequest(
        operation="query", parameters={"query": f"SELECT sku, qty FROM {items}", "cache_ttl": 60}
    )
    first: OperationOutcome = await connector.execute(read)
    await admin.execute(f"INSERT INTO {items} VALUES ('k', 2)")
    second = await connector.execute(read)
    uncached = await connector.execute(
        OperationRequest(operation="query", parameters={"query": f"SELECT sku, qty FROM {items}"})
    )

    assert first.result_data["cached"] is False
    assert second.result_data["cached"] is True
    assert second.result_data["rows"] == first.result_data["rows"] == [{"sku": "k", "qty": 1}]
    assert len(uncached.result_data["rows"]) == 2


async def test_a_pooled_connection_the_server_dropped_is_replaced_for_a_read_and_a_keyed_write(
    admin: Admin, items: str
) -> None:
    pg = PostgreSQLOutputConnector(pg_connection(retry_attempts=0, custom_config={"max_connections": 1}))
    pid_query = OperationRequest(operation="query", parameters={"query": "SELECT pg_backend_pid() AS pid"})
    insert = keyed("insert", f"stale-{items}", {"table_name": items, "records": [{"sku": "s", "qty": 1}]})
    try:
        for request in (pid_query, insert):
            pid = (await pg.execute(pid_query)).result_data["rows"][0]["pid"]
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
            outcome = await pg.execute(request)
            assert outcome is not None
        unkeyed = keyed("insert", None, {"table_name": items, "records": [{"sku": "u", "qty": 1}]})
        pid = (await pg.execute(pid_query)).result_data["rows"][0]["pid"]
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(ConnectorError) as caught:  # an unkeyed write is not silently repeated
            await pg.execute(unkeyed)
    finally:
        await pg.close()

    assert caught.value.category is ErrorCategory.TRANSIENT
    assert await rows(admin, items) == [("s", 1)]
