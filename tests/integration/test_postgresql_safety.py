"""Hostile names and statements against real PostgreSQL: refused before the server sees them, or harmless.

The connector talks to PostgreSQL through a counting TCP proxy, so "refused before SQL reaches
PostgreSQL" is measured as zero bytes sent upstream while the corpus runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from scf.connectors.postgresql import PostgreSQLOutputConnector
from scf.connectors.sources import DEADLINE
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode
from scf.schemas.operation import OperationRequest
from tests.support.postgres import PG_PORT, Admin, MakeTable, admin, make_table, pg_connection
from tests.support.proxy import TcpProxy

pytestmark = pytest.mark.integration

__all__ = ["admin", "make_table"]  # fixtures used by name below

HOSTILE_NAMES: list[str] = [
    "t'; DROP TABLE victim; --",
    't"; DROP TABLE victim; --',
    "t; DROP TABLE victim",
    "t -- comment",
    "t /* comment */",
    "t\x00victim",
    "\x00",
    "victim\u0430",  # Cyrillic a
    "vict\u0456m",  # Cyrillic i
    "\uff56ictim",  # fullwidth v
    "victim\u200b",  # zero-width space
    "v" * 64,
    "v" * 100,
    "\u00e9" * 40,  # 80 bytes
    "v" * 200,
    "public.victim",
    '"public"."victim"',
    "pg_catalog.pg_authid",
    "victim)",
    "victim, pg_authid",
    "1victim",
    "$victim",
    "victim name",
    "",
    "victim\n",
    "victim\\",
    "victim`",
    "' OR 1=1 --",
    "victim UNION SELECT * FROM pg_shadow",
]


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    running = TcpProxy(PG_PORT)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def victim(admin: Admin, make_table: MakeTable) -> str:
    table = await make_table("id int PRIMARY KEY, name text")
    await admin.execute(f"INSERT INTO {table} VALUES (1, 'kept'), (2, 'kept')")
    return table


def hostile_requests(name: str, table: str) -> list[OperationRequest]:
    """The name as table, as column (record key, update value, filter) and as conflict target."""
    record: dict[str, Any] = {"id": 3, "name": "x"}
    return [
        OperationRequest(operation="insert", data={"table_name": name, "records": [record]}),
        OperationRequest(operation="insert", data={"table_name": table, "records": [{**record, name: 1}]}),
        OperationRequest(
            operation="insert",
            data={"table_name": table, "records": [record]},
            parameters={"on_conflict": "update", "conflict_columns": [name]},
        ),
        OperationRequest(
            operation="update",
            data={"table_name": table, "values": {name: 1}, "filters": [{"column": "id", "value": 1}]},
        ),
        OperationRequest(
            operation="delete", data={"table_name": table, "filters": [{"column": name, "value": 1}]}
        ),
        OperationRequest(
            operation="delete", data={"table_name": name, "filters": [{"column": "id", "value": 1}]}
        ),
    ]


async def test_every_hostile_identifier_is_refused_before_any_byte_reaches_postgresql(
    proxy: TcpProxy, admin: Admin, victim: str
) -> None:
    pg = PostgreSQLOutputConnector(pg_connection(port=proxy.port))
    try:
        await pg.open()
        before = proxy.upstream_bytes
        refusals = []
        for name in HOSTILE_NAMES:
            for request in hostile_requests(name, victim):
                with pytest.raises(ConnectorError) as caught:
                    await pg.execute(request)
                refusals.append(caught.value)
        after_corpus = proxy.upstream_bytes
        control = await pg.execute(
            OperationRequest(
                operation="insert", data={"table_name": victim, "records": [{"id": 9, "name": "ok"}]}
            )
        )
    finally:
        await pg.close()

    assert len(refusals) == len(HOSTILE_NAMES) * 6
    assert all(e.category is ErrorCategory.PERMANENT for e in refusals)
    assert {e.code for e in refusals} == {ErrorCode.INVALID_IDENTIFIER}
    assert after_corpus == before  # nothing was sent for any of them
    assert control.records_affected == 1 and proxy.upstream_bytes > after_corpus  # the counter counts
    names = [r["name"] for r in await admin.fetch(f"SELECT name FROM {victim} ORDER BY id")]
    assert names == ["kept", "kept", "ok"]


HOSTILE_STATEMENTS: list[str] = [
    "INSERT INTO {t} VALUES (10, 'x')",
    "UPDATE {t} SET name = 'changed'",
    "DELETE FROM {t}",
    "TRUNCATE {t}",
    "DROP TABLE {t}",
    "ALTER TABLE {t} ADD COLUMN extra int",
    "CREATE TABLE {t}_copy AS SELECT * FROM {t}",
    "SELECT 1; DROP TABLE {t}",
    "SELECT 1; DELETE FROM {t}",
    "WITH gone AS (DELETE FROM {t} RETURNING *) SELECT * FROM gone",
    "SELECT nextval('{t}_seq')",
    "COPY {t} FROM PROGRAM 'true'",
    "DO $$ BEGIN DELETE FROM {t}; END $$",
    "COMMIT; DELETE FROM {t}",
    "SET TRANSACTION READ WRITE; DELETE FROM {t}",
    "SELECT * FROM {t} FOR UPDATE",
    "LOCK TABLE {t}",
]


async def test_a_read_only_connector_changes_nothing_whatever_the_query(admin: Admin, victim: str) -> None:
    await admin.execute(f"CREATE SEQUENCE {victim}_seq")
    pg = PostgreSQLOutputConnector(pg_connection(custom_config={"max_connections": 1}))
    try:
        errors = []
        for statement in HOSTILE_STATEMENTS:
            with pytest.raises(ConnectorError) as caught:
                await pg.execute(
                    OperationRequest(operation="query", parameters={"query": statement.format(t=victim)})
                )
            errors.append(caught.value)
    finally:
        await pg.close()
        await admin.execute(f"DROP SEQUENCE IF EXISTS {victim}_seq")

    assert all(not e.retryable for e in errors), [(e.code, e.message) for e in errors]
    rows = await admin.fetch(f"SELECT id, name FROM {victim} ORDER BY id")
    assert [(r["id"], r["name"]) for r in rows] == [(1, "kept"), (2, "kept")]
    assert await admin.fetchval("SELECT to_regclass($1)", f"public.{victim}_copy") is None
    columns = await admin.fetchval(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = $1", victim
    )
    assert columns == 2


async def test_session_settings_a_query_changes_do_not_leak_to_the_next_caller(admin: Admin) -> None:
    pg = PostgreSQLOutputConnector(pg_connection(custom_config={"max_connections": 1}))
    try:

        async def one(sql: str) -> Any:
            outcome = await pg.execute(OperationRequest(operation="query", parameters={"query": sql}))
            return outcome.result_data["rows"][0] if outcome.result_data["rows"] else None

        before = await one("SELECT current_setting('search_path') AS p, current_setting('work_mem') AS w")
        for statement in (
            "SET search_path = pg_catalog",
            "SET work_mem = '64kB'",
            "SELECT set_config('search_path', 'pg_catalog', false)",
            "SELECT set_config('work_mem', '64kB', false)",
        ):
            with contextlib.suppress(ConnectorError):  # refused outright is as good as undone
                await one(statement)
        after = await one("SELECT current_setting('search_path') AS p, current_setting('work_mem') AS w")
    finally:
        await pg.close()

    assert after == before


async def test_a_sleeping_query_is_cancelled_at_its_deadline(admin: Admin) -> None:
    pg = PostgreSQLOutputConnector(pg_connection())
    marker = f"sleeper_{time.time_ns()}"
    token = DEADLINE.set(time.time() + 2)
    try:
        with pytest.raises(ConnectorError) as caught:
            await pg.execute(
                OperationRequest(operation="query", parameters={"query": f"SELECT pg_sleep(600) AS {marker}"})
            )
    finally:
        DEADLINE.reset(token)
        await pg.close()

    assert caught.value.code == ErrorCode.TIMEOUT
    running = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
        marker,
    )
    assert running == 0
