"""The PostgreSQL error table: asyncpg exception class -> category, code and user-safe message.

Rows run most specific first (subclasses before their bases). `refine` then adds the safe facts the
server reported in structured fields (constraint, table and column names, SQLSTATE, the text of syntax
errors), never a parameter value: DataError and constraint messages may quote values, so those are
dropped from the log detail as well.
"""

from __future__ import annotations

import re
import ssl

import asyncpg.exceptions as pg

from scf.connectors.base import C, ErrorRule, P, R, S, T
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode

POSTGRES_ERROR_RULES: tuple[ErrorRule, ...] = (
    # connecting and configuration
    ErrorRule(pg.ClientConfigurationError, C, ErrorCode.INVALID_CONFIG, "invalid connection settings"),
    ErrorRule(
        ConnectionError,
        C,
        ErrorCode.INVALID_CONFIG,
        "the server does not accept TLS connections (see ssl_enabled / custom_config.ssl_mode)",
        text=("rejected SSL upgrade",),
    ),
    ErrorRule(
        ssl.SSLCertVerificationError,
        C,
        ErrorCode.INVALID_CONFIG,
        "the server's TLS certificate was not accepted (check custom_config.ssl_root_cert and the host name)",
    ),
    ErrorRule(
        pg.InvalidCatalogNameError, C, ErrorCode.INVALID_CONFIG, "the configured database does not exist"
    ),
    ErrorRule(pg.InvalidPasswordError, S, ErrorCode.AUTHENTICATION_FAILED, "authentication failed"),
    ErrorRule(
        pg.InvalidAuthorizationSpecificationError,
        S,
        ErrorCode.AUTHENTICATION_FAILED,
        "authentication failed",
    ),
    ErrorRule(pg.InsufficientPrivilegeError, S, ErrorCode.PERMISSION_DENIED, "permission denied"),
    ErrorRule(
        pg.TooManyConnectionsError, R, ErrorCode.TOO_MANY_CONNECTIONS, "the database has no free connections"
    ),
    ErrorRule(
        pg.InsufficientResourcesError,
        R,
        ErrorCode.LIMIT_EXCEEDED,
        "the database is out of resources (disk or memory)",
    ),
    # the request itself cannot be sent or read: answering again will not help, and it says nothing
    # about the database's health (so it must never count toward the breaker)
    ErrorRule(
        pg.ProtocolViolationError,
        P,
        ErrorCode.INVALID_REQUEST,
        "the database could not read the request (a NUL character in the SQL text?)",
    ),
    ErrorRule(
        UnicodeEncodeError, P, ErrorCode.INVALID_REQUEST, "the request holds text that is not valid Unicode"
    ),
    ErrorRule(
        pg.InterfaceError,
        P,
        ErrorCode.INVALID_REQUEST,
        "query_params do not fit the statement's placeholders (count, or more than 32767)",
        text=("the server expects", "the number of query arguments cannot exceed"),
    ),
    # the connection went away or the server is restarting: try again
    ErrorRule(pg.PostgresConnectionError, T, ErrorCode.CONNECTION_FAILED, "the database connection was lost"),
    ErrorRule(
        pg.InterfaceError,
        T,
        ErrorCode.CONNECTION_FAILED,
        "the database connection was closed",
        text=("connection is closed", "pool is closing", "pool is closed"),
    ),
    # asyncpg's state machine after the server dropped a pooled connection under it
    ErrorRule(pg.InternalClientError, T, ErrorCode.CONNECTION_FAILED, "the database connection broke"),
    ErrorRule(pg.QueryCanceledError, T, ErrorCode.TIMEOUT, "the statement was cancelled (statement timeout)"),
    ErrorRule(
        pg.CannotConnectNowError,
        T,
        ErrorCode.CONNECTION_FAILED,
        "the database is starting up or shutting down",
    ),
    ErrorRule(pg.OperatorInterventionError, T, ErrorCode.CONNECTION_FAILED, "the database ended the session"),
    ErrorRule(
        pg.DeadlockDetectedError,
        T,
        ErrorCode.QUERY_FAILED,
        "deadlock detected; the transaction was rolled back",
    ),
    ErrorRule(
        pg.SerializationError,
        T,
        ErrorCode.QUERY_FAILED,
        "serialization failure; the transaction was rolled back",
    ),
    ErrorRule(
        pg.TransactionRollbackError,
        T,
        ErrorCode.QUERY_FAILED,
        "the transaction was rolled back by the database",
    ),
    ErrorRule(
        pg.InvalidCachedStatementError, T, ErrorCode.QUERY_FAILED, "a table changed during the operation"
    ),
    ErrorRule(pg.OutdatedSchemaCacheError, T, ErrorCode.QUERY_FAILED, "a table changed during the operation"),
    # the request itself is wrong: answering again will not help
    ErrorRule(
        pg.ReadOnlySQLTransactionError,
        P,
        ErrorCode.PERMISSION_DENIED,
        "the query operation is read-only; write with insert/update/delete "
        "(or enable custom_config.allow_writes_in_query)",
    ),
    ErrorRule(
        pg.IntegrityConstraintViolationError, P, ErrorCode.CONSTRAINT_VIOLATION, "a constraint was violated"
    ),
    ErrorRule(
        pg.CardinalityViolationError,
        P,
        ErrorCode.INVALID_DATA,
        "one statement would change the same row twice (duplicate conflict keys in one batch?)",
    ),
    ErrorRule(pg.DataError, P, ErrorCode.INVALID_DATA, "a value does not fit its column type"),
    ErrorRule(pg.PostgresSyntaxError, P, ErrorCode.QUERY_FAILED, "syntax error"),
    ErrorRule(pg.UndefinedTableError, P, ErrorCode.QUERY_FAILED, "unknown table"),
    ErrorRule(pg.UndefinedColumnError, P, ErrorCode.QUERY_FAILED, "unknown column"),
    ErrorRule(pg.SyntaxOrAccessError, P, ErrorCode.QUERY_FAILED, "the database refused the statement"),
    ErrorRule(pg.PostgresError, P, ErrorCode.QUERY_FAILED, "the database refused the statement"),
)

