"""The one request convention against real PostgreSQL: the spec's shapes run as written, the new shapes
(`parameters.table`, `parameters.filters`, `parameters.page_size`) do the same, old places still work."""

from __future__ import annotations

from typing import Any

import pytest

from scf.connectors.postgresql import PostgreSQLOutputConnector
from scf.schemas.errors import ConnectorError, ErrorCode
from scf.schemas.operation import OperationRequest
from tests.support.postgres import Admin, MakeTable, admin, connector, make_table

pytestmark = pytest.mark.integration

__all__ = ["admin", "connector", "make_table"]  # fixtures used by name below


@pytest.fixture
async def users(make_table: MakeTable) -> str:
    return await make_table("id int PRIMARY KEY, name text NOT NULL")


async def names(admin: Admin, table: str) -> list[tuple[int, str]]:
    return [(r["id"], r["name"]) for r in await admin.fetch(f"SELECT id, name FROM {table} ORDER BY id")]


async def test_the_spec_insert_and_query_examples_run_as_written(
    connector: PostgreSQLOutputConnector, admin: Admin, users: str
) -> None:
    insert = await connector.execute_operation(
        {
            "connection_id": "analytics_db",
            "operation": "insert",
            "data": {"table_name": users, "records": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]},
            "parameters": {"batch_size": 1000, "on_conflict": "update"},
        }
    )
    assert insert.status == "success", insert.error
    again = await connector.execute_operation(
        {
            "operation": "insert",
            "data": {"table_name": users, "records": [{"id": 2, "name": "B"}]},
            "parameters": {"batch_size": 1000, "on_conflict": "update"},
        }
    )
    assert again.status == "success", again.error
    query = await connector.execute_operation(
        {
            "operation": "query",
            "data": {},
            "parameters": {"query": f"SELECT id, name FROM {users} WHERE id >= $1", "query_params": [1]},
        }
    )
    assert query.status == "success", query.error
    assert sorted(r["name"] for r in query.result_data["rows"]) == ["B", "a"]


async def test_writes_in_the_convention(
    connector: PostgreSQLOutputConnector, admin: Admin, users: str
) -> None:
    async def run(operation: str, data: dict[str, Any], **parameters: Any) -> int:
        request = OperationRequest(operation=operation, data=data, parameters=parameters)
        return (await connector.execute(request)).records_affected

    rows = {"columns": ["id", "name"], "rows": [[1, "a"], [2, "b"], [3, "c"]]}
    assert await run("insert", rows, table=users) == 3
    by_id = [{"column": "id", "operator": "=", "value": 2}]
    assert await run("update", {"values": {"name": "bee"}}, table=users, filters=by_id) == 1
    assert await run("delete", {}, table=users, filters=[{"column": "id", "value": 3}]) == 1
    assert await names(admin, users) == [(1, "a"), (2, "bee")]
    # the old places: table and filters in data (deprecated aliases)
    assert (
        await run(
            "update", {"table_name": users, "values": {"name": "A"}, "filters": by_id[:0]}, allow_all=True
        )
        == 2
    )
    assert await run("delete", {"table_name": users, "filters": by_id}) == 1
    assert await names(admin, users) == [(1, "A")]


async def test_a_transaction_takes_each_step_in_the_convention_or_the_old_shape(
    connector: PostgreSQLOutputConnector, admin: Admin, users: str
) -> None:
    steps = [
        {
            "operation": "insert",
            "data": {"records": [{"id": 1, "name": "a"}]},
            "parameters": {"table": users},
        },
        {"operation": "insert", "data": {"table_name": users, "records": [{"id": 2, "name": "b"}]}},
        {
            "operation": "update",
            "data": {"values": {"name": "z"}},
            "parameters": {"table": users, "filters": [{"column": "id", "value": 1}]},
        },
        {"operation": "delete", "data": {"table_name": users, "filters": [{"column": "id", "value": 2}]}},
    ]
    outcome = await connector.execute(OperationRequest(operation="transaction", data={"steps": steps}))
    assert [s["records_affected"] for s in outcome.result_data["steps"]] == [1, 1, 1, 1]
    assert await names(admin, users) == [(1, "z")]


async def test_a_field_given_in_both_places_is_refused(
    connector: PostgreSQLOutputConnector, users: str
) -> None:
    request = OperationRequest(
        operation="insert",
        data={"table_name": users, "records": [{"id": 1, "name": "a"}]},
        parameters={"table": users},
    )
    with pytest.raises(ConnectorError) as caught:
        await connector.execute(request)
    assert caught.value.code == ErrorCode.INVALID_REQUEST
    assert "data.table_name" in caught.value.message


async def test_a_page_token_on_a_write_is_refused(connector: PostgreSQLOutputConnector, users: str) -> None:
    request = OperationRequest(
        operation="delete",
        parameters={"table": users, "filters": [{"column": "id", "value": 1}]},
        page_token="x",
    )
    with pytest.raises(ConnectorError) as caught:
        await connector.execute(request)
    assert caught.value.code == ErrorCode.INVALID_REQUEST
