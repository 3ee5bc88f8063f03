"""Hostile SQL texts through the fleet: each refused, typed, with the database and the breaker unchanged.

A read-only transaction stops table writes, not functions with other effects; the connector refuses
those by name on the parse tree (`scf/connectors/postgresql/guard.py`). Text the server cannot read
(a NUL byte) is the caller's fault: `permanent`, never retried, never counted toward the breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from scf.connectors.postgresql.guard import check_statement
from scf.fleet import keys
from scf.fleet.client import FleetClient
from scf.schemas.errors import PermanentError
from scf.schemas.operation import OperationResult
from tests.support.services import PG_DSN

pytestmark = pytest.mark.integration

_SUFFIX = uuid.uuid4().hex[:10]
SERVICE = f"sec_sql_{_SUFFIX}"
WRITABLE = f"sec_sqlw_{_SUFFIX}"
LOCK_KEY = 0x5C_F0_11  # an advisory lock key no other test takes

#: (query, what it would do) - every one must be refused with PERMISSION_DENIED; `{victim}` is the pid
#: of a session the test keeps open, `{table}` the module's table.
HOSTILE_QUERIES: list[str] = [
    "SELECT lo_from_bytea(0, '\\x6576696c'::bytea) AS oid",
    "SELECT pg_catalog.lo_import('/etc/passwd') AS oid",
    "SELECT lo_export(1, '/tmp/scf_pwned') AS ok",
    'SELECT "lo_create"(0) AS oid',
    "SELECT LO_CREAT(-1) AS oid",
    "SELECT loread(lo_open(1, 262144), 10) AS b",
    "SELECT pg_read_file('/etc/passwd') AS f",
    "SELECT pg_catalog.pg_read_binary_file('/etc/passwd') AS f",
    "SELECT * FROM pg_ls_dir('.') AS f",
    "SELECT pg_stat_file('postgresql.conf') AS f",
    "SELECT pg_terminate_backend({victim}) AS ok",
    "SELECT pg_cancel_backend({victim}) AS ok",
    f"SELECT pg_advisory_lock({LOCK_KEY}) IS NULL AS locked",
    f"SELECT pg_try_advisory_lock({LOCK_KEY}) AS locked",
    f"SELECT /* hidden */ Pg_Catalog . PG_ADVISORY_LOCK ( {LOCK_KEY} ) IS NULL AS locked",
    f'SELECT U&"\\0070g_advisory_lock"({LOCK_KEY}) IS NULL AS locked',
    f"WITH l AS (SELECT pg_advisory_lock({LOCK_KEY})) SELECT 1 AS one FROM l",
    f"SELECT id FROM {{table}} WHERE id IN (SELECT pg_try_advisory_lock({LOCK_KEY})::int)",
    f"SELECT id FROM {{table}} ORDER BY (SELECT pg_advisory_lock({LOCK_KEY}))::text",
    f"SELECT * FROM (VALUES (1)) v(x) WHERE EXISTS (SELECT pg_advisory_lock({LOCK_KEY}))",
    f"EXPLAIN ANALYZE SELECT pg_advisory_lock({LOCK_KEY})",
    "SELECT set_config('search_path', 'pg_temp', false) AS p",
    "SELECT pg_reload_conf() AS ok",
    "SELECT pg_rotate_logfile() AS ok",
    "SELECT pg_notify('scf', 'hello') IS NULL AS sent",
    "SELECT txid_current() AS x",
    "SELECT pg_current_xact_id()::text AS x",
    "SELECT nextval('scf_no_such_seq') AS n",
    "SELECT query_to_xml('SELECT pg_advisory_lock(1)', true, true, '') AS x",
    "SELECT * FROM ts_stat('SELECT to_tsvector(''x'')') AS s",
    "SELECT pg_logical_emit_message(true, 'scf', 'x') AS lsn",
    "SELECT pg_create_restore_point('scf') AS lsn",
    "SELECT pg_switch_wal() AS lsn",
    "SELECT dblink_connect('host=127.0.0.1') AS c",
    "SELECT pg_stat_reset() IS NULL AS r",
    "SELECT t.lo_get FROM (SELECT 1::oid AS o) t",
    "COPY (SELECT 1) TO STDOUT",
    "CALL scf_no_such_procedure()",
    "SHOW search_path; SET search_path = pg_temp",
    "SET search_path = pg_temp",
    "DO $$ BEGIN PERFORM pg_advisory_lock(1); END $$",
    "LOAD 'plpgsql'",
]


@pytest.fixture(scope="module")
async def table(client: FleetClient) -> AsyncIterator[str]:
    name = f"scf_sec_sql_{_SUFFIX}"
    admin = await asyncpg.connect(PG_DSN)
    await admin.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, secret text)")
    await admin.execute(f"INSERT INTO {name} VALUES (1, 'real')")
    base = {
        "service_type": "postgresql",
        "host": "127.0.0.1",
        "port": 5432,
        "database": "test",
        "username": "postgres",
    }
    await client.create_connector({**base, "service_name": SERVICE})
    # one server connection, so a second request surely reuses the first one's session
    single = {"connection_pool_size": 1, "max_connections": 1, "allow_writes_in_query": True}
    await client.create_connector({**base, "service_name": WRITABLE, "custom_config": single})
    try:
        yield name
    finally:
        for service in (SERVICE, WRITABLE):
            await client.delete_connector(service)
        await admin.execute(f"DROP TABLE IF EXISTS {name}")
        await admin.close()


async def query(client: FleetClient, sql: str, service: str = SERVICE, **extra: Any) -> OperationResult:
    return await client.execute_operation(
        service, {"operation": "query", "parameters": {"query": sql, **extra}}
    )


async def answers_normally(client: FleetClient, table: str, service: str = SERVICE) -> None:
    result = await query(client, f"SELECT id, secret FROM {table} ORDER BY id", service)
    assert result.status == "success", result.error
    assert result.result_data["rows"] == [{"id": 1, "secret": "real"}]


async def test_nul_bytes_are_permanent_and_never_open_the_breaker(
    client: FleetClient, table: str, redis_url: str
) -> None:
    """More NUL-byte requests than the breaker's threshold (5 failures), then a normal query works."""
    hostile = [
        *(f"SELECT {i} AS n WHERE 'a\x00b' IS NOT NULL" for i in range(4)),
        "\x00",
        f"SELECT * FROM {table}\x00; DELETE FROM {table}",
        "SELECT 1 AS n -- \x00",
    ]
    started = time.monotonic()
    results = await asyncio.gather(*(query(client, sql) for sql in hostile))
    elapsed = time.monotonic() - started
    for result in results:
        assert result.status == "failed"
        assert result.error is not None
        assert (result.error.category, result.error.code) == ("permanent", "INVALID_REQUEST"), result.error
        assert result.error.retryable is False
    # a NUL in a bound value is the server's DataError: permanent too
    valued = await query(client, "SELECT $1::text AS t", query_params=["a\x00b"])
    assert valued.error is not None
    assert (valued.error.category, valued.error.retryable) == ("permanent", False)
    assert elapsed < 10, "refused without retries"
    # NUL characters and lone surrogates in the values of writes: the caller's data, permanent too
    writes: list[tuple[str, dict[str, Any]]] = [
        ("insert", {"table_name": table, "records": [{"id": 7, "secret": "a\x00b"}]}),
        ("insert", {"table_name": table, "records": [{"id": 7, "secret": "a\ud800b"}]}),
        (
            "update",
            {"table_name": table, "values": {"secret": "\x00"}, "filters": [{"column": "id", "value": 1}]},
        ),
        ("delete", {"table_name": table, "filters": [{"column": "secret", "value": "real\x00"}]}),
    ]
    for operation, data in writes:
        written = await client.execute_operation(SERVICE, {"operation": operation, "data": data})
        assert written.error is not None, (operation, data)
        assert (written.error.category, written.error.retryable) == ("permanent", False), written.error
    await answers_normally(client, table)
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert await redis.hget(keys.breaker(SERVICE), "state") in (None, "closed")
    finally:
        await redis.aclose()


