"""The Redis error table: what redis-py (8.x) raises -> category, code and a user-safe message.

Order matters: redis-py makes `AuthenticationError` a `ConnectionError`, says "max number of clients
reached" and "No connection available." (its own pool, full) with a plain `ConnectionError`, and gives
WRONGTYPE, bad numbers and most refusals as plain `ResponseError`s told apart only by their text.
`refine` adds the server's own words to permanent and configuration errors, never to security ones.
"""

from __future__ import annotations

from redis import exceptions as rx

from scf.connectors.base import C, ErrorRule, P, R, S, T
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode

_SERVER_TEXT_LIMIT = 200


REDIS_ERROR_RULES: tuple[ErrorRule, ...] = (
    # who you are and what you may do (before ConnectionError / ResponseError, which they subclass)
    ErrorRule(
        rx.AuthenticationWrongNumberOfArgsError, S, ErrorCode.AUTHENTICATION_FAILED, "authentication failed"
    ),
    ErrorRule(rx.AuthenticationError, S, ErrorCode.AUTHENTICATION_FAILED, "authentication failed"),
    ErrorRule(rx.AuthorizationError, S, ErrorCode.PERMISSION_DENIED, "permission denied"),
    ErrorRule(rx.NoPermissionError, S, ErrorCode.PERMISSION_DENIED, "permission denied"),
    # the server or the pool is full
    ErrorRule(
        rx.ConnectionError,
        R,
        ErrorCode.TOO_MANY_CONNECTIONS,
        "Redis has reached its maxclients",
        text=("max number of clients reached",),
    ),
    ErrorRule(
        rx.ConnectionError,
        R,
        ErrorCode.TOO_MANY_CONNECTIONS,
        "every connection of the connector's pool is busy (max_connections)",
        text=("No connection available",),
    ),
    ErrorRule(rx.OutOfMemoryError, R, ErrorCode.LIMIT_EXCEEDED, "Redis is out of memory (maxmemory)"),
    # settings that cannot work
    ErrorRule(
        rx.ConnectionError,
        C,
        ErrorCode.INVALID_CONFIG,
        "the TLS handshake with Redis failed",
        text=("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "WRONG_VERSION_NUMBER"),
    ),
    ErrorRule(
        (rx.ResponseError, rx.ConnectionError),
        C,
        ErrorCode.INVALID_CONFIG,
        "the Redis database index does not exist",
        text=("DB index is out of range", "Invalid Database"),
    ),
    # the server is there but cannot serve now
    ErrorRule(rx.BusyLoadingError, T, ErrorCode.CONNECTION_FAILED, "Redis is loading its data set"),
    ErrorRule(rx.ReadOnlyError, T, ErrorCode.CONNECTION_FAILED, "Redis is a read-only replica (failover?)"),
    ErrorRule(
        rx.ResponseError,
        T,
        ErrorCode.CONNECTION_FAILED,
        "Redis is busy; try again",
        text=("BUSY ", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"),
    ),
    ErrorRule(rx.TimeoutError, T, ErrorCode.TIMEOUT, "Redis did not answer in time"),
    ErrorRule(rx.ConnectionError, T, ErrorCode.CONNECTION_FAILED, "cannot reach Redis"),
    ErrorRule(rx.InvalidResponse, T, ErrorCode.CONNECTION_FAILED, "Redis sent an unreadable answer"),
    # the request does not fit the data
    ErrorRule(
        rx.ResponseError,
        P,
        ErrorCode.INVALID_DATA,
        "the key holds another type of value",
        text=("WRONGTYPE",),
    ),
    ErrorRule(
        rx.ResponseError,
        P,
        ErrorCode.INVALID_DATA,
        "the stored value is not a number that fits",
        text=("not an integer", "not a valid float", "would overflow", "resulting score is not a number"),
    ),
    ErrorRule(rx.ResponseError, P, ErrorCode.QUERY_FAILED, "Redis refused the command"),
    ErrorRule(rx.DataError, P, ErrorCode.INVALID_DATA, "the command's arguments do not fit Redis"),
    ErrorRule(rx.RedisError, P, ErrorCode.QUERY_FAILED, "the Redis command failed"),
)


def refine(error: ConnectorError, exc: BaseException) -> ConnectorError:
    """Add the server's own words (short, never for security errors or network trouble)."""
    if error.category not in (ErrorCategory.PERMANENT, ErrorCategory.CONFIGURATION):
        return error
    if not isinstance(exc, rx.ResponseError | rx.DataError):
        return error
    text = str(exc).strip()[:_SERVER_TEXT_LIMIT]
    if not text:
        return error
    return type(error)(f"{error.message}: {text}", code=error.code, detail=error.detail)
