"""What a `query` statement may do, decided on its parse tree (libpg_query via `pglast`) before I/O.

A read-only transaction stops writes to tables, not functions with other effects: large objects and
server files (`lo_import`, `pg_read_file`), other sessions (`pg_terminate_backend`), locks and settings
that outlive the request (`pg_advisory_lock`, `set_config`) or SQL run from text (`query_to_xml`). Those
are refused by name wherever they appear (any schema, quoted or not, in any clause), as are statements
that control the session or the server. This is a deny-list over a real parse, not over the text; the
connector's database role stays the real boundary (docs/postgresql.md).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterator

from pglast import parser

from scf.schemas.errors import ErrorCode, PermanentError

#: Statements longer than this are parsed in a thread (libpg_query releases the GIL) so that a large
#: statement never holds the event loop.
THREAD_THRESHOLD = 16_384

#: Functions with effects outside the statement's own rows, or that read the server's files.
_DENIED_NAMES = frozenset(
    {
        "loread",
        "lowrite",
        "set_config",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_switch_wal",
        "pg_promote",
        "pg_start_backup",
        "pg_stop_backup",
        "pg_current_logfile",
        "pg_stat_file",
        "pg_import_system_collations",
        "pg_nextoid",
        "ts_stat",  # runs the SQL text it is given
        "ts_rewrite",  # idem (its two-argument form)
        "connectby",
        # server configuration files
        "pg_hba_file_rules",
        "pg_ident_file_mappings",
        "pg_show_all_file_settings",
    }
)
_DENIED_PREFIXES = (
    "lo_",
    "pg_read_",
    "pg_ls_",
    "pg_file_",
    "pg_advisory_",
    "pg_try_advisory_",
    "pg_logical_",
    "pg_replication_",
    "pg_create_",
    "pg_drop_",
    "pg_copy_",
    "pg_backup_",
    "pg_wal_replay_",
    "pg_stat_reset",
    "pg_stat_statements_reset",
    "pg_log_",
    "pg_signal_",
    "binary_upgrade_",
    "dblink",
    "crosstab",
    # run the SQL text (or the table) they are given
    "query_to_xml",
    "cursor_to_xml",
    "table_to_xml",
    "schema_to_xml",
    "database_to_xml",
)
#: Writes to sequences, transaction ids and notifications: allowed only with `allow_writes_in_query`.
_WRITE_FUNCTIONS = frozenset(
    {"nextval", "setval", "txid_current", "pg_current_xact_id", "pg_notify"},
)
#: Statements that control the session, the transaction or the server, or run code: never in `query`.
_DENIED_STATEMENTS = frozenset(
    {
        "CopyStmt",
        "DoStmt",
        "LoadStmt",
        "CallStmt",
        "AlterSystemStmt",
        "VariableSetStmt",
        "TransactionStmt",
        "ListenStmt",
        "UnlistenStmt",
        "DeclareCursorStmt",
        "ClosePortalStmt",
        "FetchStmt",
        "PrepareStmt",
        "ExecuteStmt",
        "DeallocateStmt",
        "DiscardStmt",
        "CheckPointStmt",
        "VacuumStmt",
        "ReindexStmt",
        "ClusterStmt",
        "CreatedbStmt",
        "DropdbStmt",
        "CreateRoleStmt",
        "AlterRoleStmt",
        "AlterRoleSetStmt",
        "DropRoleStmt",
        "GrantRoleStmt",
        "AlterDatabaseSetStmt",
        "CreateExtensionStmt",
        "AlterExtensionStmt",
        # A function or procedure body is text the guard cannot read (any language): defining one, or
        # changing how one runs (SECURITY DEFINER, SET), would let a later call do what is refused here.
        "CreateFunctionStmt",
        "AlterFunctionStmt",
        "CreateEventTrigStmt",
        # The server connecting out (subscriptions, foreign servers) or placing files (tablespaces).
        "CreateSubscriptionStmt",
        "AlterSubscriptionStmt",
        "CreateTableSpaceStmt",
        "CreateForeignServerStmt",
        "AlterForeignServerStmt",
        "CreateUserMappingStmt",
        "AlterUserMappingStmt",
        "ImportForeignSchemaStmt",
    }
)
#: The only statements a read-only `query` runs: they return rows and change nothing themselves.
_READ_STATEMENTS = frozenset({"SelectStmt", "ExplainStmt", "VariableShowStmt"})

_CANDIDATE = re.compile(
    r'\{"String":\{"sval":"((?i:'
    + "|".join(re.escape(n) for n in sorted({*_DENIED_NAMES, *_WRITE_FUNCTIONS, *_DENIED_PREFIXES}))
    + r')(?:[^"\\]|\\.)*)"'
)

READ_ONLY_MESSAGE = (
    "the query operation is read-only: it runs statements that return rows (SELECT, VALUES, ...); "
    "write with insert/update/delete (or enable custom_config.allow_writes_in_query)"
)


#: Accepted statements up to this length are remembered (most callers repeat a few texts with new
#: parameters), so the parse is paid once per text, not per request; refusals are not cached.
CACHED_LENGTH = 4_096


async def check_query(sql: str, *, writable: bool) -> None:
    """`check_statement`, off the event loop for a large statement. Raises `PermanentError`."""
    if len(sql) <= CACHED_LENGTH:
        _accepted(sql, writable)
    elif len(sql) > THREAD_THRESHOLD:
        await asyncio.to_thread(check_statement, sql, writable=writable)
    else:
        check_statement(sql, writable=writable)


@functools.lru_cache(maxsize=1_024)
def _accepted(sql: str, writable: bool) -> None:
    check_statement(sql, writable=writable)


def check_statement(sql: str, *, writable: bool) -> None:
    """Refuse text the server cannot take, more than one statement, and effects `query` must not have.

    Raises `PermanentError`: INVALID_REQUEST (NUL, text that is not Unicode), QUERY_FAILED (syntax,
    several statements) or PERMISSION_DENIED (a refused function or statement).
    """
    if "\x00" in sql:  # the protocol ends strings at NUL: the server would see another statement
        raise PermanentError("the query text contains a NUL character", code=ErrorCode.INVALID_REQUEST)
    try:
        tree = parser.parse_sql_json(sql)
    except UnicodeEncodeError:
        raise PermanentError(
            "the query text is not valid Unicode (a lone surrogate?)", code=ErrorCode.INVALID_REQUEST
        ) from None
    except parser.ParseError as exc:
        raise PermanentError(
            f"syntax error: {str(exc)[:200]}", code=ErrorCode.QUERY_FAILED, detail="pglast ParseError"
        ) from None
    kinds = _top_level_kinds(tree)
    if len(kinds) != 1:
        raise PermanentError("give exactly one SQL statement", code=ErrorCode.QUERY_FAILED)
    for kind in _statement_kinds(tree):
        if kind in _DENIED_STATEMENTS:
            raise PermanentError(
                f"{kind.removesuffix('Stmt')} is not allowed in the query operation",
                code=ErrorCode.PERMISSION_DENIED,
            )
    if not writable and kinds[0] not in _READ_STATEMENTS:
        raise PermanentError(READ_ONLY_MESSAGE, code=ErrorCode.PERMISSION_DENIED)
    for name in _called_names(tree):
        if denied_function(name, writable=writable):
            raise PermanentError(
                f"function {name!r} is not allowed in the query operation (it has effects beyond "
                "reading rows, or reads server files)",
                code=ErrorCode.PERMISSION_DENIED,
            )


def denied_function(name: str, *, writable: bool) -> bool:
    """Is a function of this name (schema left off, any case) refused in `query`?"""
    lowered = name.lower()
    if lowered in _WRITE_FUNCTIONS:
        return not writable
    return lowered in _DENIED_NAMES or lowered.startswith(_DENIED_PREFIXES)


def _top_level_kinds(tree: str) -> list[str]:
    """The node type of each statement (only the top-level `RawStmt` has a field named `stmt`)."""
    kinds: list[str] = []
    marker = '{"stmt":{"'
    position = tree.find(marker)
    while position != -1:
        start = position + len(marker)
        end = tree.find('"', start)
        kinds.append(tree[start:end])
        position = tree.find(marker, end)
    return kinds


def _called_names(tree: str) -> Iterator[str]:
    """Every name node (function, column, type, schema) that starts like a refused function.

    One regex pass over the compact JSON that libpg_query writes. A name node is `{"String":{"sval":`;
    a string constant is written `{"sval":{"sval":`, and a quote inside user text is escaped as `\\"`,
    so user text can neither fake nor hide a name node. Checking every name node, not only the called
    one, also catches attribute notation (`t.lo_get` is `lo_get(t)`) at the price of refusing a column
    or type that happens to be named like a refused function.
    """
    for match in _CANDIDATE.finditer(tree):
        yield match.group(1)


def _statement_kinds(tree: str) -> Iterator[str]:
    """Every statement node's type, nested ones included (one pass for the marker such keys end with)."""
    marker = 'Stmt":{'
    position = tree.find(marker)
    while position != -1:
        start = tree.rfind('"', 0, position) + 1
        yield tree[start : position + len("Stmt")]
        position = tree.find(marker, position + len(marker))