async def test_hostile_queries_are_refused_and_change_nothing(client: FleetClient, table: str) -> None:
    admin = await asyncpg.connect(PG_DSN)
    victim = await asyncpg.connect(PG_DSN)
    try:
        victim_pid = victim.get_server_pid()
        before = {r["oid"] for r in await admin.fetch("SELECT oid FROM pg_largeobject_metadata")}
        for template in HOSTILE_QUERIES:
            sql = template.replace("{victim}", str(victim_pid)).replace("{table}", table)
            result = await query(client, sql)
            assert result.status == "failed", sql
            assert result.error is not None
            assert result.error.category == "permanent", (sql, result.error)
            assert result.error.code in ("PERMISSION_DENIED", "QUERY_FAILED"), (sql, result.error)
            assert "root:" not in str(result.model_dump()), sql
        assert await victim.fetchval("SELECT 1") == 1, "the victim session survived"
        after = {r["oid"] for r in await admin.fetch("SELECT oid FROM pg_largeobject_metadata")}
        assert after == before, "no large object was created"
        locks = await admin.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1", LOCK_KEY
        )
        assert locks == 0
        # and another session can take the lock at once
        assert await victim.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
        await victim.execute("SELECT pg_advisory_unlock_all()")
        await answers_normally(client, table)
    finally:  # undo what the old code let through, so a failing run leaves the database as it was
        created = await admin.fetch(
            "SELECT oid FROM pg_largeobject_metadata WHERE oid <> ALL($1::oid[])", sorted(before)
        )
        for row in created:
            await admin.execute("SELECT lo_unlink($1)", row["oid"])
        await victim.close()
        await admin.close()


