"""Column-oriented inserts (`data.columns` + `data.rows`) against real PostgreSQL: the same effects,
types, defaults, conflicts and refusals as records, and errors that name the row and the column."""

from __future__ import annotations

import pytest

from scf.connectors.postgresql import PostgreSQLOutputConnector
from scf.schemas.errors import ErrorCategory, ErrorCode
from tests.support.postgres import Admin, MakeTable, admin, connector, make_table, refused, run

pytestmark = pytest.mark.integration

__all__ = ["admin", "connector", "make_table"]  # fixtures used by name below


@pytest.fixture
async def orders(make_table: MakeTable) -> str:
    return await make_table(
        "id bigint PRIMARY KEY, sku text NOT NULL, qty int, price numeric(12,2), "
        "at timestamptz, note text DEFAULT 'none', mood text[]"
    )


async def test_columns_and_rows_insert_like_records(
    connector: PostgreSQLOutputConnector, admin: Admin, orders: str
) -> None:
    data = {
        "table_name": orders,
        "columns": ["price", "id", "sku", "qty", "at"],  # any order: values follow `columns`
        "rows": [
            ["1.25", 1, "a", 3, "2026-01-01T10:00:00Z"],
            [2, "2", "b", None, "2026-01-02T10:00:00"],  # coerced like records; an offset-less time is UTC
            [None, 3, "c", "7", None],
        ],
    }
    outcome = await run(connector, "insert", data, {"batch_size": 2})  # two COPY statements, one commit

    assert (outcome.records_processed, outcome.records_affected) == (3, 3)
    assert outcome.result_data == {"inserted_rows": 3, "updated_rows": 0}
    rows = await admin.fetch(
        "SELECT id, sku, qty, price::text AS price, "
        f"to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24') AS at, note FROM {orders} ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        (1, "a", 3, "1.25", "2026-01-01 10", "none"),  # a column left out takes its DEFAULT
        (2, "b", None, "2.00", "2026-01-02 10", "none"),
        (3, "c", 7, None, None, "none"),
    ]


async def test_columns_with_on_conflict_update_and_a_server_cast_column(
    connector: PostgreSQLOutputConnector, admin: Admin, orders: str
) -> None:
    await admin.execute(f"INSERT INTO {orders} (id, sku, qty) VALUES (1, 'old', 1)")
    data = {
        "table_name": orders,
        "columns": ["id", "sku", "qty", "mood"],
        "rows": [[1, "new", 5, ["x", "y"]], [2, "two", 6, None]],
    }
    outcome = await run(connector, "insert", data, {"on_conflict": "update"})

    assert outcome.result_data == {"inserted_rows": 1, "updated_rows": 1}
    rows = await admin.fetch(f"SELECT id, sku, qty, mood FROM {orders} ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, "new", 5, ["x", "y"]), (2, "two", 6, None)]


async def test_a_bad_value_is_named_by_row_and_column_and_nothing_is_written(
    connector: PostgreSQLOutputConnector, admin: Admin, orders: str
) -> None:
    data = {
        "table_name": orders,
        "columns": ["id", "sku", "qty"],
        "rows": [[1, "a", 1], [2, "b", 2], [3, "c", "lots"]],
    }
    error = await refused(connector, "insert", data, {"batch_size": 2})  # the second batch fails

    assert (error.category, error.code) == (ErrorCategory.PERMANENT, ErrorCode.INVALID_DATA)
    assert error.message == "data.rows[2][2]: expected an integer"
    assert "lots" not in error.message
    assert await admin.fetchval(f"SELECT count(*) FROM {orders}") == 0  # all batches or none


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"columns": ["id", "nope"], "rows": [[1, 2]]}, ErrorCode.INVALID_IDENTIFIER),
        ({"columns": ["id", "sku; DROP TABLE x"], "rows": [[1, 2]]}, ErrorCode.INVALID_IDENTIFIER),
        ({"columns": ["id", "id"], "rows": [[1, 2]]}, ErrorCode.INVALID_REQUEST),
        ({"columns": ["id", "sku"], "rows": [[1, "a"], [2]]}, ErrorCode.INVALID_REQUEST),
        ({"columns": ["id", "sku"], "rows": [[1, "a", "extra"]]}, ErrorCode.INVALID_REQUEST),
        ({"columns": ["id"], "rows": []}, ErrorCode.INVALID_REQUEST),
        ({"columns": [], "rows": [[]]}, ErrorCode.INVALID_REQUEST),
        ({"columns": ["id"], "rows": [1]}, ErrorCode.INVALID_REQUEST),
        ({"columns": ["id"], "rows": [[1]], "records": [{"id": 1}]}, ErrorCode.INVALID_REQUEST),
        ({"columns": ["id"]}, ErrorCode.INVALID_REQUEST),
    ],
)
async def test_malformed_column_data_is_refused(
    connector: PostgreSQLOutputConnector, admin: Admin, orders: str, data: dict[str, object], code: ErrorCode
) -> None:
    error = await refused(connector, "insert", {"table_name": orders, **data})

    assert (error.category, error.code) == (ErrorCategory.PERMANENT, code), error.message
    assert await admin.fetchval(f"SELECT count(*) FROM {orders}") == 0
