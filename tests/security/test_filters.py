"""Filters that cannot narrow the rows, through the fleet: `update`/`delete` refuse them without allow_all.

`id is_not_null` matches every row of a table whose `id` is never NULL; such a filter must count as
"no filter" (`scf/connectors/postgresql/requests.py: narrows`), with the rows left as they were.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from scf.fleet.client import FleetClient
from scf.schemas.operation import OperationResult
from tests.support.services import PG_DSN

pytestmark = pytest.mark.integration

_SUFFIX = uuid.uuid4().hex[:10]
SERVICE = f"sec_filters_{_SUFFIX}"
ROWS = [(1, "a", None), (2, "b", "x"), (3, "c", "y")]

#: Each list of conditions (joined with AND) can match every row.
NON_NARROWING: list[list[dict[str, Any]]] = [
    [{"column": "id", "operator": "is_not_null"}],
    [{"column": "note", "operator": "is_null"}],
    [{"column": "id", "operator": "!=", "value": -1}],
    [{"column": "id", "operator": "not_in", "value": [-1, -2]}],
    [{"column": "id", "operator": "not_in", "value": []}],
    [{"column": "name", "operator": "like", "value": "%"}],
    [{"column": "name", "operator": "like", "value": "_%"}],
    [{"column": "name", "operator": "like", "value": "\\%"}],
    [{"column": "name", "operator": "like", "value": ""}],
    [{"column": "id", "operator": "is_not_null"}, {"column": "name", "operator": "!=", "value": "zz"}],
    [{"column": "id", "operator": "is_not_null"}, {"column": "id", "operator": "is_not_null"}],
]


@pytest.fixture(scope="module")
async def table(client: FleetClient) -> AsyncIterator[str]:
    name = f"scf_sec_filters_{_SUFFIX}"
    admin = await asyncpg.connect(PG_DSN)
    await admin.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, name text NOT NULL, note text)")
    await client.create_connector(
        {
            "service_type": "postgresql",
            "service_name": SERVICE,
            "host": "127.0.0.1",
            "port": 5432,
            "database": "test",
            "username": "postgres",
        }
    )
    try:
        yield name
    finally:
        await client.delete_connector(SERVICE)
        await admin.execute(f"DROP TABLE IF EXISTS {name}")
        await admin.close()


@pytest.fixture
async def rows(table: str) -> AsyncIterator[asyncpg.Connection]:
    admin = await asyncpg.connect(PG_DSN)
    await admin.execute(f"TRUNCATE {table}")
    await admin.executemany(f"INSERT INTO {table} VALUES ($1, $2, $3)", ROWS)
    try:
        yield admin
    finally:
        await admin.close()


async def current(admin: asyncpg.Connection, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await admin.fetch(f"SELECT id, name, note FROM {table} ORDER BY id")]


async def call(client: FleetClient, operation: str, data: dict[str, Any], **params: Any) -> OperationResult:
    return await client.execute_operation(
        SERVICE, {"operation": operation, "data": data, "parameters": params}
    )


@pytest.mark.parametrize("filters", NON_NARROWING, ids=lambda f: " AND ".join(c["operator"] for c in f))
async def test_a_filter_that_cannot_narrow_is_refused_without_allow_all(
    client: FleetClient, table: str, rows: asyncpg.Connection, filters: list[dict[str, Any]]
) -> None:
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("update", {"table_name": table, "values": {"name": "pwned"}, "filters": filters}),
        ("delete", {"table_name": table, "filters": filters}),
        (
            "transaction",
            {"steps": [{"operation": "delete", "data": {"table_name": table, "filters": filters}}]},
        ),
    ]
    for operation, data in attempts:
        result = await call(client, operation, data)
        assert result.status == "failed", (operation, filters)
        assert result.error is not None
        assert (result.error.category, result.error.code) == ("permanent", "INVALID_REQUEST"), result.error
        assert "every row" in result.error.message
    assert await current(rows, table) == ROWS
    # the fleet still serves a narrowing change right after
    done = await call(
        client,
        "update",
        {"table_name": table, "values": {"note": "z"}, "filters": [{"column": "id", "value": 1}]},
    )
    assert (done.status, done.records_affected) == ("success", 1), done.error


async def test_allow_all_still_changes_every_row(
    client: FleetClient, table: str, rows: asyncpg.Connection
) -> None:
    filters = [{"column": "id", "operator": "is_not_null"}]
    result = await call(
        client, "update", {"table_name": table, "values": {"note": "all"}, "filters": filters}, allow_all=True
    )
    assert (result.status, result.records_affected) == ("success", 3), result.error


@pytest.mark.parametrize(
    "filters",
    [
        [{"column": "id", "operator": "=", "value": 2}],
        [{"column": "id", "operator": ">=", "value": 2}],
        [{"column": "id", "operator": "in", "value": [2, 3]}],
        [{"column": "name", "operator": "like", "value": "b%"}],
        [{"column": "note", "operator": "is_not_null"}, {"column": "id", "operator": "<", "value": 3}],
    ],
)
async def test_a_narrowing_filter_changes_only_its_rows(
    client: FleetClient, table: str, rows: asyncpg.Connection, filters: list[dict[str, Any]]
) -> None:
    result = await call(client, "delete", {"table_name": table, "filters": filters})
    assert result.status == "success", result.error
    assert (1, "a", None) in await current(rows, table)
