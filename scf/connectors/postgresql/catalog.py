"""Which tables and columns exist: the exact-match check every identifier passes before SQL is built.

Names are looked up in `pg_catalog` (not `information_schema.columns`, which hides type modifiers and
primary keys) for the configured schema only, and cached per table for the connector's lifetime. A
column missing from the cache triggers one re-read, so a column added after the first look is found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

from scf.connectors.postgresql.coercion import NATIVE_TYPES
from scf.connectors.postgresql.identifiers import check_identifier, invalid_identifier

#: A connection borrowed from the connector's pool.
Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

# Tables, partitioned tables, views and foreign tables: everything that may take INSERT/UPDATE/DELETE.
_TABLE_COLUMNS_SQL = """
SELECT a.attname AS name,
       t.typname AS type_name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS sql_type,
       (t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace AND t.typtype = 'b') AS builtin,
       pg_catalog.array_position(
           (SELECT i.indkey::pg_catalog.int2[] FROM pg_catalog.pg_index i
             WHERE i.indrelid = c.oid AND i.indisprimary),
           a.attnum) AS pk_position
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'f')
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""


@dataclass(frozen=True)
class ColumnInfo:
    """One column. `native` columns are bound with their own type; others as text the server casts."""

    name: str
    type_name: str
    sql_type: str  # produced by the server's format_type(): already quoted where it needs to be
    native: bool


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: Mapping[str, ColumnInfo]  # in table order
    primary_key: tuple[str, ...] = ()

    def column(self, name: str) -> ColumnInfo:
        found = self.columns.get(name)
        if found is None:
            raise invalid_identifier(f"unknown column {name!r} in table {self.name!r}")
        return found

    def missing(self, names: Iterable[str]) -> list[str]:
        return sorted({n for n in names if n not in self.columns})

    def ordered(self, names: Iterable[str]) -> tuple[str, ...]:
        """The given column names in table order (a stable SQL text for equal key sets)."""
        wanted = set(names)
        return tuple(n for n in self.columns if n in wanted)


def table_from_rows(schema: str, name: str, rows: Iterable[Mapping[str, Any]]) -> TableInfo | None:
    """Build a `TableInfo` from catalog rows; `None` when the table does not exist."""
    columns: dict[str, ColumnInfo] = {}
    key: list[tuple[int, str]] = []
    for row in rows:
        column = ColumnInfo(
            name=row["name"],
            type_name=row["type_name"],
            sql_type=row["sql_type"],
            native=bool(row["builtin"]) and row["type_name"] in NATIVE_TYPES,
        )
        columns[column.name] = column
        if row["pk_position"] is not None:
            key.append((row["pk_position"], column.name))
    if not columns:
        return None
    return TableInfo(schema, name, columns, tuple(n for _, n in sorted(key)))


class Catalog:
    """Per-connector cache of table definitions in one schema."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._tables: dict[str, TableInfo] = {}

    async def table(self, conn: Conn, name: object, columns: Iterable[str] = ()) -> TableInfo:
        """The table `name` with every one of `columns`, or a `permanent` INVALID_IDENTIFIER."""
        table_name = check_identifier(name, "table_name")
        wanted = [check_identifier(c, "column name") for c in columns]
        table = self._tables.get(table_name)
        if table is None or table.missing(wanted):
            table = await self._load(conn, table_name)
        missing = table.missing(wanted)
        if missing:
            raise invalid_identifier(
                f"unknown column(s) in table {table_name!r}: {', '.join(repr(m) for m in missing)}"
            )
        return table

    def forget(self, name: str) -> None:
        self._tables.pop(name, None)

    def clear(self) -> None:
        self._tables.clear()

    async def _load(self, conn: Conn, name: str) -> TableInfo:
        rows = await conn.fetch(_TABLE_COLUMNS_SQL, self.schema, name)
        table = table_from_rows(self.schema, name, [dict(r.items()) for r in rows])
        if table is None:
            self._tables.pop(name, None)
            raise invalid_identifier(f"unknown table {name!r} in schema {self.schema!r}")
        self._tables[name] = table
        return table
