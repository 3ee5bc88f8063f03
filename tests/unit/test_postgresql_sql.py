"""The PostgreSQL connector's pure parts: identifier checks, quoting, SQL building, value coercion.

No network: everything here runs on values, the way the connector uses them before any SQL is sent.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg
import asyncpg.exceptions as pg
import pytest

from scf.connectors.base import classify
from scf.connectors.postgresql.catalog import ColumnInfo, TableInfo, table_from_rows
from scf.connectors.postgresql.coercion import (
    ParamType,
    coerce_column,
    coerce_param,
    coerce_params,
    coerce_value,
    pg_text,
    to_json_safe,
)
from scf.connectors.postgresql.errors import POSTGRES_ERROR_RULES, refine
from scf.connectors.postgresql.identifiers import (
    MAX_IDENTIFIER_BYTES,
    check_identifier,
    qualified_name,
    quote_ident,
)
from scf.connectors.postgresql.requests import (
    Filter,
    InsertData,
    InsertParameters,
    QueryParameters,
    UpdateData,
    WriteParameters,
    require_filters,
)
from scf.connectors.postgresql.settings import pool_settings, ssl_mode
from scf.connectors.postgresql.sql import (
    build_delete,
    build_insert,
    build_update,
    conflict_target,
    group_by_columns,
)
from scf.connectors.postgresql.statements import affected_rows
from scf.schemas.configs.postgresql import PostgresConfig
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode, PermanentError
from scf.schemas.validation import parse_model as parse


def _column(name: str, type_name: str = "int4", native: bool = True, sql_type: str = "integer") -> ColumnInfo:
    return ColumnInfo(name=name, type_name=type_name, sql_type=sql_type, native=native)


TABLE = TableInfo(
    schema="public",
    name="events",
    columns={
        "id": _column("id"),
        "action": _column("action", "text", sql_type="text"),
        "at": _column("at", "timestamptz", sql_type="timestamp with time zone"),
        "mood": _column("mood", "mood", native=False, sql_type="public.mood"),
        "tags": _column("tags", "_int4", native=False, sql_type="integer[]"),
        "MixedCase": _column("MixedCase", "text", sql_type="text"),
    },
    primary_key=("id",),
)


def _refused(call: Any, *args: Any) -> PermanentError:
    with pytest.raises(PermanentError) as caught:
        call(*args)
    return caught.value


# --- identifiers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["users", "user_events", "_private", "MixedCase", "col$1", "a" * 63, "t2"])
def test_plain_identifiers_are_accepted(name: str) -> None:
    assert check_identifier(name, "table_name") == name


INJECTION_CORPUS = [
    'users"; DROP TABLE users; --',
    "users; DROP TABLE users",
    "users--",
    "users/*x*/",
    "/*",
    "users'",
    "'users'",
    '"users"',
    "users\x00",
    "\x00",
    "user\nname",
    "users ",
    " users",
    "user name",
    "public.users",
    "pg_catalog.pg_authid",
    '"public"."users"',
    "users)",
    "users,other",
    "1users",
    "$1",
    "us\u0435rs",  # Cyrillic small ie, looks like "users"
    "\uff55sers",  # fullwidth u
    "users\u200b",  # zero-width space
    "ünïcode",
    "a" * 64,
    "é" * 32,  # 32 characters, 64 bytes
    "",
    "users\\",
    "users%",
    "$$users",  # a dollar-quote opener
]


@pytest.mark.parametrize("name", INJECTION_CORPUS)
def test_injection_corpus_is_refused_as_invalid_identifier(name: str) -> None:
    error = _refused(check_identifier, name, "table_name")
    assert error.code == ErrorCode.INVALID_IDENTIFIER
    assert error.category is ErrorCategory.PERMANENT


def test_dollar_signs_inside_a_name_are_harmless_once_quoted() -> None:
    assert quote_ident(check_identifier("users$$", "t")) == '"users$$"'


@pytest.mark.parametrize("value", [None, 42, b"users", ["users"]])
def test_non_string_identifiers_are_refused(value: object) -> None:
    assert _refused(check_identifier, value, "column name").code == ErrorCode.INVALID_IDENTIFIER


def test_identifier_length_is_counted_in_bytes() -> None:
    assert MAX_IDENTIFIER_BYTES == 63
    assert _refused(check_identifier, "a" * 64, "table_name").message.endswith("longer than 63 bytes")


def test_refusal_message_shows_only_a_preview_of_a_long_name() -> None:
    message = _refused(check_identifier, "x;" * 500, "table_name").message
    assert len(message) < 300


def test_quote_ident_doubles_embedded_quotes() -> None:
    assert quote_ident("users") == '"users"'
    assert quote_ident("MixedCase") == '"MixedCase"'
    assert quote_ident('a"b') == '"a""b"'
    assert quote_ident('"; DROP TABLE x; --') == '"""; DROP TABLE x; --"'