# Server messages of these classes name objects and types but never quote bound values.
_SERVER_TEXT_IS_SAFE: tuple[type[BaseException], ...] = (
    pg.SyntaxOrAccessError,
    pg.FeatureNotSupportedError,
    pg.InvalidSchemaNameError,
    pg.CardinalityViolationError,
    pg.InvalidTransactionStateError,
)
# Messages (and details) of these may quote the offending value.
_VALUES_IN_TEXT: tuple[type[BaseException], ...] = (pg.DataError, pg.IntegrityConstraintViolationError)
_ARGUMENT = re.compile(r"invalid input for query argument (\$[0-9]+)")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def refine(error: ConnectorError, exc: BaseException) -> ConnectorError:
    """Add the server's safe, structured facts to a classified PostgreSQL error."""
    if error.category is ErrorCategory.SECURITY or not isinstance(exc, pg.PostgresError):
        return error
    facts = _facts(exc)
    if isinstance(exc, _SERVER_TEXT_IS_SAFE) and not isinstance(exc, _VALUES_IN_TEXT):
        message = f"{error.message}: {exc.message}"
    else:
        message = error.message + (f" ({', '.join(facts)})" if facts else "")
    detail = error.detail
    if isinstance(exc, _VALUES_IN_TEXT):
        detail = f"{type(exc).__module__}.{type(exc).__qualname__}: " + ", ".join(facts)
    return type(error)(message, code=error.code, retry_after=error.retry_after, detail=detail)


def _facts(exc: pg.PostgresError) -> list[str]:
    facts = []
    if isinstance(exc, _VALUES_IN_TEXT) and type(exc) not in _VALUES_IN_TEXT:
        # the class says which kind (unique violation, invalid datetime format) without the value
        facts.append(_CAMEL.sub(" ", type(exc).__name__.removesuffix("Error")).lower())
    argument = _ARGUMENT.match(str(exc.args[0]) if exc.args else "")
    if argument:  # asyncpg could not encode a parameter: name its position, not its value
        facts.append(f"query argument {argument.group(1)}")
    for label, attribute in (
        ("constraint", "constraint_name"),
        ("table", "table_name"),
        ("column", "column_name"),
    ):
        value = getattr(exc, attribute, None)
        if value:
            facts.append(f"{label} {value!r}")
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate:
        facts.append(f"SQLSTATE {sqlstate}")
    return facts
