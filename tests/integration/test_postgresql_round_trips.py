"""How many PostgreSQL round trips a `query` costs, counted on the wire, and the guarantees that the
fewer round trips keep: read-only on the server without a BEGIN, session state undone when a borrower
may have left some, a session `statement_timeout` backstop, a cached statement prepared again when its
table changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from scf.connectors.postgresql import PostgreSQLOutputConnector
from scf.schemas.errors import ConnectorError, ErrorCategory
from scf.schemas.operation import OperationOutcome, OperationRequest
from tests.support.pg_wire import PgWireCounter
from tests.support.postgres import PG_PORT, Admin, MakeTable, admin, make_table, pg_connection, unique

pytestmark = pytest.mark.integration

__all__ = ["admin", "make_table"]  # fixtures used by name below


@pytest.fixture
async def wire() -> AsyncIterator[PgWireCounter]:
    counter = PgWireCounter(PG_PORT)
    await counter.start()
    yield counter
    await counter.stop()


@pytest.fixture
async def items(admin: Admin, make_table: MakeTable) -> str:
    table = await make_table("id int PRIMARY KEY, name text NOT NULL")
    await admin.execute(f"INSERT INTO {table} SELECT g, 'item-' || g FROM generate_series(1, 50) g")
    return table


def one_session(wire: PgWireCounter, **custom: Any) -> PostgreSQLOutputConnector:
    """One pooled session, so every call runs on the same (counted) connection."""
    return PostgreSQLOutputConnector(
        pg_connection(port=wire.port, custom_config={"max_connections": 1, **custom})
    )


async def read(
    pg: PostgreSQLOutputConnector, sql: str, *params: Any, timeout: float = 30
) -> OperationOutcome:
    request = OperationRequest(
        operation="query", parameters={"query": sql, "query_params": list(params)}, timeout=timeout
    )
    return await pg.execute(request)


async def test_a_repeated_point_read_is_one_round_trip(wire: PgWireCounter, items: str) -> None:
    pg = one_session(wire)
    sql = f"SELECT id, name FROM {items} WHERE id = $1"
    try:
        await pg.open()
        first_mark = wire.mark()
        first = await read(pg, sql, "7")  # a JSON string for an int4 placeholder: coerced
        first_messages = wire.since(first_mark)
        mark = wire.mark()
        again = await read(pg, sql, 8)
        messages, trips = wire.since(mark), wire.round_trips(mark)
    finally:
        await pg.close()

    assert first.result_data["rows"] == [{"id": 7, "name": "item-7"}]
    assert again.result_data["rows"] == [{"id": 8, "name": "item-8"}]
    # first sight: the backstop SET, Parse + Describe, then Bind + Execute; no BEGIN/COMMIT, no reset
    assert first_messages == ["Q", "P", "D", "H", "B", "E", "S"], first_messages
    # cached statement, same backstop bucket, untouched session: Bind + Execute + Sync, nothing else
    assert messages == ["B", "E", "S"]
    assert trips == 1


async def test_only_a_borrower_that_may_leave_session_state_pays_for_a_reset(
    wire: PgWireCounter, admin: Admin, items: str
) -> None:
    """The connector's own write SQL (committed) and guarded reads leave nothing: no reset query. A
    connector that lets `query` write may leave anything the guard allows: the pool resets."""
    pg = one_session(wire)
    writable = one_session(wire, allow_writes_in_query=True)
    try:
        await read(pg, f"SELECT name FROM {items} WHERE id = $1", 1)
        mark = wire.mark()
        await pg.execute(
            OperationRequest(
                operation="insert",
                data={"table_name": items, "records": [{"id": 100, "name": "n"}]},
                timeout=30,
            )
        )
        after_write = wire.since(mark)
        mark = wire.mark()
        await read(pg, f"SELECT name FROM {items} WHERE id = $1", 100)
        after_read = wire.since(mark)
        await read(writable, "SELECT 1 AS one")
        mark = wire.mark()
        await read(writable, "SELECT 1 AS one")
        after_writable_read = wire.since(mark)
    finally:
        await pg.close()
        await writable.close()

    # BEGIN READ WRITE + SET LOCAL; the table's columns (once per table); asyncpg's COPY (its column
    # types, then COPY FROM STDIN + CopyData + CopyDone); COMMIT. No reset query after the COMMIT.
    assert "".join(after_write) == "Q" + "PDHBES" + "PDH" + "Qdc" + "Q"
    assert after_read == ["B", "E", "S"]
    # BEGIN + SET LOCAL, Parse/Describe, Bind/Execute, COMMIT, the reset query
    assert after_writable_read[-2:] == ["Q", "Q"] and after_writable_read.count("Q") == 3
    assert await admin.fetchval(f"SELECT name FROM {items} WHERE id = 100") == "n"


async def test_read_only_holds_on_the_server_for_what_the_guard_cannot_see(
    wire: PgWireCounter, admin: Admin, items: str
) -> None:
    """A function the guard does not know writes: the session's read-only default refuses it."""
    writer = unique("scf_writer")
    await admin.execute(
        f"CREATE FUNCTION public.{writer}() RETURNS int LANGUAGE sql "
        f"AS $$ INSERT INTO public.{items} VALUES (999, 'written') RETURNING 1 $$"
    )
    pg = one_session(wire)
    try:
        with pytest.raises(ConnectorError) as caught:
            await read(pg, f"SELECT public.{writer}() AS n")
        with pytest.raises(ConnectorError):  # and again, on the same session the pool lent back
            await read(pg, f"SELECT public.{writer}() AS n")
    finally:
        await pg.close()
        await admin.execute(f"DROP FUNCTION IF EXISTS public.{writer}()")

    assert caught.value.category is ErrorCategory.PERMANENT and not caught.value.retryable
    assert await admin.fetchval(f"SELECT count(*) FROM {items} WHERE id = 999") == 0


