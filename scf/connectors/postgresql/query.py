"""The `query` operation: one statement, read-only unless allowed, bounded in time and in rows.

A reply holds at most `page_size` (or `max_rows`) rows; when there are more it carries a
`next_page_token` (see `paging.py` for keyset and offset paging). Values are made JSON-safe
(`coercion.to_json_safe`): dates and times ISO 8601, decimals and UUIDs as text, bytea base64.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from scf.connectors.postgresql.catalog import Conn
from scf.connectors.postgresql.coercion import NATIVE_TYPES, coerce_params, to_json_safe
from scf.connectors.postgresql.paging import PageToken, page_sql, query_digest
from scf.connectors.postgresql.requests import QueryParameters
from scf.connectors.postgresql.session import cached_statement, ensure_backstop, fetch_limited, mark_untouched
from scf.connectors.postgresql.statements import (
    Stmt,
    affected_rows,
    bounded_transaction,
    column_names,
    param_types,
)
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

#: Key columns must round-trip through JSON and order the same way on the server.
_UNORDERABLE = frozenset({"json", "jsonb"})


async def run_query(
    conn: Conn,
    params: QueryParameters,
    page_token: str | None,
    max_rows: int,
    writable: bool,
    timeout: float | None,
) -> OperationOutcome:
    """A read-only connector runs the statement on its own (its session is read-only; see `session.py`):
    one round trip for a cached statement. One that allows writes keeps a bounded transaction."""
    if writable:
        async with bounded_transaction(conn, readonly=False, timeout=timeout):
            return await _run(conn, params, page_token, max_rows, writable, timeout, _fresh_statement)
    await ensure_backstop(conn, timeout)
    for attempt in (1, 2):
        try:
            outcome = await _run(conn, params, page_token, max_rows, writable, timeout, cached_statement)
        except asyncpg.InvalidCachedStatementError:
            # the table changed under a cached statement (ALTER TABLE ...): prepare again, once
            if attempt == 2 or conn.is_in_transaction():
                raise
            await conn.reload_schema_state()
            continue
        mark_untouched(conn)
        return outcome
    raise AssertionError("unreachable")  # pragma: no cover


async def _run(
    conn: Conn,
    params: QueryParameters,
    page_token: str | None,
    max_rows: int,
    writable: bool,
    timeout: float | None,
    prepare: Prepare,
) -> OperationOutcome:
    started = time.monotonic()
    stmt = await prepare(conn, params.query, timeout)
    if timeout is not None:  # a Parse that took a while leaves the Execute only what is left
        timeout = max(0.001, timeout - (time.monotonic() - started))
    columns = column_names(stmt)
    if not columns:  # a statement without a result: a utility (LOCK, SET, ...) or a write
        if not writable:
            raise PermanentError(
                "the query operation is read-only: it runs statements that return rows (SELECT, "
                "VALUES, ...); write with insert/update/delete (or enable "
                "custom_config.allow_writes_in_query)",
                code=ErrorCode.PERMISSION_DENIED,
            )
        if params.page_size is not None or page_token is not None:
            raise PermanentError("only a statement that returns rows can be paged", code=_INVALID)
        args = coerce_params(params.query_params, param_types(stmt), "parameters.query_params")
        await stmt.fetch(*args, timeout=timeout)
        return OperationOutcome(
            records_affected=affected_rows(stmt.get_statusmsg()),
            result_data={"rows": [], "columns": [], "truncated": False},
        )
    if params.page_size is None and page_token is None:
        return await _first_rows(stmt, params, columns, max_rows, timeout)
    return await _page(conn, stmt, params, page_token, columns, max_rows, timeout, prepare)


#: How a statement is prepared: from asyncpg's cache (read-only connectors), or afresh inside a writable
#: connector's transaction, where a cached statement the table outgrew could not be prepared again.
Prepare = Callable[[Conn, str, float | None], Awaitable[Stmt]]


def _fresh_statement(conn: Conn, query: str, timeout: float | None) -> Awaitable[Stmt]:
    return conn.prepare(query, timeout=timeout)


_INVALID = ErrorCode.INVALID_REQUEST


async def _first_rows(
    stmt: Stmt, params: QueryParameters, columns: list[str], max_rows: int, timeout: float | None
) -> OperationOutcome:
    """An unpaged read: cut at `max_rows`, the reply says how to go on (the hot path: one round trip)."""
    args = coerce_params(params.query_params, param_types(stmt), "parameters.query_params")
    records = await fetch_limited(stmt, args, max_rows + 1, timeout)  # the server stops after one more
    more = len(records) > max_rows
    token = None
    if more:
        digest = query_digest(params.query, params.query_params, None, max_rows)
        token = PageToken(digest, offset=max_rows).encode()
    return _outcome(columns, records[:max_rows], truncated=more, token=token)


async def _page(
    conn: Conn,
    stmt: Stmt,
    params: QueryParameters,
    page_token: str | None,
    columns: list[str],
    max_rows: int,
    timeout: float | None,
    prepare: Prepare,
) -> OperationOutcome:
    size = min(params.page_size or max_rows, max_rows)
    digest = query_digest(params.query, params.query_params, params.page_key, size)
    token = PageToken.decode(page_token, digest) if page_token is not None else None
    key = _check_key(stmt, params.page_key) if params.page_key else None
    if key is not None and token is not None and token.after is None:
        raise PermanentError("page_token is malformed", code=_INVALID)
    after = list(token.after) if key is not None and token is not None and token.after else []
    sql = page_sql(params.query, len(param_types(stmt)), size, key, token)
    wrapped = await prepare(conn, sql, timeout)
    values = [*params.query_params, *after]
    args = coerce_params(values, param_types(wrapped), "parameters.query_params")
    records = await wrapped.fetch(*args, timeout=timeout)
    if key is not None and any(r[k] is None for r in records for k in key):
        raise PermanentError(
            "a page_key column is NULL in the result; page on columns that are never NULL",
            code=_INVALID,
        )
    rows, more = records[:size], len(records) > size
    next_token = None
    if more:
        if key is not None:
            last = tuple(to_json_safe(rows[-1][k]) for k in key)
            next_token = PageToken(digest, after=last).encode()
        else:
            next_token = PageToken(digest, offset=(token.offset if token else 0) + size).encode()
    return _outcome(columns, rows, truncated=False, token=next_token, page_size=size)


def _check_key(stmt: Stmt, page_key: list[str]) -> list[str]:
    """Key columns must be result columns (exact names) of built-in, orderable scalar types."""
    types = {a.name: a.type for a in stmt.get_attributes()}
    for name in page_key:
        found = types.get(name)
        if found is None:
            raise PermanentError(
                f"page_key column {name!r} is not a column of the query's result", code=_INVALID
            )
        if found.schema != "pg_catalog" or found.name not in NATIVE_TYPES or found.name in _UNORDERABLE:
            raise PermanentError(
                f"page_key column {name!r} has type {found.name}; use integer, numeric, text, "
                "date/time, uuid, boolean or bytea columns",
                code=_INVALID,
            )
    return page_key


def _outcome(
    columns: list[str],
    records: Any,
    *,
    truncated: bool,
    token: str | None,
    page_size: int | None = None,
) -> OperationOutcome:
    rows = [dict(zip(columns, map(to_json_safe, r), strict=True)) for r in records]
    data: dict[str, Any] = {"rows": rows, "columns": columns, "truncated": truncated}
    if page_size is not None:
        data["page_size"] = page_size
    return OperationOutcome(records_processed=len(rows), result_data=data, next_page_token=token)