def test_quote_ident_refuses_nul() -> None:
    assert _refused(quote_ident, "a\x00b").code == ErrorCode.INVALID_IDENTIFIER


def test_qualified_name_quotes_both_parts() -> None:
    assert qualified_name("analytics", "user_events") == '"analytics"."user_events"'


# --- catalog rows ----------------------------------------------------------------------------------


def test_table_from_rows_orders_the_primary_key_by_key_position() -> None:
    rows = [
        {"name": "b", "type_name": "int4", "sql_type": "integer", "builtin": True, "pk_position": 2},
        {"name": "a", "type_name": "text", "sql_type": "text", "builtin": True, "pk_position": 1},
        {"name": "m", "type_name": "mood", "sql_type": "mood", "builtin": False, "pk_position": None},
        {"name": "t", "type_name": "_int4", "sql_type": "integer[]", "builtin": True, "pk_position": None},
    ]
    table = table_from_rows("public", "t", rows)
    assert table is not None
    assert table.primary_key == ("a", "b")
    assert [c.native for c in table.columns.values()] == [True, True, False, False]


def test_table_from_no_rows_means_no_table() -> None:
    assert table_from_rows("public", "missing", []) is None


def test_unknown_column_is_an_invalid_identifier() -> None:
    error = _refused(TABLE.column, "nope")
    assert error.code == ErrorCode.INVALID_IDENTIFIER
    assert "nope" in error.message


def test_column_match_is_exact_not_case_folded() -> None:
    assert TABLE.missing(["mixedcase", "MixedCase", "ID"]) == ["ID", "mixedcase"]


# --- filters, update, delete --------------------------------------------------------------------------


def _filters(*raw: dict[str, Any]) -> list[Filter]:
    return [Filter.model_validate(f) for f in raw]


def test_update_binds_every_value_and_quotes_every_name() -> None:
    statement = build_update(
        TABLE,
        {"action": "logout", "mood": "happy"},
        _filters(
            {"column": "id", "operator": "=", "value": 5},
            {"column": "MixedCase", "operator": "!=", "value": "x"},
        ),
    )
    assert statement.sql == (
        'UPDATE "public"."events" SET "action" = $1::pg_catalog."text", '
        '"mood" = $2::pg_catalog.text::public.mood '
        'WHERE "id" = $3::pg_catalog."int4" AND "MixedCase" <> $4::pg_catalog."text"'
    )
    assert [b.value for b in statement.bound] == ["logout", "happy", 5, "x"]
    assert [b.where for b in statement.bound] == [
        "data.values.action",
        "data.values.mood",
        "data.filters[0].value",
        "data.filters[1].value",
    ]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"column": "id", "operator": "<", "value": 1}, '"id" < $1::pg_catalog."int4"'),
        ({"column": "id", "operator": "<=", "value": 1}, '"id" <= $1::pg_catalog."int4"'),
        ({"column": "id", "operator": ">", "value": 1}, '"id" > $1::pg_catalog."int4"'),
        ({"column": "id", "operator": ">=", "value": 1}, '"id" >= $1::pg_catalog."int4"'),
        ({"column": "id", "operator": "in", "value": [1, 2]}, '"id" = ANY($1::pg_catalog."int4"[])'),
        ({"column": "id", "operator": "not_in", "value": [1]}, '"id" <> ALL($1::pg_catalog."int4"[])'),
        ({"column": "at", "operator": "is_null"}, '"at" IS NULL'),
        ({"column": "at", "operator": "is_not_null"}, '"at" IS NOT NULL'),
        ({"column": "action", "operator": "like", "value": "log%"}, '"action" LIKE $1::pg_catalog.text'),
        (
            {"column": "mood", "operator": "in", "value": ["sad"]},
            '"mood" = ANY($1::pg_catalog.text[]::public.mood[])',
        ),
    ],
)
def test_each_filter_operator_builds_one_bound_condition(raw: dict[str, Any], fragment: str) -> None:
    statement = build_delete(TABLE, _filters(raw))
    assert statement.sql == f'DELETE FROM "public"."events" WHERE {fragment}'


