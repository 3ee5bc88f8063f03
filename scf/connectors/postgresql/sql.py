"""Pure SQL builders for insert, update and delete: identifiers quoted, every value a placeholder.

The `noqa: S608` marks below are where SQL text is assembled: only from names the catalog confirmed
(quoted by `quote_ident`), server-formatted type names and fixed keywords; values never appear.

Builders take a `TableInfo` the catalog confirmed, so each name they quote exists. Native columns get
their own type as an explicit cast (`$1::pg_catalog."int4"`), so the server reports exactly the type the
value is coerced to; any other column (enum, interval, array, domain, ...) is bound as text and cast by
the server to the column's type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scf.connectors.postgresql.catalog import ColumnInfo, TableInfo
from scf.connectors.postgresql.coercion import pg_text
from scf.connectors.postgresql.identifiers import qualified_name, quote_ident
from scf.connectors.postgresql.requests import Filter, InsertParameters, OnConflict
from scf.schemas.errors import ErrorCode, PermanentError

_COMPARISONS: dict[str, str] = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class Bound:
    """One placeholder's value and where it came from in the request (for error messages)."""

    value: Any
    where: str


@dataclass(frozen=True)
class Statement:
    sql: str
    bound: tuple[Bound, ...] = ()


def native_cast(column: ColumnInfo, array: bool = False) -> str:
    return f"pg_catalog.{quote_ident(column.type_name)}" + ("[]" if array else "")


class _Placeholders:
    """Numbers placeholders in order and renders non-native values as text."""

    def __init__(self) -> None:
        self.bound: list[Bound] = []

    def scalar(self, value: Any, where: str, column: ColumnInfo) -> str:
        if column.native:
            return f"${self._add(value, where)}::{native_cast(column)}"
        return f"${self._add(pg_text(value), where)}::pg_catalog.text::{column.sql_type}"

    def array(self, values: Sequence[Any], where: str, column: ColumnInfo) -> str:
        if column.native:
            return f"${self._add(list(values), where)}::{native_cast(column, array=True)}"
        texts = [pg_text(v) for v in values]
        return f"${self._add(texts, where)}::pg_catalog.text[]::{column.sql_type}[]"

    def text(self, value: str, where: str) -> str:
        return f"${self._add(value, where)}::pg_catalog.text"

    def _add(self, value: Any, where: str) -> int:
        self.bound.append(Bound(value, where))
        return len(self.bound)


def _condition(table: TableInfo, index: int, flt: Filter, params: _Placeholders) -> str:
    column = table.column(flt.column)
    name = quote_ident(column.name)
    where = f"data.filters[{index}].value"
    if flt.operator == "is_null":
        return f"{name} IS NULL"
    if flt.operator == "is_not_null":
        return f"{name} IS NOT NULL"
    if flt.operator == "in":
        return f"{name} = ANY({params.array(flt.value, where, column)})"
    if flt.operator == "not_in":
        return f"{name} <> ALL({params.array(flt.value, where, column)})"
    if flt.operator == "like":
        return f"{name} LIKE {params.text(flt.value, where)}"
    return f"{name} {_COMPARISONS[flt.operator]} {params.scalar(flt.value, where, column)}"


def _where(table: TableInfo, filters: Sequence[Filter], params: _Placeholders) -> str:
    """`WHERE a AND b ...`, or nothing when there are no filters (the caller checked `allow_all`)."""
    if not filters:
        return ""
    return " WHERE " + " AND ".join(_condition(table, i, f, params) for i, f in enumerate(filters))


def build_update(table: TableInfo, values: Mapping[str, Any], filters: Sequence[Filter]) -> Statement:
    params = _Placeholders()
    assignments = ", ".join(
        f"{quote_ident(c.name)} = {params.scalar(v, f'data.values.{c.name}', c)}"
        for c, v in ((table.column(name), value) for name, value in values.items())
    )
    target = qualified_name(table.schema, table.name)
    sql = f"UPDATE {target} SET {assignments}{_where(table, filters, params)}"  # noqa: S608
    return Statement(sql, tuple(params.bound))


