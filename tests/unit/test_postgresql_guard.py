"""The `query` guard on the parse tree, and which update/delete filters narrow the rows (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from scf.connectors.postgresql.guard import check_query, check_statement, denied_function
from scf.connectors.postgresql.requests import Filter, WriteParameters, narrows, require_filters
from scf.schemas.errors import ErrorCode, PermanentError


def _refusal(sql: str, *, writable: bool = False) -> PermanentError:
    with pytest.raises(PermanentError) as caught:
        check_statement(sql, writable=writable)
    return caught.value


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT lo_import('/etc/passwd')",
        "SELECT pg_catalog.lo_import('/etc/passwd')",
        "SELECT \"lo_import\"('/etc/passwd')",
        "SELECT pg_catalog.\"lo_export\"(1, '/tmp/x')",
        "SELECT LO_FROM_BYTEA(0, 'x')",
        "SELECT/**/lo_unlink(1)",
        "SELECT lo_unlink\n(1)",
        "SELECT loread(0, 1)",
        "SELECT pg_read_file('x')",
        "SELECT * FROM pg_ls_waldir()",
        "SELECT pg_terminate_backend(1)",
        "SELECT pg_advisory_xact_lock(1)",
        "SELECT pg_try_advisory_lock_shared(1)",
        "SELECT set_config('a.b', 'c', false)",
        "SELECT query_to_xml('select 1', true, true, '')",
        "SELECT * FROM dblink('x', 'select 1') AS t(a int)",
        "SELECT 1 FROM t WHERE a = (SELECT pg_advisory_lock(1))",
        "SELECT 1 FROM t JOIN LATERAL lo_get(1) g ON true",
        "SELECT 1 FROM t GROUP BY a HAVING count(pg_advisory_lock(1)) > 0",
        "SELECT array(SELECT pg_read_file('x'))",
        "SELECT CASE WHEN true THEN pg_reload_conf() END",
        "SELECT (pg_advisory_lock(1))::text",
        "SELECT CAST(pg_advisory_lock(1) AS text)",
        "SELECT t.lo_get FROM t",
        "SELECT 1 WINDOW w AS (ORDER BY pg_advisory_lock(1))",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION SELECT pg_advisory_lock(n)::int FROM r) SELECT * FROM r",
        "EXPLAIN ANALYZE SELECT pg_advisory_lock(1)",
        "SELECT U&\"\\006Co_import\"('x')",
        "SELECT nextval('s')",
        "SELECT txid_current()",
        "SELECT pg_notify('c', 'x')",
    ],
)
def test_effectful_functions_are_refused_wherever_they_hide(sql: str) -> None:
    assert _refusal(sql).code == ErrorCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    "sql",
    [
        "COPY t TO STDOUT",
        "COPY t FROM '/etc/passwd'",
        "DO $$ BEGIN END $$",
        "LOAD 'x'",
        "CALL p()",
        "SET search_path = pg_temp",
        "SET ROLE postgres",
        "RESET ALL",
        "COMMIT",
        "LISTEN c",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "PREPARE p AS SELECT 1",
        "ALTER SYSTEM SET work_mem = '1GB'",
        "CREATE EXTENSION dblink",
        "VACUUM t",
    ],
)
def test_session_and_server_statements_are_refused_even_with_writes_allowed(sql: str) -> None:
    assert _refusal(sql, writable=True).code == ErrorCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    "sql",
    ["INSERT INTO t VALUES (1)", "DELETE FROM t", "CREATE TABLE x (a int)", "TRUNCATE t", "LOCK t"],
)
def test_a_read_only_query_refuses_writes_before_the_server(sql: str) -> None:
    error = _refusal(sql)
    assert error.code == ErrorCode.PERMISSION_DENIED
    assert "read-only" in error.message


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELECT 'a\x00b'", ErrorCode.INVALID_REQUEST),
        ("\x00", ErrorCode.INVALID_REQUEST),
        ("SELECT '\ud800'", ErrorCode.INVALID_REQUEST),
        ("SELEC 1", ErrorCode.QUERY_FAILED),
        ("SELECT 1; SELECT 2", ErrorCode.QUERY_FAILED),
        ("SELECT 1; DROP TABLE t", ErrorCode.QUERY_FAILED),
        (";", ErrorCode.QUERY_FAILED),
        ("SELECT " + "(" * 20_000 + "1" + ")" * 20_000, ErrorCode.QUERY_FAILED),
    ],
)
def test_text_the_server_cannot_take_is_a_typed_refusal(sql: str, code: ErrorCode) -> None:
    assert _refusal(sql).code == code


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "SELECT lower(name), count(*) FROM t GROUP BY 1",
        "SELECT 'lo_import(1); pg_read_file' AS text_is_not_a_call",
        "SELECT $1::text AS pg_advisory_lock_alias",
        "TABLE t",
        "VALUES (1), (2)",
        "SHOW statement_timeout",
        "EXPLAIN SELECT * FROM t",
        "SELECT pg_sleep(0)",
        "SELECT current_setting('search_path')",
        "SELECT * FROM t WHERE x = ANY($1::int[]) ORDER BY x LIMIT 10",
        "SELECT json_agg(t) FROM t",
        "SELECT col_lo_ FROM t",  # a column that merely contains a refused prefix
        'SELECT "Lo""x" FROM t',
    ],
)
def test_ordinary_reads_pass(sql: str) -> None:
    check_statement(sql, writable=False)


@pytest.mark.parametrize(
    "sql",
    ["INSERT INTO t VALUES (nextval('s'))", "SELECT setval('s', 1)", "UPDATE t SET a = 1", "NOTIFY c"],
)
def test_writes_pass_when_the_connector_allows_them(sql: str) -> None:
    check_statement(sql, writable=True)


def test_denied_function_ignores_case_and_leaves_lookalikes() -> None:
    assert denied_function("LO_Import", writable=True)
    assert denied_function("pg_read_binary_file", writable=True)
    assert not denied_function("lower", writable=False)
    assert not denied_function("pg_sleep", writable=False)
    assert not denied_function("pg_stat_activity", writable=False)
    assert denied_function("nextval", writable=False)
    assert not denied_function("nextval", writable=True)


# --- filters ---------------------------------------------------------------------------------------------


def _filter(operator: str, value: Any = None) -> Filter:
    return Filter.model_validate({"column": "id", "operator": operator, "value": value})


@pytest.mark.parametrize(
    ("flt", "narrowing"),
    [
        (_filter("=", 1), True),
        (_filter("<", 1), True),
        (_filter("<=", 1), True),
        (_filter(">", 1), True),
        (_filter(">=", 1), True),
        (_filter("in", [1, 2]), True),
        (_filter("in", []), True),  # matches nothing
        (_filter("like", "abc%"), True),
        (_filter("!=", 1), False),
        (_filter("not_in", [1]), False),
        (_filter("is_null"), False),
        (_filter("is_not_null"), False),
        (_filter("like", "%"), False),
        (_filter("like", "%abc"), False),
        (_filter("like", "_%"), False),
        (_filter("like", "\\%"), False),
        (_filter("like", ""), False),
    ],
)
def test_which_conditions_narrow(flt: Filter, narrowing: bool) -> None:
    assert narrows(flt) is narrowing


def test_one_narrowing_condition_among_and_ed_ones_is_enough() -> None:
    require_filters(WriteParameters(table="t", filters=[_filter("is_not_null"), _filter("=", 3)]), "delete")


def test_only_non_narrowing_conditions_count_as_every_row() -> None:
    filters = [_filter("is_not_null"), _filter("!=", 3)]
    with pytest.raises(PermanentError) as caught:
        require_filters(WriteParameters(table="t", filters=filters), "delete")
    assert caught.value.code == ErrorCode.INVALID_REQUEST
    assert "every row" in caught.value.message
    require_filters(WriteParameters(table="t", filters=filters, allow_all=True), "delete")


async def test_check_query_remembers_accepted_texts_only() -> None:
    await check_query("SELECT 41 + 1 AS remembered", writable=False)
    await check_query("SELECT 41 + 1 AS remembered", writable=False)
    for _ in range(2):  # a refusal is never cached as an acceptance
        with pytest.raises(PermanentError):
            await check_query("SELECT pg_advisory_lock(41)", writable=False)
    with pytest.raises(PermanentError):  # the cache key includes `writable`
        await check_query("SELECT nextval('s')", writable=False)
    await check_query("SELECT nextval('s')", writable=True)


async def test_a_large_statement_is_checked_off_the_event_loop() -> None:
    padding = " ".join(["x.a,"] * 5_000)
    with pytest.raises(PermanentError):
        await check_query(f"SELECT {padding} lo_import('/etc/passwd') FROM x", writable=False)
    await check_query(f"SELECT {padding} 1 FROM x", writable=False)