def test_filter_values_never_reach_the_sql_text() -> None:
    evil = "'; DROP TABLE events; --"
    statement = build_delete(TABLE, _filters({"column": "action", "operator": "=", "value": evil}))
    assert evil not in statement.sql
    assert statement.bound[0].value == evil


def test_filter_on_an_unknown_column_is_refused_while_building() -> None:
    error = _refused(build_delete, TABLE, _filters({"column": "id; --", "operator": "=", "value": 1}))
    assert error.code == ErrorCode.INVALID_IDENTIFIER


def test_delete_without_filters_has_no_where() -> None:
    assert build_delete(TABLE, []).sql == 'DELETE FROM "public"."events"'


def test_non_native_values_are_bound_as_text() -> None:
    statement = build_update(TABLE, {"tags": [1, 2]}, [])
    assert statement.sql == 'UPDATE "public"."events" SET "tags" = $1::pg_catalog.text::integer[]'
    assert statement.bound[0].value == '{"1","2"}'


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"column": "id", "operator": "=", "value": None}, "use is_null"),
        ({"column": "id", "operator": "in", "value": 3}, "needs a list"),
        ({"column": "id", "operator": "is_null", "value": 3}, "takes no value"),
        ({"column": "id", "operator": "like", "value": 3}, "string pattern"),
        ({"column": "id", "operator": "~", "value": 3}, "operator"),
        ({"column": "id", "value": 3, "extra": 1}, "extra"),
    ],
)
def test_malformed_filters_are_invalid_requests(raw: dict[str, Any], problem: str) -> None:
    error = _refused(parse, WriteParameters, {"table": "events", "filters": [raw]}, "parameters")
    assert error.code == ErrorCode.INVALID_REQUEST
    assert problem in error.message


def test_update_or_delete_without_filters_needs_allow_all() -> None:
    error = _refused(require_filters, WriteParameters(table="events"), "delete")
    assert error.code == ErrorCode.INVALID_REQUEST
    require_filters(WriteParameters(table="events", allow_all=True), "delete")


def test_update_needs_values() -> None:
    error = _refused(parse, UpdateData, {"values": {}}, "data")
    assert error.code == ErrorCode.INVALID_REQUEST


# --- insert -------------------------------------------------------------------------------------------


def test_insert_is_one_unnest_of_typed_arrays() -> None:
    plan = build_insert(TABLE, ["id", "action", "tags"], "error")
    assert plan.sql == (
        'WITH written AS (INSERT INTO "public"."events" ("id", "action", "tags") '
        'SELECT u.c1, u.c2, u.c3::integer[] FROM unnest($1::pg_catalog."int4"[], $2::pg_catalog."text"[], '
        "$3::pg_catalog.text[]) AS u(c1, c2, c3) RETURNING true AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted) AS inserted, "
        "count(*) FILTER (WHERE NOT inserted) AS updated FROM written"
    )