def build_delete(table: TableInfo, filters: Sequence[Filter]) -> Statement:
    params = _Placeholders()
    target = qualified_name(table.schema, table.name)
    sql = f"DELETE FROM {target}{_where(table, filters, params)}"  # noqa: S608
    return Statement(sql, tuple(params.bound))


# --- insert ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InsertPlan:
    """One set-based INSERT for records sharing a key set; answers one row (inserted, updated)."""

    sql: str
    columns: tuple[ColumnInfo, ...]


def conflict_target(table: TableInfo, parameters: InsertParameters) -> tuple[str, ...]:
    """The ON CONFLICT columns: the ones given, or the primary key for `update`."""
    if parameters.conflict_columns:
        if parameters.on_conflict == "error":
            raise PermanentError(
                "parameters.conflict_columns only applies with on_conflict 'nothing' or 'update'",
                code=ErrorCode.INVALID_REQUEST,
            )
        return tuple(table.column(c).name for c in parameters.conflict_columns)
    if parameters.on_conflict == "update":
        if not table.primary_key:
            raise PermanentError(
                f"on_conflict 'update' needs parameters.conflict_columns: table {table.name!r} "
                "has no primary key",
                code=ErrorCode.INVALID_REQUEST,
            )
        return table.primary_key
    return ()


def _on_conflict(mode: OnConflict, target: Sequence[str], columns: Sequence[str]) -> str:
    if mode == "error":
        return ""
    arbiter = f" ({', '.join(quote_ident(c) for c in target)})" if target else ""
    updates = [c for c in columns if c not in target]
    if mode == "nothing" or not updates:
        return f" ON CONFLICT{arbiter} DO NOTHING"
    assignments = ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in updates)
    return f" ON CONFLICT{arbiter} DO UPDATE SET {assignments}"


def build_insert(
    table: TableInfo, columns: Sequence[str], mode: OnConflict, target: Sequence[str] = ()
) -> InsertPlan:
    """`INSERT ... SELECT FROM unnest($1::type[], ...)`: one array parameter per column.

    With `update`, `xmax = 0` tells a freshly inserted row from an updated one.
    """
    infos = tuple(table.column(c) for c in columns)
    names = ", ".join(quote_ident(c.name) for c in infos)
    arrays = ", ".join(
        f"${i}::{native_cast(c, array=True) if c.native else 'pg_catalog.text[]'}"
        for i, c in enumerate(infos, start=1)
    )
    aliases = ", ".join(f"c{i}" for i in range(1, len(infos) + 1))
    selected = ", ".join(
        f"u.c{i}" if c.native else f"u.c{i}::{c.sql_type}" for i, c in enumerate(infos, start=1)
    )
    inserted = "(xmax = 0)" if mode == "update" else "true"
    sql = (
        f"WITH written AS (INSERT INTO {qualified_name(table.schema, table.name)} ({names}) "  # noqa: S608
        f"SELECT {selected} FROM unnest({arrays}) AS u({aliases})"
        f"{_on_conflict(mode, target, columns)} RETURNING {inserted} AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted) AS inserted, "
        "count(*) FILTER (WHERE NOT inserted) AS updated FROM written"
    )
    return InsertPlan(sql, infos)


def group_by_columns(
    records: Sequence[tuple[int, Mapping[str, Any]]], table: TableInfo
) -> list[tuple[tuple[str, ...], list[tuple[int, Mapping[str, Any]]]]]:
    """Split records by key set, keeping their order: a key a record lacks gets the column DEFAULT."""
    first = records[0][1].keys() if records else None
    if first and all(record.keys() == first for _, record in records):  # the common case: one key set
        return [(table.ordered(first), list(records))]
    groups: dict[frozenset[str], list[tuple[int, Mapping[str, Any]]]] = {}
    for index, record in records:
        if not record:
            raise PermanentError(f"data.records[{index}] has no columns", code=ErrorCode.INVALID_DATA)
        groups.setdefault(frozenset(record), []).append((index, record))
    return [(table.ordered(keys), rows) for keys, rows in groups.items()]
