"""Paged reads against real PostgreSQL: every page together equals one direct SELECT."""

from __future__ import annotations

from typing import Any

import pytest

from scf.connectors.postgresql import PostgreSQLOutputConnector
from scf.schemas.errors import ConnectorError, ErrorCode
from scf.schemas.operation import OperationOutcome, OperationRequest
from tests.support.postgres import Admin, MakeTable, admin, connector, make_table, pg_connection, refused

pytestmark = pytest.mark.integration

__all__ = ["admin", "connector", "make_table"]  # fixtures used by name below

ROWS = 10_000


@pytest.fixture
async def events(admin: Admin, make_table: MakeTable) -> str:
    table = await make_table("id int PRIMARY KEY, at timestamptz NOT NULL, label text, amount numeric")
    await admin.execute(
        f"INSERT INTO {table} SELECT g, timestamptz '2024-01-01' + (g % 97) * interval '1 minute', "
        f"'row ' || g, g * 1.5 FROM generate_series(1, {ROWS}) g"
    )
    return table


async def read_all(
    pg: PostgreSQLOutputConnector, parameters: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[OperationOutcome]]:
    rows: list[dict[str, Any]] = []
    pages: list[OperationOutcome] = []
    token: str | None = None
    while True:
        request = OperationRequest(operation="query", parameters=parameters, page_token=token)
        page = await pg.execute(request)
        pages.append(page)
        rows.extend(page.result_data["rows"])
        token = page.next_page_token
        if token is None:
            return rows, pages


async def direct(admin: Admin, sql: str) -> list[dict[str, Any]]:
    return [
        {"id": r["id"], "at": r["at"].isoformat(), "label": r["label"], "amount": str(r["amount"])}
        for r in await admin.fetch(sql)
    ]


async def test_ten_thousand_rows_page_by_page_by_primary_key_equal_a_direct_select(
    connector: PostgreSQLOutputConnector, admin: Admin, events: str
) -> None:
    rows, pages = await read_all(
        connector, {"query": f"SELECT * FROM {events}", "page_size": 1000, "page_key": ["id"]}
    )

    assert rows == await direct(admin, f"SELECT * FROM {events} ORDER BY id")
    assert len(pages) == 10
    assert all(len(p.result_data["rows"]) == 1000 for p in pages)
    assert all(p.result_data["page_size"] == 1000 for p in pages)


async def test_a_composite_key_with_timestamps_pages_without_gaps(
    connector: PostgreSQLOutputConnector, admin: Admin, events: str
) -> None:
    rows, pages = await read_all(
        connector,
        {
            "query": f"SELECT * FROM {events} WHERE amount > $1",
            "query_params": ["100"],
            "page_size": 777,
            "page_key": ["at", "id"],
        },
    )

    expected = await direct(admin, f"SELECT * FROM {events} WHERE amount > 100 ORDER BY at, id")
    assert rows == expected
    assert len(pages) == -(-len(expected) // 777)


async def test_offset_paging_follows_the_query_order(
    connector: PostgreSQLOutputConnector, admin: Admin, events: str
) -> None:
    rows, _ = await read_all(
        connector, {"query": f"SELECT * FROM {events} ORDER BY id DESC", "page_size": 3000}
    )

    assert rows == await direct(admin, f"SELECT * FROM {events} ORDER BY id DESC")


async def test_a_reply_cut_at_max_rows_says_how_to_go_on(admin: Admin, events: str) -> None:
    pg = PostgreSQLOutputConnector(pg_connection(custom_config={"max_rows": 4000}))
    try:
        rows, pages = await read_all(pg, {"query": f"SELECT * FROM {events} ORDER BY id"})
    finally:
        await pg.close()

    assert pages[0].result_data["truncated"] is True
    assert [len(p.result_data["rows"]) for p in pages] == [4000, 4000, 2000]
    assert rows == await direct(admin, f"SELECT * FROM {events} ORDER BY id")


async def test_the_deprecated_limit_is_the_first_page(
    connector: PostgreSQLOutputConnector, events: str
) -> None:
    query = f"SELECT id FROM {events} ORDER BY id"
    page = await connector.execute(
        OperationRequest(operation="query", parameters={"query": query, "limit": 5})
    )
    assert len(page.result_data["rows"]) == 5
    assert page.result_data["page_size"] == 5
    assert page.next_page_token is not None
    same = await connector.execute(
        OperationRequest(operation="query", parameters={"query": query, "page_size": 5})
    )
    assert (same.result_data, same.next_page_token) == (page.result_data, page.next_page_token)


async def test_a_token_from_another_query_is_refused(
    connector: PostgreSQLOutputConnector, events: str
) -> None:
    first = await connector.execute(
        OperationRequest(
            operation="query",
            parameters={"query": f"SELECT * FROM {events}", "page_size": 10, "page_key": ["id"]},
        )
    )
    assert first.next_page_token is not None
    with pytest.raises(ConnectorError) as caught:
        await connector.execute(
            OperationRequest(
                operation="query",
                parameters={"query": f"SELECT id FROM {events}", "page_size": 10, "page_key": ["id"]},
                page_token=first.next_page_token,
            )
        )
    assert caught.value.code == ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    ("parameters", "fragment"),
    [
        ({"page_size": 10, "page_key": ["nope"]}, "not a column"),
        ({"page_size": 10, "page_key": ["doc"]}, "has type jsonb"),
    ],
)
async def test_bad_page_keys_are_refused(
    connector: PostgreSQLOutputConnector, make_table: MakeTable, parameters: dict[str, Any], fragment: str
) -> None:
    table = await make_table("id int, doc jsonb")
    error = await refused(connector, "query", parameters={"query": f"SELECT * FROM {table}", **parameters})
    assert error.code == ErrorCode.INVALID_REQUEST
    assert fragment in error.message


@pytest.mark.parametrize("key", [["id"], ["grp", "id"]])
async def test_a_null_key_value_is_an_error_never_a_silent_gap(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable, key: list[str]
) -> None:
    table = await make_table("grp int, id int")
    await admin.execute(f"INSERT INTO {table} SELECT g % 3, g FROM generate_series(1, 50) g")
    await admin.execute(f"INSERT INTO {table} VALUES (2, NULL)")
    with pytest.raises(ConnectorError) as caught:
        await read_all(connector, {"query": f"SELECT * FROM {table}", "page_size": 5, "page_key": key})
    assert caught.value.code == ErrorCode.INVALID_REQUEST
    assert "NULL" in caught.value.message