def test_insert_on_conflict_nothing_and_update() -> None:
    nothing = build_insert(TABLE, ["id", "action"], "nothing")
    assert " ON CONFLICT DO NOTHING RETURNING true " in nothing.sql
    update = build_insert(TABLE, ["id", "action", "at"], "update", ("id",))
    assert (
        ' ON CONFLICT ("id") DO UPDATE SET "action" = EXCLUDED."action", "at" = EXCLUDED."at" '
        "RETURNING (xmax = 0) AS inserted" in update.sql
    )


def test_upsert_of_key_columns_only_does_nothing_on_conflict() -> None:
    assert ' ON CONFLICT ("id") DO NOTHING ' in build_insert(TABLE, ["id"], "update", ("id",)).sql


def test_conflict_target_defaults_to_the_primary_key_for_update() -> None:
    assert conflict_target(TABLE, InsertParameters(table="t", on_conflict="update")) == ("id",)
    assert conflict_target(TABLE, InsertParameters(table="t", on_conflict="nothing")) == ()
    explicit = InsertParameters(table="t", on_conflict="nothing", conflict_columns=["action"])
    assert conflict_target(TABLE, explicit) == ("action",)


def test_conflict_target_refusals() -> None:
    keyless = TableInfo("public", "log", {"a": _column("a")})
    assert (
        _refused(conflict_target, keyless, InsertParameters(table="t", on_conflict="update")).code
        == "INVALID_REQUEST"
    )
    with_columns = InsertParameters(table="t", on_conflict="error", conflict_columns=["id"])
    assert _refused(conflict_target, TABLE, with_columns).code == "INVALID_REQUEST"
    unknown = InsertParameters(table="t", on_conflict="update", conflict_columns=["nope"])
    assert _refused(conflict_target, TABLE, unknown).code == "INVALID_IDENTIFIER"


def test_records_are_grouped_by_key_set_in_table_order() -> None:
    records: list[tuple[int, dict[str, Any]]] = [
        (0, {"action": "a", "id": 1}),
        (1, {"id": 2}),
        (2, {"id": 3, "action": "c"}),
    ]
    groups = group_by_columns(records, TABLE)
    assert [(cols, [i for i, _ in rows]) for cols, rows in groups] == [
        (("id", "action"), [0, 2]),
        (("id",), [1]),
    ]


def test_an_empty_record_is_refused() -> None:
    records: list[tuple[int, dict[str, Any]]] = [(0, {"id": 1}), (1, {})]
    assert _refused(group_by_columns, records, TABLE).message == "data.records[1] has no columns"


def test_a_column_batch_error_names_the_record_it_came_from() -> None:
    indexes = [4, 7, 9]
    assert coerce_column(["1", None, 3], "int4", lambda i: f"data.records[{indexes[i]}].qty") == [1, None, 3]
    with pytest.raises(PermanentError) as caught:
        coerce_column([1, None, "many"], "int4", lambda i: f"data.records[{indexes[i]}].qty")
    assert caught.value.message == "data.records[9].qty: expected an integer"
    assert coerce_column([2**40], "int8", str) == [2**40]
    with pytest.raises(PermanentError):
        coerce_column([2**40], "int4", str)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"records": []}, "records"),
        ({}, "records"),
        ({"records": [1]}, "records.0"),
    ],
)
def test_malformed_insert_data(body: dict[str, Any], problem: str) -> None:
    assert problem in _refused(parse, InsertData, body, "data").message


@pytest.mark.parametrize(
    "body",
    [{"batch_size": 0}, {"batch_size": 10_001}, {"on_conflict": "replace"}, {"conflict_columns": []}, {}],
)
def test_malformed_insert_parameters(body: dict[str, Any]) -> None:
    body = {"table": "t", **body} if body else body  # {}: no table
    assert _refused(parse, InsertParameters, body, "parameters").code == ErrorCode.INVALID_REQUEST


def test_query_parameters_refuse_unknown_keys() -> None:
    error = _refused(parse, QueryParameters, {"query": "SELECT 1", "query_param": []}, "parameters")
    assert "query_param" in error.message