async def test_ordinary_reads_still_pass(client: FleetClient, table: str) -> None:
    for sql in (
        f"SELECT count(*) AS n, lower('X') AS l, now() IS NOT NULL AS t FROM {table}",
        f"WITH x AS (SELECT id FROM {table}) SELECT * FROM x",
        f"TABLE {table}",
        "SELECT 'pg_read_file(1); lo_import' AS harmless_text",
        "SHOW statement_timeout",
        "VALUES (1, 'a')",
    ):
        result = await query(client, sql)
        assert result.status == "success", (sql, result.error)


async def test_a_temporary_table_never_outlives_its_request(client: FleetClient, table: str) -> None:
    """With writes allowed in `query`, a temp table named like a real one would shadow it for the
    next borrower of the pooled session (pg_temp comes first on the search path)."""
    created = await query(
        client, f"CREATE TEMP TABLE {table} AS SELECT 1 AS id, 'planted' AS secret", WRITABLE
    )
    assert created.status == "success", created.error
    await answers_normally(client, table, WRITABLE)


async def test_writes_allowed_still_cannot_define_code_or_reach_out(client: FleetClient, table: str) -> None:
    """With writes allowed in `query`, a function body is text the guard never parses: creating one
    (persistent, public schema) and calling it later would run any refused function. Nor may the
    server be made to connect out (subscriptions, foreign servers) or place files (tablespaces)."""
    function, procedure = f"scf_sec_fn_{_SUFFIX}", f"scf_sec_proc_{_SUFFIX}"
    body = f"SELECT pg_advisory_lock({LOCK_KEY}); SELECT lo_import('/etc/passwd')"
    attempts = [
        f"CREATE FUNCTION public.{function}() RETURNS oid LANGUAGE sql AS $$ {body} $$",
        f"CREATE OR REPLACE PROCEDURE public.{procedure}() LANGUAGE sql AS $$ {body} $$",
        f"ALTER FUNCTION public.{function}() SECURITY DEFINER",
        "CREATE EVENT TRIGGER scf_sec_evt ON ddl_command_start EXECUTE FUNCTION pg_catalog.now()",
        # the server connecting out or placing files (none of these can succeed here, even unrefused)
        f"CREATE SUBSCRIPTION scf_sec_sub_{_SUFFIX} CONNECTION 'host=127.0.0.1 port=1' PUBLICATION p",
        f"CREATE TABLESPACE scf_sec_ts_{_SUFFIX} LOCATION '/nonexistent/scf_{_SUFFIX}'",
        "IMPORT FOREIGN SCHEMA public FROM SERVER scf_no_such_server INTO public",
    ]
    admin = await asyncpg.connect(PG_DSN)
    try:
        for sql in attempts:
            result = await query(client, sql, WRITABLE)
            assert result.status == "failed", sql
            assert result.error is not None and result.error.code == "PERMISSION_DENIED", (sql, result.error)
            assert result.error.category == "permanent", (sql, result.error)
        defined = await admin.fetchval(
            "SELECT count(*) FROM pg_proc WHERE proname = ANY($1::text[])", [function, procedure]
        )
        assert defined == 0, "a function body the guard cannot read was stored"
        await answers_normally(client, table, WRITABLE)
    finally:  # undo what the old code let through
        await admin.execute(f"DROP FUNCTION IF EXISTS public.{function}()")
        await admin.execute(f"DROP PROCEDURE IF EXISTS public.{procedure}()")
        await admin.close()


def _worst_cases(size: int) -> list[str]:
    """Statements of about `size` characters that stress the parse and the name scan."""
    calls = ", ".join(f"f(a{i}, b.c)" for i in range(size // 12))
    return [
        "SELECT " + calls[: size - 7].rsplit(",", 1)[0],
        "SELECT '" + "x" * (size - 10) + "' AS s",
        "SELECT " + "(" * (size // 2) + "1" + ")" * (size // 2),  # refused: too deep
        "SELECT 1 AS a WHERE " + " AND ".join(["b.c IS NULL"] * (size // 16)),
        '"' * size,  # unterminated quoted identifier
        "SELECT " + "lo_import(" * (size // 10),
    ]


def _check_seconds(sql: str) -> float:
    started = time.perf_counter()
    with contextlib.suppress(PermanentError):
        check_statement(sql, writable=False)
    return time.perf_counter() - started


def test_the_guard_is_linear_on_a_megabyte_of_hostile_sql() -> None:
    """1,000 times the text within 3,000 times the time: the 1 MB case builds a ~20 MB parse tree that
    no cache holds, which costs about twice per byte what 1 KB does; quadratic would be 1,000,000x."""
    for small, large in zip(_worst_cases(1_000), _worst_cases(1_000_000), strict=True):
        base = min(_check_seconds(small) for _ in range(5))
        took = min(_check_seconds(large) for _ in range(2))  # the min: two cores shared with others
        assert took < 5.0, (large[:40], took)
        assert took < max(base, 1e-5) * 3_000, (large[:40], took, base)
