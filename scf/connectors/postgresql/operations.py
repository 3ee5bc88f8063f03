"""The write operations, thin I/O around the pure builders: check names, prepare, coerce, run.

`apply_*` run inside a transaction the caller opened; `run_write` opens it, bounds every statement by the
request's remaining time (`statement_timeout`), and, when the request has an idempotency key, claims the
key in the ledger first and records the outcome with the effect. A `transaction` applies its steps in
order in that one transaction: all of them commit or none does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from scf.connectors.operation_table import Operation, apply_aliases
from scf.connectors.postgresql.catalog import Catalog, ColumnInfo, Conn, TableInfo
from scf.connectors.postgresql.coercion import coerce_column, coerce_param, pg_text
from scf.connectors.postgresql.identifiers import check_identifier
from scf.connectors.postgresql.ledger import Ledger
from scf.connectors.postgresql.requests import (
    InsertData,
    InsertParameters,
    TransactionStep,
    UpdateData,
    WriteParameters,
    require_filters,
)
from scf.connectors.postgresql.session import mark_untouched
from scf.connectors.postgresql.sql import (
    Statement,
    build_delete,
    build_insert,
    build_update,
    conflict_target,
    group_by_columns,
)
from scf.connectors.postgresql.statements import affected_rows, bounded_transaction, param_types
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome
from scf.schemas.validation import parse_model

SERVICE_TYPE = "postgresql"

Apply = Callable[[Conn], Awaitable[OperationOutcome]]


async def run_write(
    conn: Conn,
    apply: Apply,
    timeout: float | None,
    ledger: Ledger,
    service: str,
    key: str | None,
    digest: str,
) -> OperationOutcome:
    """Run `apply` in one transaction; with a key, exactly once (see `ledger.py`)."""
    if key is not None:
        await ledger.ensure(conn)
    async with bounded_transaction(conn, readonly=False, timeout=timeout):
        if key is not None:
            stored = await ledger.claim(conn, service, key, digest)
            if stored is not None:
                return stored
        outcome = await apply(conn)
        if key is not None:
            await ledger.record(conn, service, key, outcome)
    if key is not None:
        await ledger.purge_expired(conn)
    mark_untouched(conn)  # committed; nothing but the connector's own SQL ran (SET LOCAL ended with it)
    return outcome


def check_names(table_name: str, columns: Iterable[str], ledger: Ledger) -> None:
    """Every name's shape, before a connection is even borrowed: a bad one never reaches the server.

    The catalog then confirms the names that pass by exact match (`catalog.py`). The ledger is the
    connector's own bookkeeping: operations may not write it.
    """
    check_identifier(table_name, "table")
    for column in columns:
        check_identifier(column, "column name")
    if table_name == ledger.table:
        raise PermanentError(
            f"table {table_name!r} is the idempotency ledger and cannot be written by operations",
            code=ErrorCode.INVALID_REQUEST,
        )


async def apply_insert(
    conn: Conn, catalog: Catalog, data: InsertData, params: InsertParameters, timeout: float | None
) -> OperationOutcome:
    """Insert all rows set-based, `batch_size` rows per statement: binary COPY for plain inserts of
    built-in types, else `INSERT ... SELECT FROM unnest(...)` of typed arrays.

    Records: a key a record lacks gets the column's DEFAULT (records are grouped by key set); an
    explicit null is NULL. Column-oriented rows are one group, transposed at C speed.
    """
    wanted = {*data.column_names(), *(params.conflict_columns or ())}
    table = await catalog.table(conn, params.table, sorted(wanted))
    target = conflict_target(table, params)
    inserted = updated = 0
    for columns, vectors, where in _batches(data, table, params.batch_size):
        new, changed = await _insert_group(conn, table, columns, vectors, where, params, target, timeout)
        inserted, updated = inserted + new, updated + changed
    return OperationOutcome(
        records_processed=data.row_count,
        records_affected=inserted + updated,
        result_data={"inserted_rows": inserted, "updated_rows": updated},
    )


#: Where value `i` of column `name` came from in the request, for an error message.
Where = Callable[[int, str], str]
_Batch = tuple[Sequence[str], list[list[Any]], Where]


def _batches(data: InsertData, table: TableInfo, batch_size: int) -> Iterator[_Batch]:
    """Each statement's columns, their values one list per column, and where each value came from."""
    if data.columns is not None and data.rows is not None:
        columns = [table.column(c).name for c in data.columns]
        for start in range(0, len(data.rows), batch_size):
            vectors = [list(v) for v in zip(*data.rows[start : start + batch_size], strict=True)]
            yield columns, vectors, _row_place(start, columns)
        return
    indexed = list(enumerate(data.records or ()))
    for start in range(0, len(indexed), batch_size):
        for names, rows in group_by_columns(indexed[start : start + batch_size], table):
            vectors = [[record[name] for _, record in rows] for name in names]
            yield names, vectors, _record_place(rows)