async def test_a_function_that_turns_read_only_off_is_undone_before_the_next_borrower(
    wire: PgWireCounter, admin: Admin, items: str
) -> None:
    """Without a reset after a guarded read, the settings the server reports are compared: a change
    (here read-only turned off by a function the guard cannot see into) makes the pool reset."""
    loosen, writer = unique("scf_loosen"), unique("scf_writer")
    await admin.execute(
        f"CREATE FUNCTION public.{loosen}() RETURNS text LANGUAGE sql "
        "AS $$ SELECT pg_catalog.set_config('default_transaction_read_only', 'off', false) $$"
    )
    await admin.execute(
        f"CREATE FUNCTION public.{writer}() RETURNS int LANGUAGE sql "
        f"AS $$ INSERT INTO public.{items} VALUES (998, 'written') RETURNING 1 $$"
    )
    pg = one_session(wire)
    try:
        loosened = await read(pg, f"SELECT public.{loosen}() AS v")
        mark = wire.mark()
        with pytest.raises(ConnectorError):
            await read(pg, f"SELECT public.{writer}() AS n")
        after = wire.since(mark)
        setting = await read(pg, "SHOW default_transaction_read_only")
    finally:
        await pg.close()
        await admin.execute(f"DROP FUNCTION IF EXISTS public.{loosen}(), public.{writer}()")

    assert loosened.result_data["rows"] == [{"v": "off"}]
    assert "Q" in after  # the reset ran between the two borrowers
    assert setting.result_data["rows"] == [{"default_transaction_read_only": "on"}]
    assert await admin.fetchval(f"SELECT count(*) FROM {items} WHERE id = 998") == 0


async def test_the_session_statement_timeout_backstops_the_deadline(wire: PgWireCounter) -> None:
    """The driver cancels at the deadline; should the worker die first, the server stops the statement
    after at most about twice the time that was left."""
    pg = one_session(wire)
    try:
        short = await read(pg, "SHOW statement_timeout", timeout=3)
        long = await read(pg, "SHOW statement_timeout", timeout=30)
    finally:
        await pg.close()

    assert short.result_data["rows"] == [{"statement_timeout": "4s"}]
    assert long.result_data["rows"] == [{"statement_timeout": "32s"}]


async def test_a_cached_statement_is_prepared_again_when_its_table_changes(
    wire: PgWireCounter, admin: Admin, items: str
) -> None:
    pg = one_session(wire)
    sql = f"SELECT * FROM {items} WHERE id = $1"
    try:
        before = await read(pg, sql, 1)
        await admin.execute(f"ALTER TABLE {items} ADD COLUMN extra int DEFAULT 5")
        after = await read(pg, sql, 1)
    finally:
        await pg.close()

    assert before.result_data["columns"] == ["id", "name"]
    assert after.result_data["columns"] == ["id", "name", "extra"]
    assert after.result_data["rows"] == [{"id": 1, "name": "item-1", "extra": 5}]


async def test_rows_past_max_rows_are_never_fetched(wire: PgWireCounter, items: str) -> None:
    """Without a cursor, Execute's row limit bounds what the server sends: max_rows + 1 rows."""
    pg = one_session(wire, max_rows=5)
    try:
        capped = await read(pg, "SELECT pg_catalog.generate_series(1, 100000000) AS g")  # streamed
    finally:
        await pg.close()

    assert [r["g"] for r in capped.result_data["rows"]] == [1, 2, 3, 4, 5]
    assert capped.result_data["truncated"] and capped.next_page_token is not None
