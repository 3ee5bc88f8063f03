"""The four operations, thin I/O around the pure builders: parse, check names, prepare, coerce, run.

Every operation runs in one transaction: an insert's batches all commit or none does, so a retried
operation never leaves half of its rows behind. The statement is prepared first; the server's resolved
placeholder types drive the coercion of JSON values (`coercion.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.prepared_stmt import PreparedStatement

from scf.connectors.postgresql.catalog import Catalog, Conn, TableInfo
from scf.connectors.postgresql.coercion import ParamType, coerce_param, coerce_params, to_json_safe
from scf.connectors.postgresql.requests import (
    DeleteData,
    InsertData,
    InsertParameters,
    QueryParameters,
    UpdateData,
    WriteParameters,
    require_filters,
)
from scf.connectors.postgresql.sql import (
    Statement,
    build_delete,
    build_insert,
    build_update,
    column_values,
    conflict_target,
    group_by_columns,
)
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

_Stmt: TypeAlias = "PreparedStatement[asyncpg.Record]"


def param_types(stmt: _Stmt) -> tuple[ParamType, ...]:
    return tuple(ParamType.parse(t.name) for t in stmt.get_parameters())


def column_names(stmt: _Stmt) -> list[str]:
    """Result column names; two columns of the same name would collide in a JSON row, so refuse."""
    names = [a.name for a in stmt.get_attributes()]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PermanentError(
            f"the query returns more than one column named {', '.join(map(repr, duplicates))}; "
            "give them distinct aliases",
            code=ErrorCode.INVALID_REQUEST,
        )
    return names


def affected_rows(status: str | None) -> int:
    """Rows changed according to a command tag such as 'UPDATE 3' or 'INSERT 0 5'."""
    last = (status or "").rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


async def run_query(
    conn: Conn, params: QueryParameters, max_rows: int, writable: bool, timeout: float | None
) -> OperationOutcome:
    """One statement in a READ ONLY transaction (unless `writable`), at most `max_rows` rows back."""
    limit = min(max_rows, params.limit or max_rows)
    async with conn.transaction(readonly=not writable):
        stmt = await conn.prepare(params.query, timeout=timeout)
        args = coerce_params(params.query_params, param_types(stmt), "parameters.query_params")
        columns = column_names(stmt)
        if not columns:  # a statement without a result (only when writes are allowed)
            await stmt.fetch(*args, timeout=timeout)
            return OperationOutcome(
                records_affected=affected_rows(stmt.get_statusmsg()),
                result_data={"rows": [], "columns": [], "truncated": False},
            )
        cursor = await stmt.cursor(*args, timeout=timeout)
        records = await cursor.fetch(limit + 1, timeout=timeout)
    rows = [dict(zip(columns, map(to_json_safe, r), strict=True)) for r in records[:limit]]
    return OperationOutcome(
        records_processed=len(rows),
        result_data={"rows": rows, "columns": columns, "truncated": len(records) > limit},
    )


async def _prepare_bound(conn: Conn, statement: Statement, timeout: float | None) -> tuple[_Stmt, list[Any]]:
    stmt = await conn.prepare(statement.sql, timeout=timeout)
    types = param_types(stmt)
    args = [coerce_param(b.value, p, b.where) for b, p in zip(statement.bound, types, strict=True)]
    return stmt, args


async def run_insert(
    conn: Conn, catalog: Catalog, data: InsertData, params: InsertParameters, timeout: float | None
) -> OperationOutcome:
    """Insert all records set-based (`unnest` of typed arrays), `batch_size` rows per statement.

    A key a record lacks gets the column's DEFAULT (records are grouped by key set); an explicit null
    is NULL. All batches share one transaction: the operation commits entirely or not at all.
    """
    keys = {k for record in data.records for k in record}
    wanted = keys | set(params.conflict_columns or ())
    table = await catalog.table(conn, data.table_name, sorted(wanted))
    target = conflict_target(table, params)
    indexed = list(enumerate(data.records))
    inserted = updated = 0
    async with conn.transaction():
        for start in range(0, len(indexed), params.batch_size):
            for columns, rows in group_by_columns(indexed[start : start + params.batch_size], table):
                new, changed = await _insert_group(conn, table, columns, rows, params, target, timeout)
                inserted, updated = inserted + new, updated + changed
    return OperationOutcome(
        records_processed=len(data.records),
        records_affected=inserted + updated,
        result_data={"inserted_rows": inserted, "updated_rows": updated},
    )


async def _insert_group(
    conn: Conn,
    table: TableInfo,
    columns: Sequence[str],
    rows: Sequence[tuple[int, Any]],
    params: InsertParameters,
    target: Sequence[str],
    timeout: float | None,
) -> tuple[int, int]:
    plan = build_insert(table, columns, params.on_conflict, target)
    stmt = await conn.prepare(plan.sql, timeout=timeout)
    arrays = []
    for column, param in zip(plan.columns, param_types(stmt), strict=True):
        element = ParamType(param.element or param.name)
        arrays.append([coerce_param(b.value, element, b.where) for b in column_values(column, rows)])
    row = await stmt.fetchrow(*arrays, timeout=timeout)
    return (int(row["inserted"]), int(row["updated"])) if row is not None else (0, 0)


async def run_update(
    conn: Conn, catalog: Catalog, data: UpdateData, params: WriteParameters, timeout: float | None
) -> OperationOutcome:
    require_filters(data, params, "update")
    names = [*data.values, *(f.column for f in data.filters)]
    table = await catalog.table(conn, data.table_name, names)
    return await _write(conn, build_update(table, data.values, data.filters), timeout)


async def run_delete(
    conn: Conn, catalog: Catalog, data: DeleteData, params: WriteParameters, timeout: float | None
) -> OperationOutcome:
    require_filters(data, params, "delete")
    table = await catalog.table(conn, data.table_name, [f.column for f in data.filters])
    return await _write(conn, build_delete(table, data.filters), timeout)


async def _write(conn: Conn, statement: Statement, timeout: float | None) -> OperationOutcome:
    async with conn.transaction():
        stmt, args = await _prepare_bound(conn, statement, timeout)
        await stmt.fetch(*args, timeout=timeout)
    affected = affected_rows(stmt.get_statusmsg())
    return OperationOutcome(records_processed=affected, records_affected=affected)