# --- coercion -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_name", "expected"),
    [
        ("2024-01-01", "date", date(2024, 1, 1)),
        ("2024-01-01T10:00:00Z", "date", date(2024, 1, 1)),
        ("2024-01-01T10:00:00Z", "timestamptz", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01T10:00:00z", "timestamptz", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01 10:00:00", "timestamptz", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01", "timestamptz", datetime(2024, 1, 1, tzinfo=UTC)),
        (
            "2024-01-01T10:00:00+02:00",
            "timestamptz",
            datetime(2024, 1, 1, 10, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2024-01-01T10:00:00+02:00", "timestamp", datetime(2024, 1, 1, 10)),
        ("10:30", "time", time(10, 30)),
        ("10:30:00Z", "timetz", time(10, 30, tzinfo=UTC)),
        ("12.50", "numeric", Decimal("12.50")),
        (3, "numeric", Decimal(3)),
        (0.1, "numeric", Decimal("0.1")),
        ("42", "int4", 42),
        (" -7 ", "int8", -7),
        (5.0, "int2", 5),
        ("1.5e3", "float8", 1500.0),
        (2, "float4", 2.0),
        ("true", "bool", True),
        ("off", "bool", False),
        ("12345678-1234-5678-1234-567812345678", "uuid", uuid.UUID("12345678-1234-5678-1234-567812345678")),
        ({"a": [1]}, "jsonb", '{"a":[1]}'),
        ([1, 2], "json", "[1,2]"),
        ('{"already": "text"}', "jsonb", '{"already": "text"}'),
        (7, "text", "7"),
        (True, "varchar", "true"),
        ({"a": 1}, "text", '{"a":1}'),
        (base64.b64encode(b"\x00\x01").decode(), "bytea", b"\x00\x01"),
        (None, "int4", None),
        ("1 day", "interval", "1 day"),  # unknown types pass through unchanged
    ],
)
def test_json_values_are_coerced_to_the_placeholder_type(value: Any, type_name: str, expected: Any) -> None:
    assert coerce_value(value, type_name) == expected


@pytest.mark.parametrize(
    ("value", "type_name", "expected"),
    [
        ("not-a-date", "date", "an ISO 8601 date"),
        ("2024-13-45", "timestamptz", "an ISO 8601 timestamp"),
        (1704067200, "timestamptz", "an ISO 8601 timestamp"),
        ("12abc", "int4", "an integer"),
        ("1_000", "int4", "an integer"),
        (1.5, "int4", "an integer"),
        (True, "int4", "an integer"),
        ("ten", "numeric", "a decimal number"),
        (False, "float8", "a number"),
        ("maybe", "bool", "a boolean"),
        ("xyz", "uuid", "a UUID"),
        ("not base64!", "bytea", "base64"),
        (float("nan"), "jsonb", "a JSON value"),
        ("25:99", "time", "an ISO 8601 time"),
        (2**40, "int4", "an integer between -2147483648 and 2147483647"),
        ("-40000", "int2", "an integer between -32768 and 32767"),
    ],
)
def test_coercion_errors_name_the_place_and_type_but_not_the_value(
    value: Any, type_name: str, expected: str
) -> None:
    error = _refused(coerce_param, value, ParamType(type_name), "data.records[3].at")
    assert error.code == ErrorCode.INVALID_DATA
    assert error.message.startswith("data.records[3].at: expected " + expected)
    assert str(value) not in error.message


def test_array_placeholders_coerce_each_element() -> None:
    param = ParamType.parse("date[]")
    assert param == ParamType("date[]", "date")
    assert coerce_param(["2024-01-01", None], param, "x") == [date(2024, 1, 1), None]
    assert coerce_param([["1", "2"], ["3", "4"]], ParamType.parse("int4[]"), "x") == [[1, 2], [3, 4]]
    assert _refused(coerce_param, "2024-01-01", param, "x").message == "x: expected a list of date"


def test_the_number_of_query_params_must_match_the_placeholders() -> None:
    error = _refused(coerce_params, [1, 2], (ParamType("int4"),), "parameters.query_params")
    assert error.code == ErrorCode.INVALID_REQUEST
    assert "1 placeholder(s) but 2 value(s)" in error.message
    assert coerce_params(["2024-01-01"], (ParamType("date"),), "q") == [date(2024, 1, 1)]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("happy", "happy"),
        (3, "3"),
        (False, "false"),
        ({"k": "v"}, '{"k":"v"}'),
        ([1, None, 'a"b\\c'], '{"1",NULL,"a\\"b\\\\c"}'),
        ([[1, 2], [3, 4]], '{{"1","2"},{"3","4"}}'),
        ([], "{}"),
    ],
)
def test_text_form_of_values_for_server_side_casts(value: Any, text: str | None) -> None:
    assert pg_text(value) == text


