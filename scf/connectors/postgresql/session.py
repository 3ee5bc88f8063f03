"""What the connector knows of each pooled session, and the few asyncpg calls its public API lacks.

A point read costs one round trip (Bind + Execute + Sync) once its statement is in asyncpg's statement
cache: no BEGIN/COMMIT (a read-only connector's sessions start with `default_transaction_read_only =
on`, so the statement's implicit transaction is read-only; writes open `BEGIN READ WRITE` themselves),
no `SET LOCAL statement_timeout` (the driver's timeout cancels the statement on the server at the
deadline; a session-level `statement_timeout` rounded up to a power of two seconds is the backstop when
the worker itself dies, set again only when that bucket changes), and no reset query when the borrower
ran nothing that leaves session state and gave the session back idle with the settings the server
reports unchanged (`reset_session`).

Private asyncpg calls are confined to this module: `Connection._prepare(use_cache=True)` (what asyncpg's
own `fetch` uses, so the statement stays cached and is never Closed) and a prepared statement's
Execute with a row limit outside a transaction (what `PreparedStatement.fetchrow` does with 1; a cursor
would need a transaction). `tests/integration/test_postgresql_round_trips.py` counts the protocol
messages, so a change in asyncpg that broke this shows up as a failing test.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

import asyncpg

from scf.connectors.postgresql.catalog import Conn

if TYPE_CHECKING:
    from scf.connectors.postgresql.statements import Stmt

#: The session backstop is the time left rounded up to a power of two seconds, at least this.
MIN_BACKSTOP_SECONDS = 1

#: A read-only connector's sessions start read-only; the guard refuses every statement that changes it.
READ_ONLY_SETTINGS = {"default_transaction_read_only": "on"}

#: What a borrower may leave behind on a session, undone in one round trip before the next borrower:
#: asyncpg's own reset (advisory locks, cursors, LISTEN, settings) plus temporary tables (which would
#: shadow real tables on `search_path`) and cached sequence values. Prepared statements stay: they are
#: asyncpg's statement cache.
RESET_SESSION_SQL = (
    "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL; DISCARD TEMP; DISCARD SEQUENCES"
)


class SessionConnection(asyncpg.Connection):
    """asyncpg's connection plus two facts about its session the pool's reset and the reads need."""

    __slots__ = ("_scf_backstop_ms", "_scf_reported", "_scf_untouched")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: `statement_timeout` as this session last set it; `None`: the server's (or role's) own.
        self._scf_backstop_ms: int | None = None
        #: True while the current borrower ran only guarded read-only statements.
        self._scf_untouched = False
        #: The settings the server reports (ParameterStatus) as the session started.
        self._scf_reported = reported_settings(self)

    def scf_mark_untouched(self) -> None:
        self._scf_untouched = True

    def scf_take_untouched(self) -> bool:
        untouched, self._scf_untouched = self._scf_untouched, False
        return untouched

    def scf_reported(self) -> tuple[str | None, ...]:
        return self._scf_reported

    def scf_backstop_ms(self) -> int | None:
        return self._scf_backstop_ms

    def scf_set_backstop_ms(self, value: int | None) -> None:
        self._scf_backstop_ms = value


def _session(conn: Conn) -> SessionConnection:
    """The pooled proxy forwards unknown attributes to the connection it wraps (a `SessionConnection`)."""
    return cast(SessionConnection, conn)


def mark_untouched(conn: Conn) -> None:
    """The borrower ran only statements that leave no session state behind (a guarded read on a
    read-only connector, or the connector's own write SQL, committed): no reset is owed."""
    _session(conn).scf_mark_untouched()


def backstop_ms(timeout: float) -> int:
    """The time left rounded up to a power of two seconds: stable across requests with one deadline."""
    seconds = max(MIN_BACKSTOP_SECONDS, math.ceil(timeout))
    return 1000 * (1 << (seconds - 1).bit_length())


async def ensure_backstop(conn: Conn, timeout: float | None) -> None:
    """A session `statement_timeout` at least `timeout` and at most about twice it (one round trip, only
    when the bucket changes). The number is ours, an int."""
    if timeout is None:
        return
    wanted = backstop_ms(timeout)
    session = _session(conn)
    if session.scf_backstop_ms() == wanted:
        return
    session.scf_set_backstop_ms(None)  # unknown until the SET is acknowledged
    await conn.execute(f"SET statement_timeout = {int(wanted)}")
    session.scf_set_backstop_ms(wanted)


async def reset_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """The pool's reset: asyncpg has already rolled back any open transaction when this runs.

    Skipped (no round trip) when the borrower ran only statements that leave no session state (guarded
    reads on a read-only session, the connector's own insert/update/delete SQL), the session is idle
    and the settings the server reports are still as the connection started; otherwise one round trip
    undoes whatever the borrower may have left.
    """
    session = cast(SessionConnection, conn)
    if session.scf_take_untouched() and not conn.is_in_transaction() and _settings_intact(conn):
        return
    session.scf_set_backstop_ms(None)  # RESET ALL brings back the server's statement_timeout
    await conn.execute(RESET_SESSION_SQL)


#: Settings PostgreSQL reports to the client whenever they change (PostgreSQL 14+ for the read-only one):
#: comparing them costs no round trip. A guarded read cannot change any of them (`SET` and `set_config`
#: are refused); a database function that did (`SET ROLE`, read-only off) would be caught here.
_REPORTED = (
    "default_transaction_read_only",
    "standard_conforming_strings",
    "session_authorization",
    "is_superuser",
    "application_name",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
)


def reported_settings(conn: asyncpg.Connection[asyncpg.Record]) -> tuple[str | None, ...]:
    settings = conn.get_settings()
    return tuple(getattr(settings, name, None) for name in _REPORTED)


def _settings_intact(conn: asyncpg.Connection[asyncpg.Record]) -> bool:
    """Every reported setting as the session started (read-only still on for a read-only connector)."""
    return reported_settings(conn) == cast(SessionConnection, conn).scf_reported()


async def cached_statement(conn: Conn, query: str, timeout: float | None) -> Stmt:
    """A prepared statement from asyncpg's statement cache: no round trip when the text was seen on this
    session, else Parse + Describe once; never a Close (the cache keeps it)."""
    prepare = cast(Any, conn)._prepare
    return cast("Stmt", await prepare(query, timeout=timeout, use_cache=True))


async def fetch_limited(
    stmt: Stmt, args: list[Any], limit: int, timeout: float | None
) -> list[asyncpg.Record]:
    """Bind + Execute(max `limit` rows) + Sync in one round trip; the server stops after `limit` rows
    and, outside a transaction, drops the portal at Sync."""
    bind_execute = cast(Any, stmt)._PreparedStatement__bind_execute
    return cast("list[asyncpg.Record]", await bind_execute(args, limit, timeout))
