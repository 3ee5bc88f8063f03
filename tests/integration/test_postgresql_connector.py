"""`PostgreSQLOutputConnector` against the real PostgreSQL on 127.0.0.1:5432 (database `test`).

Every test creates its own uniquely named tables (and roles or schemas) and drops them afterwards.
Locally the module is skipped when PostgreSQL is not running; under CI (`CI` set) that is a failure.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from scf.connectors.postgresql import PostgreSQLOutputConnector
from scf.connectors.registry import connector_class
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode
from tests.support.postgres import (
    PG_DATABASE,
    PG_HOST,
    PG_PORT,
    PG_USER,
    Admin,
    MakeTable,
    admin,
    connector,
    free_port,
    make_table,
    pg_connection,
    refused,
    run,
    unique,
)

pytestmark = pytest.mark.integration

__all__ = ["admin", "connector", "make_table"]  # fixtures used by name below

# --- connecting and checking ---------------------------------------------------------------------------


async def test_registry_resolves_the_postgresql_type() -> None:
    assert connector_class("postgresql") is PostgreSQLOutputConnector


async def test_check_passes_every_verdict_on_a_reachable_database(
    connector: PostgreSQLOutputConnector,
) -> None:
    result = await connector.check()
    assert result.status == "success"
    assert result.test_results == {
        "connection_test": "passed",
        "authentication_test": "passed",
        "permissions_test": "passed",
    }
    assert result.error is None


async def test_unreachable_port_is_a_transient_check_failure(admin: Admin) -> None:
    pg = PostgreSQLOutputConnector(pg_connection(port=free_port()))
    try:
        result = await pg.check()
        assert result.status == "failed"
        assert result.test_results["connection_test"] == "failed"
        assert result.error is not None
        assert result.error.category is ErrorCategory.TRANSIENT
        assert result.error.retryable
        with pytest.raises(ConnectorError) as caught:
            await run(pg, "query", parameters={"query": "SELECT 1"})
        assert caught.value.category is ErrorCategory.TRANSIENT
    finally:
        await pg.close()


async def test_unknown_database_is_a_configuration_error(admin: Admin) -> None:
    pg = PostgreSQLOutputConnector(pg_connection(database=unique("no_such_db")))
    try:
        result = await pg.check()
        assert result.status == "failed"
        assert result.error is not None
        assert (result.error.category, result.error.code) == (ErrorCategory.CONFIGURATION, "INVALID_CONFIG")
        error = await refused(pg, "query", parameters={"query": "SELECT 1"})
        assert error.category is ErrorCategory.CONFIGURATION
    finally:
        await pg.close()


async def test_unknown_role_is_an_authentication_failure(admin: Admin) -> None:
    pg = PostgreSQLOutputConnector(pg_connection(username=unique("no_such_role")))
    try:
        result = await pg.check()
        assert result.status == "failed"
        assert result.test_results["authentication_test"] == "failed"
        assert result.error is not None
        assert (result.error.category, result.error.code) == (ErrorCategory.SECURITY, "AUTHENTICATION_FAILED")
        assert result.error.message == (
            f"access denied (127.0.0.1:5432, user {pg.connection.username!r}, database 'test')"
        )
    finally:
        await pg.close()


async def test_missing_schema_is_a_configuration_error(admin: Admin) -> None:
    pg = PostgreSQLOutputConnector(pg_connection(custom_config={"schema": unique("no_such_schema")}))
    try:
        result = await pg.check()
        assert result.error is not None
        assert result.error.category is ErrorCategory.CONFIGURATION
    finally:
        await pg.close()


@pytest.fixture
async def unprivileged(admin: Admin) -> AsyncIterator[tuple[str, str, str]]:
    """A login role, a schema it has no USAGE on and a public table it may not read."""
    role, schema, table = unique("scf_role"), unique("scf_schema"), unique("scf_secret")
    await admin.execute(f"CREATE ROLE {role} LOGIN")
    await admin.execute(f"CREATE SCHEMA {schema}")
    await admin.execute(f"CREATE TABLE public.{table} (id int)")
    await admin.execute(f"REVOKE ALL ON public.{table} FROM PUBLIC")
    try:
        yield role, schema, table
    finally:
        await admin.execute(f"DROP TABLE public.{table}")
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.execute(f"DROP ROLE {role}")


async def test_schema_without_usage_fails_the_permissions_test(unprivileged: tuple[str, str, str]) -> None:
    role, schema, _ = unprivileged
    pg = PostgreSQLOutputConnector(pg_connection(username=role, custom_config={"schema": schema}))
    try:
        result = await pg.check()
        assert result.status == "failed"
        assert result.test_results == {
            "connection_test": "passed",
            "authentication_test": "passed",
            "permissions_test": "failed",
        }
        assert result.error is not None
        assert result.error.code == "PERMISSION_DENIED"
    finally:
        await pg.close()


async def test_reading_a_forbidden_table_is_a_security_error(unprivileged: tuple[str, str, str]) -> None:
    role, _, table = unprivileged
    pg = PostgreSQLOutputConnector(pg_connection(username=role))
    try:
        error = await refused(pg, "query", parameters={"query": f"SELECT * FROM {table}"})
        assert (error.category, error.code) == (ErrorCategory.SECURITY, "PERMISSION_DENIED")
        assert table not in error.to_info().message
    finally:
        await pg.close()


async def test_tls_required_by_config_but_refused_by_server_is_a_configuration_error(admin: Admin) -> None:
    if await admin.fetchval("SHOW ssl") == "on":
        pytest.skip("this server accepts TLS")
    pg = PostgreSQLOutputConnector(pg_connection(ssl_enabled=True))
    try:
        result = await pg.check()
        assert result.error is not None
        assert (result.error.category, result.error.code) == (ErrorCategory.CONFIGURATION, "INVALID_CONFIG")
    finally:
        await pg.close()


@pytest.mark.parametrize(
    "dsn",
    [
        "mysql://u:pw@127.0.0.1/db",
        "postgresql://u:pw@127.0.0.1:notaport/db",
        "postgresql://u@h/db?sslmode=bogus",
    ],
)
async def test_malformed_dsn_is_a_configuration_error_without_the_password(admin: Admin, dsn: str) -> None:
    connection = ServiceConnection.model_validate(
        {"service_type": "postgresql", "service_name": "dsn_db", "custom_config": {"connection_string": dsn}}
    )
    pg = PostgreSQLOutputConnector(connection)
    try:
        result = await pg.check()
        assert result.error is not None
        assert result.error.category is ErrorCategory.CONFIGURATION
        assert "pw" not in result.error.message
    finally:
        await pg.close()


async def test_dsn_with_database_override(admin: Admin) -> None:
    dsn = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{unique('other_db')}"
    connection = ServiceConnection.model_validate(
        {
            "service_type": "postgresql",
            "service_name": "dsn_db",
            "custom_config": {"connection_string": dsn, "database": PG_DATABASE},
        }
    )
    pg = PostgreSQLOutputConnector(connection)
    try:
        outcome = await run(pg, "query", parameters={"query": "SELECT current_database() AS db"})
        assert outcome.result_data["rows"] == [{"db": PG_DATABASE}]
    finally:
        await pg.close()


async def test_close_twice_and_reopen_on_next_operation(connector: PostgreSQLOutputConnector) -> None:
    await run(connector, "query", parameters={"query": "SELECT 1 AS one"})
    assert connector.pool_stats().size >= 1
    await connector.close()
    await connector.close()
    assert not connector.is_open
    assert connector.pool_stats().size == 0
    assert connector.pool_stats().opened_total == 1
    outcome = await run(connector, "query", parameters={"query": "SELECT 1 AS one"})
    assert outcome.result_data["rows"] == [{"one": 1}]
    assert connector.pool_stats().opened_total == 2


async def test_pool_stays_within_its_size_and_counts_connections(admin: Admin) -> None:
    pg = PostgreSQLOutputConnector(pg_connection(connection_pool_size=2))
    try:
        sleeps = [run(pg, "query", parameters={"query": "SELECT pg_sleep(0.1)::text AS s"}) for _ in range(5)]
        await asyncio.gather(*sleeps)
        stats = pg.pool_stats()
        assert stats.opened_total == 2
        assert stats.size == 2
        assert stats.in_use == 0
    finally:
        await pg.close()


# --- insert --------------------------------------------------------------------------------------------


async def test_spec_insert_example_upserts_by_primary_key(admin: Admin, make_table: MakeTable) -> None:
    table = await make_table('user_id int PRIMARY KEY, action text, "timestamp" timestamptz')
    pg = PostgreSQLOutputConnector(pg_connection(service_name="analytics_db"))

    def spec_request(action: str) -> dict[str, Any]:
        record = {"user_id": 123, "action": action, "timestamp": "2024-01-01T10:00:00Z"}
        return {
            "connection_id": "analytics_db",
            "operation": "insert",
            "data_format": "json",
            "data": {"table_name": table, "records": [record]},
            "parameters": {"batch_size": 100, "on_conflict": "update"},
        }

    try:
        first = await pg.execute_operation(spec_request("login"))
        assert first.status == "success", first.error
        assert (first.records_processed, first.records_affected) == (1, 1)
        assert first.result_data == {"inserted_rows": 1, "updated_rows": 0}

        second = await pg.execute_operation(spec_request("logout"))
        assert second.result_data == {"inserted_rows": 0, "updated_rows": 1}
    finally:
        await pg.close()
    row = await admin.fetchrow(f'SELECT action, "timestamp" FROM {table} WHERE user_id = 123')
    assert row is not None
    assert row["action"] == "logout"
    assert row["timestamp"] == datetime(2024, 1, 1, 10, tzinfo=UTC)


async def test_on_conflict_nothing_counts_only_new_rows(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable
) -> None:
    table = await make_table("id int PRIMARY KEY, v text")
    await admin.execute(f"INSERT INTO {table} VALUES (1, 'old')")
    records = [{"id": 1, "v": "new"}, {"id": 2, "v": "b"}, {"id": 3, "v": "c"}]
    outcome = await run(
        connector, "insert", {"table_name": table, "records": records}, {"on_conflict": "nothing"}
    )
    assert outcome.result_data == {"inserted_rows": 2, "updated_rows": 0}
    assert (outcome.records_processed, outcome.records_affected) == (3, 2)
    assert await admin.fetchval(f"SELECT v FROM {table} WHERE id = 1") == "old"


async def test_on_conflict_update_by_given_columns(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable
) -> None:
    table = await make_table("id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text")
    await admin.execute(f"INSERT INTO {table} (email, name) VALUES ('a@x', 'Ann'), ('b@x', 'Bob')")
    records = [{"email": "a@x", "name": "Anna"}, {"email": "c@x", "name": "Cid"}]
    params = {"on_conflict": "update", "conflict_columns": ["email"]}
    outcome = await run(connector, "insert", {"table_name": table, "records": records}, params)
    assert outcome.result_data == {"inserted_rows": 1, "updated_rows": 1}
    rows = await admin.fetch(f"SELECT email, name FROM {table} ORDER BY email")
    assert [tuple(r) for r in rows] == [("a@x", "Anna"), ("b@x", "Bob"), ("c@x", "Cid")]


async def test_missing_keys_take_the_column_default_and_null_stays_null(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable
) -> None:
    table = await make_table("id int PRIMARY KEY, status text DEFAULT 'new', note text DEFAULT 'none'")
    records = [{"id": 1}, {"id": 2, "status": "done", "note": None}, {"id": 3, "note": "n"}]
    outcome = await run(connector, "insert", {"table_name": table, "records": records})
    assert outcome.result_data == {"inserted_rows": 3, "updated_rows": 0}
    rows = await admin.fetch(f"SELECT id, status, note FROM {table} ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, "new", "none"), (2, "done", None), (3, "new", "n")]


async def test_ten_thousand_rows_in_batches(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable
) -> None:
    table = await make_table("id int PRIMARY KEY, v text, at timestamptz, amount numeric(12, 2)")
    records = [
        {"id": i, "v": f"r{i}", "at": "2024-01-01T00:00:00Z", "amount": f"{i}.25"} for i in range(10_000)
    ]
    data = {"table_name": table, "records": records}
    outcome = await run(connector, "insert", data, {"batch_size": 1000})
    assert outcome.result_data == {"inserted_rows": 10_000, "updated_rows": 0}
    assert outcome.records_processed == 10_000
    assert await admin.fetchval(f"SELECT count(*) FROM {table}") == 10_000
    assert str(await admin.fetchval(f"SELECT sum(amount) FROM {table}")) == "49997500.00"

    again = await run(connector, "insert", data, {"batch_size": 1000, "on_conflict": "update"})
    assert again.result_data == {"inserted_rows": 0, "updated_rows": 10_000}


async def test_an_operation_is_all_or_nothing_across_batches(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable
) -> None:
    table = await make_table("id int PRIMARY KEY, v text CONSTRAINT v_not_bad CHECK (v <> 'bad')")
    records = [{"id": i, "v": "ok"} for i in range(4)] + [{"id": 4, "v": "bad"}]
    error = await refused(connector, "insert", {"table_name": table, "records": records}, {"batch_size": 2})
    assert (error.category, error.code) == (ErrorCategory.PERMANENT, "CONSTRAINT_VIOLATION")
    assert "v_not_bad" in error.message
    assert await admin.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_duplicate_key_names_the_constraint_not_the_value(
    connector: PostgreSQLOutputConnector, make_table: MakeTable
) -> None:
    table = await make_table("id int PRIMARY KEY, email text CONSTRAINT email_once UNIQUE")
    records = [{"id": 1, "email": "secret@example.com"}, {"id": 2, "email": "secret@example.com"}]
    error = await refused(connector, "insert", {"table_name": table, "records": records})
    assert error.code == "CONSTRAINT_VIOLATION"
    assert "email_once" in error.message
    assert "secret@example.com" not in error.message
    assert "secret@example.com" not in (error.detail or "")


async def test_bad_value_is_refused_before_anything_is_written(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable
) -> None:
    table = await make_table("id int, day date")
    records = [{"id": 1, "day": "2024-01-01"}, {"id": 2, "day": "31/12/2024"}]
    error = await refused(connector, "insert", {"table_name": table, "records": records})
    assert (error.code, error.message) == (
        "INVALID_DATA",
        "data.records[1].day: expected an ISO 8601 date (YYYY-MM-DD)",
    )
    assert await admin.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_server_side_types_enum_interval_array_inet(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable
) -> None:
    mood = unique("scf_mood")
    await admin.execute(f"CREATE TYPE {mood} AS ENUM ('sad', 'ok', 'happy')")
    try:
        table = await make_table(
            f"id int PRIMARY KEY, mood {mood}, wait interval, tags int[], addr inet, meta jsonb"
        )
        records = [
            {
                "id": 1,
                "mood": "happy",
                "wait": "1 day",
                "tags": [1, 2],
                "addr": "10.0.0.1",
                "meta": {"k": [1]},
            },
            {"id": 2, "mood": "sad", "wait": "PT2H", "tags": [], "addr": "::1", "meta": None},
        ]
        await run(connector, "insert", {"table_name": table, "records": records})
        filters = [{"column": "mood", "operator": "in", "value": ["happy", "ok"]}]
        outcome = await run(
            connector,
            "update",
            {"table_name": table, "values": {"tags": [7], "wait": "3 hours"}, "filters": filters},
        )
        assert outcome.records_affected == 1
        rows = await run(connector, "query", parameters={"query": f"SELECT * FROM {table} ORDER BY id"})
        first, second = rows.result_data["rows"]
        assert first["tags"] == [7]
        assert first["meta"] == {"k": [1]}
        assert first["mood"] == "happy"
        assert second["addr"] == "::1"
        json.dumps(rows.result_data)
    finally:
        await admin.execute(f"DROP TABLE IF EXISTS {table}")
        await admin.execute(f"DROP TYPE {mood}")


async def test_a_column_added_later_is_found(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable
) -> None:
    table = await make_table("id int")
    await run(connector, "insert", {"table_name": table, "records": [{"id": 1}]})
    await admin.execute(f"ALTER TABLE {table} ADD COLUMN extra text")
    await run(connector, "insert", {"table_name": table, "records": [{"id": 2, "extra": "x"}]})
    assert await admin.fetchval(f"SELECT extra FROM {table} WHERE id = 2") == "x"


async def test_configured_schema_is_used_for_names_and_search_path(admin: Admin) -> None:
    schema = unique("scf_schema")
    await admin.execute(f"CREATE SCHEMA {schema}")
    await admin.execute(f"CREATE TABLE {schema}.events (id int)")
    pg = PostgreSQLOutputConnector(pg_connection(custom_config={"schema": schema}))
    try:
        await run(pg, "insert", {"table_name": "events", "records": [{"id": 5}]})
        outcome = await run(pg, "query", parameters={"query": "SELECT id FROM events"})
        assert outcome.result_data["rows"] == [{"id": 5}]
    finally:
        await pg.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")


# --- identifier safety ---------------------------------------------------------------------------------


async def test_unknown_table_is_refused(connector: PostgreSQLOutputConnector) -> None:
    error = await refused(connector, "insert", {"table_name": unique("nope"), "records": [{"id": 1}]})
    assert (error.category, error.code) == (ErrorCategory.PERMANENT, "INVALID_IDENTIFIER")


@pytest.mark.parametrize(
    "column",
    ["nope", "ID", 'id" = 1; DROP TABLE x; --', "id; DELETE FROM x", "public.x.id", "\u0456d"],
)
async def test_unknown_or_unsafe_columns_change_nothing(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable, column: str
) -> None:
    table = await make_table("id int, name text")
    await admin.execute(f"INSERT INTO {table} VALUES (1, 'a')")
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("insert", {"table_name": table, "records": [{"id": 2, column: "x"}]}),
        ("update", {"table_name": table, "values": {column: "x"}, "filters": [{"column": "id", "value": 1}]}),
        (
            "update",
            {"table_name": table, "values": {"name": "x"}, "filters": [{"column": column, "value": 1}]},
        ),
        # `>` narrows (an is_not_null filter alone is refused before the catalog as "every row")
        ("delete", {"table_name": table, "filters": [{"column": column, "operator": ">", "value": 0}]}),
    ]
    for operation, data in attempts:
        error = await refused(connector, operation, data)
        assert error.code == ErrorCode.INVALID_IDENTIFIER, (operation, error)
    rows = await admin.fetch(f"SELECT id, name FROM {table}")
    assert [tuple(r) for r in rows] == [(1, "a")]


async def test_injection_through_the_table_name_is_refused(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable
) -> None:
    table = await make_table("id int")
    for name in (f"{table}; DROP TABLE {table}", f'{table}" CASCADE; --', f"public.{table}", table.upper()):
        error = await refused(connector, "delete", {"table_name": name}, {"allow_all": True})
        assert error.code == ErrorCode.INVALID_IDENTIFIER
    assert await admin.fetchval("SELECT to_regclass($1) IS NOT NULL", f"public.{table}")


# --- update and delete ---------------------------------------------------------------------------------


@pytest.fixture
async def items(admin: Admin, make_table: MakeTable) -> str:
    table = await make_table("id int PRIMARY KEY, name text, qty int, note text")
    await admin.execute(
        f"INSERT INTO {table} VALUES (1, 'apple', 5, NULL), (2, 'avocado', 0, 'x'), "
        "(3, 'banana', 12, NULL), (4, 'cherry', 7, 'y'), (5, 'apricot', 3, NULL)"
    )
    return table


async def _names(admin: Admin, table: str, where: str = "true") -> list[str]:
    return [r["name"] for r in await admin.fetch(f"SELECT name FROM {table} WHERE {where} ORDER BY id")]


async def test_update_with_filters(connector: PostgreSQLOutputConnector, admin: Admin, items: str) -> None:
    filters = [
        {"column": "name", "operator": "like", "value": "a%"},
        {"column": "qty", "operator": ">=", "value": "3"},
        {"column": "id", "operator": "not_in", "value": [99]},
    ]
    outcome = await run(
        connector, "update", {"table_name": items, "values": {"note": "sale"}, "filters": filters}
    )
    assert (outcome.records_affected, outcome.records_processed) == (2, 2)
    assert await _names(admin, items, "note = 'sale'") == ["apple", "apricot"]


async def test_delete_with_filters(connector: PostgreSQLOutputConnector, admin: Admin, items: str) -> None:
    filters = [
        {"column": "note", "operator": "is_null"},
        {"column": "id", "operator": "in", "value": [1, 3, 4]},
    ]
    outcome = await run(connector, "delete", {"table_name": items, "filters": filters})
    assert outcome.records_affected == 2
    assert await _names(admin, items) == ["avocado", "cherry", "apricot"]
    outcome = await run(
        connector,
        "delete",
        {"table_name": items, "filters": [{"column": "qty", "operator": "<", "value": 1}]},
    )
    assert outcome.records_affected == 1
    assert await _names(admin, items) == ["cherry", "apricot"]


async def test_whole_table_changes_need_allow_all(
    connector: PostgreSQLOutputConnector, admin: Admin, items: str
) -> None:
    for operation, data in (
        ("update", {"table_name": items, "values": {"qty": 0}}),
        ("delete", {"table_name": items}),
    ):
        error = await refused(connector, operation, data)
        assert error.code == ErrorCode.INVALID_REQUEST
    assert await admin.fetchval(f"SELECT count(*) FROM {items} WHERE qty <> 0") == 4
    outcome = await run(connector, "update", {"table_name": items, "values": {"qty": 0}}, {"allow_all": True})
    assert outcome.records_affected == 5


# --- query ---------------------------------------------------------------------------------------------


async def test_spec_query_example_with_a_date_parameter(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable
) -> None:
    table = await make_table("id int, date date, action text")
    await admin.execute(
        f"INSERT INTO {table} VALUES (1, '2023-12-31', 'a'), (2, '2024-01-01', 'b'), (3, '2024-02-01', 'c')"
    )
    params = {"query": f"SELECT * FROM {table} WHERE date >= $1 ORDER BY id", "query_params": ["2024-01-01"]}
    outcome = await run(connector, "query", parameters=params)
    assert outcome.records_processed == 2
    assert outcome.result_data == {
        "rows": [
            {"id": 2, "date": "2024-01-01", "action": "b"},
            {"id": 3, "date": "2024-02-01", "action": "c"},
        ],
        "columns": ["id", "date", "action"],
        "truncated": False,
    }


async def test_query_values_are_json_safe(connector: PostgreSQLOutputConnector) -> None:
    query = (
        "SELECT $1::timestamptz AS at, 12.50::numeric AS amount, $2::uuid AS id, "
        "'\\x00ff'::bytea AS blob, $3::jsonb AS meta, $4::int8[] AS ids, $5::bool AS flag"
    )
    ident = str(uuid.uuid4())
    params = ["2024-01-01T10:00:00Z", ident, {"a": [1, None]}, ["1", 2], "true"]
    outcome = await run(connector, "query", parameters={"query": query, "query_params": params})
    assert outcome.result_data["rows"] == [
        {
            "at": "2024-01-01T10:00:00+00:00",
            "amount": "12.50",
            "id": ident,
            "blob": "AP8=",
            "meta": {"a": [1, None]},
            "ids": [1, 2],
            "flag": True,
        }
    ]
    json.dumps(outcome.result_data)


async def test_query_rows_are_capped_and_marked_truncated(admin: Admin) -> None:
    pg = PostgreSQLOutputConnector(pg_connection(custom_config={"max_rows": 5}))
    query = "SELECT g AS n FROM generate_series(1, 20) AS g"
    try:
        capped = await run(pg, "query", parameters={"query": query})
        assert (len(capped.result_data["rows"]), capped.result_data["truncated"]) == (5, True)
        # the deprecated `limit` is `page_size` now: the first page, and a token when more rows follow
        limited = await run(pg, "query", parameters={"query": query, "limit": 3})
        assert limited.result_data["rows"] == [{"n": 1}, {"n": 2}, {"n": 3}]
        assert limited.next_page_token is not None
        exact = await run(pg, "query", parameters={"query": "SELECT 1 AS n", "page_size": 1})
        assert (exact.result_data["rows"], exact.next_page_token) == ([{"n": 1}], None)
    finally:
        await pg.close()


async def test_query_is_read_only_by_default(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable
) -> None:
    table = await make_table("id int")
    error = await refused(connector, "query", parameters={"query": f"INSERT INTO {table} VALUES (1)"})
    assert (error.category, error.code) == (ErrorCategory.PERMANENT, "PERMISSION_DENIED")
    assert "read-only" in error.message
    assert await admin.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_writes_in_query_when_allowed(admin: Admin, make_table: MakeTable) -> None:
    table = await make_table("id int")
    pg = PostgreSQLOutputConnector(pg_connection(custom_config={"allow_writes_in_query": True}))
    try:
        plain = await run(
            pg, "query", parameters={"query": f"INSERT INTO {table} VALUES ($1)", "query_params": [1]}
        )
        assert plain.records_affected == 1
        returning = await run(
            pg, "query", parameters={"query": f"INSERT INTO {table} VALUES (2) RETURNING id"}
        )
        assert returning.result_data["rows"] == [{"id": 2}]
    finally:
        await pg.close()
    assert await admin.fetchval(f"SELECT count(*) FROM {table}") == 2


async def test_multiple_statements_are_refused(
    connector: PostgreSQLOutputConnector, admin: Admin, make_table: MakeTable
) -> None:
    table = await make_table("id int")
    error = await refused(connector, "query", parameters={"query": f"SELECT 1; DROP TABLE {table}"})
    assert error.code == ErrorCode.QUERY_FAILED
    assert await admin.fetchval("SELECT to_regclass($1) IS NOT NULL", f"public.{table}")


@pytest.mark.parametrize(
    ("parameters", "code"),
    [
        ({"query": "SELECT $1::int AS a", "query_params": [1, 2]}, ErrorCode.INVALID_REQUEST),
        ({"query": "SELECT $1::int AS a", "query_params": ["abc"]}, ErrorCode.INVALID_DATA),
        ({"query": "SELECT 1 AS a, 2 AS a"}, ErrorCode.INVALID_REQUEST),
        ({"query": "SELEC 1"}, ErrorCode.QUERY_FAILED),
        ({"query": "SELECT * FROM scf_no_such_table"}, ErrorCode.QUERY_FAILED),
        ({"query": ""}, ErrorCode.INVALID_REQUEST),
        ({"sql": "SELECT 1"}, ErrorCode.INVALID_REQUEST),
    ],
)
async def test_bad_queries_are_permanent_errors(
    connector: PostgreSQLOutputConnector, parameters: dict[str, Any], code: ErrorCode
) -> None:
    error = await refused(connector, "query", parameters=parameters)
    assert (error.category, error.code) == (ErrorCategory.PERMANENT, code)


async def test_unsupported_operation_is_refused(connector: PostgreSQLOutputConnector) -> None:
    error = await refused(connector, "ingest")
    assert error.code == ErrorCode.UNKNOWN_OPERATION


async def test_date_values_round_trip(connector: PostgreSQLOutputConnector, make_table: MakeTable) -> None:
    table = await make_table("id int, day date")
    await run(connector, "insert", {"table_name": table, "records": [{"id": 1, "day": "2024-03-04"}]})
    outcome = await run(
        connector,
        "query",
        parameters={"query": f"SELECT day FROM {table} WHERE day = $1", "query_params": [date(2024, 3, 4)]},
    )
    assert outcome.result_data["rows"] == [{"day": "2024-03-04"}]