def test_rows_are_made_json_safe() -> None:
    ident = uuid.uuid4()
    row = {
        "at": datetime(2024, 1, 1, 10, tzinfo=UTC),
        "day": date(2024, 1, 1),
        "clock": time(9, 30),
        "amount": Decimal("12.50"),
        "id": ident,
        "blob": b"\x00\xff",
        "nested": [Decimal("1"), {"x": b"a"}],
        "inf": float("inf"),
        "range": asyncpg.Range(1, 5),
        "plain": [1, "a", None, True, 1.5],
    }
    assert to_json_safe(row) == {
        "at": "2024-01-01T10:00:00+00:00",
        "day": "2024-01-01",
        "clock": "09:30:00",
        "amount": "12.50",
        "id": str(ident),
        "blob": "AP8=",
        "nested": ["1", {"x": "YQ=="}],
        "inf": "inf",
        "range": {"lower": 1, "upper": 5, "lower_inc": True, "upper_inc": False, "empty": False},
        "plain": [1, "a", None, True, 1.5],
    }


# --- settings -----------------------------------------------------------------------------------------


def _connection(**fields: Any) -> ServiceConnection:
    body = {"service_type": "postgresql", "service_name": "db", "host": "localhost", **fields}
    return ServiceConnection.model_validate(body)


def _config(connection: ServiceConnection) -> PostgresConfig:
    return PostgresConfig.model_validate(connection.custom_config)


@pytest.mark.parametrize(
    ("ssl_enabled", "custom", "expected"),
    [
        (False, {}, "disable"),
        (True, {}, "require"),
        (True, {"ssl_mode": "verify-full"}, "verify-full"),
        (False, {"ssl_mode": "prefer"}, "prefer"),
        (False, {"connection_string": "postgresql://u@h/db?sslmode=require"}, None),
        (False, {"connection_string": "postgresql://u@h/db"}, "disable"),
    ],
)
def test_ssl_mode_resolution(ssl_enabled: bool, custom: dict[str, Any], expected: str | None) -> None:
    connection = _connection(ssl_enabled=ssl_enabled, custom_config=custom)
    assert ssl_mode(connection, _config(connection)) == expected


def test_ssl_enabled_contradicting_ssl_mode_is_a_configuration_error() -> None:
    connection = _connection(ssl_enabled=True, custom_config={"ssl_mode": "disable"})
    with pytest.raises(ConnectorError) as caught:
        ssl_mode(connection, _config(connection))
    assert caught.value.category is ErrorCategory.CONFIGURATION


def test_pool_settings_precedence_and_sizes() -> None:
    connection = _connection(
        port=6543,
        database="ignored",
        username="svc",
        password="s3cret",
        connection_pool_size=4,
        custom_config={
            "connection_string": "postgresql://other@dsnhost/dsndb",
            "database": "analytics",
            "schema": "Reports",
            "max_connections": 9,
        },
    )
    settings = pool_settings(connection, _config(connection))
    assert settings.connect["dsn"] == "postgresql://other@dsnhost/dsndb"
    assert settings.connect["host"] == "localhost"
    assert settings.connect["user"] == "svc"
    assert settings.connect["database"] == "analytics"
    assert settings.connect["server_settings"]["search_path"] == '"Reports"'
    # the query guard parses literals as standard strings: the server must too (RESET ALL keeps it)
    assert settings.connect["server_settings"]["standard_conforming_strings"] == "on"
    assert (settings.min_size, settings.max_size) == (1, 9)
    assert "s3cret" not in repr(settings)


