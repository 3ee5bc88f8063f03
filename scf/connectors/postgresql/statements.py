"""Small helpers every statement shares: placeholder types, result columns, command tags, time limits."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.prepared_stmt import PreparedStatement

from scf.connectors.postgresql.catalog import Conn
from scf.connectors.postgresql.coercion import ParamType
from scf.schemas.errors import ErrorCode, PermanentError

Stmt: TypeAlias = "PreparedStatement[asyncpg.Record]"

#: The server needs a moment to plan and answer; below this a statement would time out before it ran.
MIN_STATEMENT_TIMEOUT_MS = 50


def param_types(stmt: Stmt) -> tuple[ParamType, ...]:
    return tuple(ParamType.parse(t.name) for t in stmt.get_parameters())


def column_names(stmt: Stmt) -> list[str]:
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


def statement_timeout_ms(timeout: float | None) -> int | None:
    """The server-side limit for the time left; `None` keeps the server's own setting."""
    if timeout is None:
        return None
    return max(MIN_STATEMENT_TIMEOUT_MS, math.ceil(timeout * 1000))


@asynccontextmanager
async def bounded_transaction(conn: Conn, *, readonly: bool, timeout: float | None) -> AsyncIterator[None]:
    """A transaction whose every statement the server cancels when the time is up; COMMIT on success.

    BEGIN and `SET LOCAL statement_timeout` go in one simple-query round trip (the number is ours, an
    int). The server-side limit stops a runaway statement even after the caller gave up waiting; it ends
    with the transaction. Any error rolls back (a broken connection is left to the pool to discard).
    """
    ms = statement_timeout_ms(timeout)
    # READ WRITE spelt out: a read-only connector's sessions default to read-only transactions
    begin = "BEGIN READ ONLY" if readonly else "BEGIN READ WRITE"
    if ms is not None:
        begin += f"; SET LOCAL statement_timeout = {int(ms)}"
    await conn.execute(begin)
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