def _row_place(start: int, columns: Sequence[str]) -> Where:
    positions = {name: index for index, name in enumerate(columns)}
    return lambda i, name: f"data.rows[{start + i}][{positions[name]}]"


def _record_place(rows: Sequence[tuple[int, Mapping[str, Any]]]) -> Where:
    return lambda i, name: f"data.records[{rows[i][0]}].{name}"


async def _insert_group(
    conn: Conn,
    table: TableInfo,
    columns: Sequence[str],
    vectors: list[list[Any]],
    where: Where,
    params: InsertParameters,
    target: Sequence[str],
    timeout: float | None,
) -> tuple[int, int]:
    """One statement for rows sharing their columns: COPY when it can (plain inserts of built-in
    types), else `INSERT ... SELECT FROM unnest(...)`. Returns (inserted, updated)."""
    infos = [table.column(c) for c in columns]
    count = len(vectors[0]) if vectors else 0
    if params.on_conflict == "error" and all(c.native and c.type_name not in _TEXT_CODECS for c in infos):
        values = [_column(v, c, c.type_name, where) for v, c in zip(vectors, infos, strict=True)]
        await conn.copy_records_to_table(
            table.name,
            schema_name=table.schema,
            columns=[c.name for c in infos],
            records=zip(*values, strict=True),
            timeout=timeout,
        )
        return count, 0
    plan = build_insert(table, columns, params.on_conflict, target)
    stmt = await conn.prepare(plan.sql, timeout=timeout)
    arrays = [
        _column(vector, column, param.element or param.name, where)
        for vector, column, param in zip(vectors, plan.columns, param_types(stmt), strict=True)
    ]
    row = await stmt.fetchrow(*arrays, timeout=timeout)
    return (int(row["inserted"]), int(row["updated"])) if row is not None else (0, 0)


#: Types the connection decodes through a text codec (`json_text`), which binary COPY cannot carry.
_TEXT_CODECS = frozenset({"json", "jsonb"})


def _column(values: list[Any], column: ColumnInfo, type_name: str, where: Where) -> list[Any]:
    """One column of the batch, coerced to `type_name` (non-native columns travel as text)."""
    name = column.name
    raw = values if column.native else [pg_text(v) for v in values]
    return coerce_column(raw, type_name, lambda i: where(i, name))


async def apply_update(
    conn: Conn, catalog: Catalog, data: UpdateData, where: WriteParameters, timeout: float | None
) -> OperationOutcome:
    """`plan_update` has refused a change that may reach every row (`require_filters`)."""
    names = [*data.values, *(f.column for f in where.filters)]
    table = await catalog.table(conn, where.table, names)
    return await _write(conn, build_update(table, data.values, where.filters), timeout)


async def apply_delete(
    conn: Conn, catalog: Catalog, where: WriteParameters, timeout: float | None
) -> OperationOutcome:
    table = await catalog.table(conn, where.table, [f.column for f in where.filters])
    return await _write(conn, build_delete(table, where.filters), timeout)