def test_pool_size_falls_back_to_connection_pool_size() -> None:
    connection = _connection(connection_pool_size=3)
    assert pool_settings(connection, _config(connection)).max_size == 3


# --- errors -------------------------------------------------------------------------------------------


def _pg_error(fields: dict[str, str]) -> pg.PostgresError:
    return pg.PostgresError.new(fields)


@pytest.mark.parametrize(
    ("exc", "category", "code"),
    [
        (_pg_error({"C": "40P01", "M": "deadlock"}), ErrorCategory.TRANSIENT, ErrorCode.QUERY_FAILED),
        (
            _pg_error({"C": "40001", "M": "could not serialize"}),
            ErrorCategory.TRANSIENT,
            ErrorCode.QUERY_FAILED,
        ),
        (_pg_error({"C": "08006", "M": "failure"}), ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED),
        (_pg_error({"C": "57P03", "M": "starting up"}), ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED),
        (_pg_error({"C": "57014", "M": "canceled"}), ErrorCategory.TRANSIENT, ErrorCode.TIMEOUT),
        (pg.InterfaceError("connection is closed"), ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED),
        (pg.InterfaceError("pool is closing"), ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED),
        (_pg_error({"C": "53300", "M": "too many"}), ErrorCategory.RESOURCE, ErrorCode.TOO_MANY_CONNECTIONS),
        (_pg_error({"C": "28P01", "M": "bad pw"}), ErrorCategory.SECURITY, ErrorCode.AUTHENTICATION_FAILED),
        (_pg_error({"C": "28000", "M": "no role"}), ErrorCategory.SECURITY, ErrorCode.AUTHENTICATION_FAILED),
        (_pg_error({"C": "42501", "M": "denied"}), ErrorCategory.SECURITY, ErrorCode.PERMISSION_DENIED),
        (_pg_error({"C": "3D000", "M": "no db"}), ErrorCategory.CONFIGURATION, ErrorCode.INVALID_CONFIG),
        (pg.ClientConfigurationError("bad dsn"), ErrorCategory.CONFIGURATION, ErrorCode.INVALID_CONFIG),
        (_pg_error({"C": "25006", "M": "read-only"}), ErrorCategory.PERMANENT, ErrorCode.PERMISSION_DENIED),
        (_pg_error({"C": "23505", "M": "dup"}), ErrorCategory.PERMANENT, ErrorCode.CONSTRAINT_VIOLATION),
        (_pg_error({"C": "22007", "M": "bad date"}), ErrorCategory.PERMANENT, ErrorCode.INVALID_DATA),
        (_pg_error({"C": "42601", "M": "syntax"}), ErrorCategory.PERMANENT, ErrorCode.QUERY_FAILED),
        (_pg_error({"C": "42P01", "M": "no table"}), ErrorCategory.PERMANENT, ErrorCode.QUERY_FAILED),
        (_pg_error({"C": "XX000", "M": "internal"}), ErrorCategory.PERMANENT, ErrorCode.QUERY_FAILED),
        (ConnectionRefusedError(111, "refused"), ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED),
        # the caller's text or arguments: never transient, never counted toward the breaker
        (
            _pg_error({"C": "08P01", "M": "insufficient data left in message"}),
            ErrorCategory.PERMANENT,
            ErrorCode.INVALID_REQUEST,
        ),
        (
            _pg_error({"C": "22021", "M": "invalid byte sequence"}),
            ErrorCategory.PERMANENT,
            ErrorCode.INVALID_DATA,
        ),
        (_pg_error({"C": "54000", "M": "null character"}), ErrorCategory.PERMANENT, ErrorCode.QUERY_FAILED),
        (
            UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
            ErrorCategory.PERMANENT,
            ErrorCode.INVALID_REQUEST,
        ),
        (
            pg.InterfaceError("the server expects 1 argument for this query, 2 were passed"),
            ErrorCategory.PERMANENT,
            ErrorCode.INVALID_REQUEST,
        ),
        (
            pg.InterfaceError("the number of query arguments cannot exceed 32767"),
            ErrorCategory.PERMANENT,
            ErrorCode.INVALID_REQUEST,
        ),
        (
            ConnectionError('PostgreSQL server at "db:5432" rejected SSL upgrade'),
            ErrorCategory.CONFIGURATION,
            ErrorCode.INVALID_CONFIG,
        ),
    ],
)
def test_error_table(exc: BaseException, category: ErrorCategory, code: ErrorCode) -> None:
    error = refine(classify(exc, POSTGRES_ERROR_RULES), exc)
    assert (error.category, error.code) == (category, code)


def test_other_interface_errors_are_not_taken_for_a_closed_connection() -> None:
    error = classify(
        pg.InterfaceError("cannot perform operation: another operation is in progress"), POSTGRES_ERROR_RULES
    )
    assert error.code == ErrorCode.INTERNAL


def test_constraint_violation_names_the_constraint_but_not_the_values() -> None:
    exc = _pg_error(
        {
            "C": "23505",
            "M": 'duplicate key value violates unique constraint "users_pkey"',
            "D": "Key (email)=(alice@example.com) already exists.",
            "n": "users_pkey",
            "t": "users",
        }
    )
    error = refine(classify(exc, POSTGRES_ERROR_RULES), exc)
    assert "users_pkey" in error.message
    assert "alice@example.com" not in error.message
    assert "alice@example.com" not in (error.detail or "")


def test_data_errors_keep_values_out_of_message_and_log_detail() -> None:
    exc = _pg_error({"C": "22P02", "M": 'invalid input syntax for type integer: "secret-value"', "c": "age"})
    error = refine(classify(exc, POSTGRES_ERROR_RULES), exc)
    assert "secret-value" not in error.message
    assert "secret-value" not in (error.detail or "")
    assert "'age'" in error.message


def test_constraint_and_data_errors_say_which_kind() -> None:
    unique = _pg_error({"C": "23505", "M": "dup", "n": "users_pkey"})
    assert refine(classify(unique, POSTGRES_ERROR_RULES), unique).message == (
        "a constraint was violated (unique violation, constraint 'users_pkey', SQLSTATE 23505)"
    )
    too_long = _pg_error({"C": "22001", "M": "value too long for type character varying(3)"})
    assert (
        "string data right truncation" in refine(classify(too_long, POSTGRES_ERROR_RULES), too_long).message
    )


def test_an_unencodable_query_argument_is_named_by_position_only() -> None:
    exc = pg.DataError(
        "invalid input for query argument $2: 'hunter2' ('str' object has no attribute 'days')"
    )
    error = refine(classify(exc, POSTGRES_ERROR_RULES), exc)
    assert "query argument $2" in error.message
    assert "hunter2" not in error.message
    assert "hunter2" not in (error.detail or "")


def test_syntax_errors_carry_the_server_text() -> None:
    exc = _pg_error({"C": "42601", "M": 'syntax error at or near "SELEC"'})
    assert (
        refine(classify(exc, POSTGRES_ERROR_RULES), exc).message
        == 'syntax error: syntax error at or near "SELEC"'
    )


def test_security_errors_stay_generic() -> None:
    exc = _pg_error({"C": "42501", "M": "permission denied for table salaries"})
    assert refine(classify(exc, POSTGRES_ERROR_RULES), exc).to_info().message == "access denied"


@pytest.mark.parametrize(
    ("status", "rows"), [("UPDATE 3", 3), ("INSERT 0 5", 5), ("DELETE 0", 0), (None, 0), ("", 0)]
)
def test_affected_rows_from_the_command_tag(status: str | None, rows: int) -> None:
    assert affected_rows(status) == rows