async def _write(conn: Conn, statement: Statement, timeout: float | None) -> OperationOutcome:
    stmt = await conn.prepare(statement.sql, timeout=timeout)
    types = param_types(stmt)
    args = [coerce_param(b.value, p, b.where) for b, p in zip(statement.bound, types, strict=True)]
    await stmt.fetch(*args, timeout=timeout)
    affected = affected_rows(stmt.get_statusmsg())
    return OperationOutcome(records_processed=affected, records_affected=affected)


#: A validated write, waiting for its time budget; then it runs on a connection.
Plan = Callable[[float | None], Apply]


def plan_insert(rows: InsertData, options: InsertParameters, catalog: Catalog, ledger: Ledger) -> Plan:
    """Check every name before any I/O; return the insert's runner."""
    check_names(options.table, [*rows.column_names(), *(options.conflict_columns or ())], ledger)
    return lambda timeout: lambda conn: apply_insert(conn, catalog, rows, options, timeout)


def plan_update(change: UpdateData, where: WriteParameters, catalog: Catalog, ledger: Ledger) -> Plan:
    check_names(where.table, [*change.values, *(f.column for f in where.filters)], ledger)
    require_filters(where, "update")
    return lambda timeout: lambda conn: apply_update(conn, catalog, change, where, timeout)


def plan_delete(where: WriteParameters, catalog: Catalog, ledger: Ledger) -> Plan:
    check_names(where.table, [f.column for f in where.filters], ledger)
    require_filters(where, "delete")
    return lambda timeout: lambda conn: apply_delete(conn, catalog, where, timeout)


def plan_write(operation: str, data: Any, parameters: Any, catalog: Catalog, ledger: Ledger) -> Plan:
    """The runner of one parsed insert, update or delete (`data` and `parameters` of its row's models)."""
    if operation == "insert":
        return plan_insert(data, parameters, catalog, ledger)
    if operation == "update":
        return plan_update(data, parameters, catalog, ledger)
    return plan_delete(parameters, catalog, ledger)


def plan_transaction(
    steps: Sequence[TransactionStep], rows: Mapping[str, Operation[Any]], catalog: Catalog, ledger: Ledger
) -> Plan:
    """Every step parsed against its operation's row (aliases included) and checked before any I/O:
    a bad step 7 fails before step 1 runs."""
    planned = [
        _plan_step(index, step, rows[step.operation], catalog, ledger) for index, step in enumerate(steps)
    ]
    names: list[str] = [step.operation for step in steps]
    return lambda timeout: _transaction([plan(timeout) for plan in planned], names)


def _plan_step(
    index: int, step: TransactionStep, row: Operation[Any], catalog: Catalog, ledger: Ledger
) -> Plan:
    try:
        data, parameters = apply_aliases(row, SERVICE_TYPE, step.data, step.parameters)
        parsed_data = parse_model(row.data, data, "data")
        parsed_parameters = parse_model(row.parameters, parameters, "parameters")
        return plan_write(step.operation, parsed_data, parsed_parameters, catalog, ledger)
    except PermanentError as exc:
        raise PermanentError(
            f"data.steps[{index}] ({step.operation}): {exc.message}", code=exc.code, detail=exc.detail
        ) from exc


def _transaction(steps: list[Apply], names: list[str]) -> Apply:
    async def apply(conn: Conn) -> OperationOutcome:
        results: list[dict[str, Any]] = []
        processed = affected = 0
        for index, (step, name) in enumerate(zip(steps, names, strict=True)):
            try:
                outcome = await step(conn)
            except PermanentError as exc:
                raise PermanentError(
                    f"data.steps[{index}] ({name}): {exc.message}", code=exc.code, detail=exc.detail
                ) from exc
            processed += outcome.records_processed
            affected += outcome.records_affected
            results.append(
                {
                    "operation": name,
                    "records_affected": outcome.records_affected,
                    "result": outcome.result_data,
                }
            )
        return OperationOutcome(
            records_processed=processed, records_affected=affected, result_data={"steps": results}
        )

    return apply
