"""The Redis error table: what redis-py (8.x) raises -> category, code and a user-safe message.

Order matters: redis-py makes `AuthenticationError` a `ConnectionError`, says "max number of clients
reached" and "No connection available." (its own pool, full) with a plain `ConnectionError`, and gives
WRONGTYPE, bad numbers and most refusals as plain `ResponseError`s told apart only by their text.
`refine` adds the server's own words to permanent and configuration errors, never to security ones.
"""

from __future__ import annotations

from typing import ClassVar

from redis import exceptions as rx

from scf.connectors.base import ErrorRule
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode

_SERVER_TEXT_LIMIT = 200


class _ByText(type):
    """`isinstance` is true for instances of `kinds` whose text holds one of `fragments`."""

    kinds: tuple[type[BaseException], ...]
    fragments: tuple[str, ...]

    def __instancecheck__(cls, instance: object) -> bool:
        if not isinstance(instance, cls.kinds):
            return False
        text = str(instance)
        return any(fragment in text for fragment in cls.fragments)


class _Matching(Exception, metaclass=_ByText):
    kinds: ClassVar[tuple[type[BaseException], ...]] = ()
    fragments: ClassVar[tuple[str, ...]] = ()


class TooManyClientsError(_Matching):
    kinds = (rx.ConnectionError,)
    fragments = ("max number of clients reached",)


class PoolExhaustedError(_Matching):
    kinds = (rx.ConnectionError,)
    fragments = ("No connection available",)


class TlsRefusedError(_Matching):
    kinds = (rx.ConnectionError,)
    fragments = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "WRONG_VERSION_NUMBER")


class NoSuchDatabaseError(_Matching):
    kinds = (rx.ResponseError, rx.ConnectionError)
    fragments = ("DB index is out of range", "Invalid Database")


class WrongTypeError(_Matching):
    kinds = (rx.ResponseError,)
    fragments = ("WRONGTYPE",)


class NotANumberError(_Matching):
    kinds = (rx.ResponseError,)
    fragments = ("not an integer", "not a valid float", "would overflow", "resulting score is not a number")


class BusyServerError(_Matching):
    kinds = (rx.ResponseError,)
    fragments = ("BUSY ", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")


_T, _R, _P, _C, _S = (
    ErrorCategory.TRANSIENT,
    ErrorCategory.RESOURCE,
    ErrorCategory.PERMANENT,
    ErrorCategory.CONFIGURATION,
    ErrorCategory.SECURITY,
)

REDIS_ERROR_RULES: tuple[ErrorRule, ...] = (
    # who you are and what you may do (before ConnectionError / ResponseError, which they subclass)
    ErrorRule(
        rx.AuthenticationWrongNumberOfArgsError, _S, ErrorCode.AUTHENTICATION_FAILED, "authentication failed"
    ),
    ErrorRule(rx.AuthenticationError, _S, ErrorCode.AUTHENTICATION_FAILED, "authentication failed"),
    ErrorRule(rx.AuthorizationError, _S, ErrorCode.PERMISSION_DENIED, "permission denied"),
    ErrorRule(rx.NoPermissionError, _S, ErrorCode.PERMISSION_DENIED, "permission denied"),
    # the server or the pool is full
    ErrorRule(TooManyClientsError, _R, ErrorCode.TOO_MANY_CONNECTIONS, "Redis has reached its maxclients"),
    ErrorRule(
        PoolExhaustedError,
        _R,
        ErrorCode.TOO_MANY_CONNECTIONS,
        "every connection of the connector's pool is busy (max_connections)",
    ),
    ErrorRule(rx.OutOfMemoryError, _R, ErrorCode.LIMIT_EXCEEDED, "Redis is out of memory (maxmemory)"),
    # settings that cannot work
    ErrorRule(TlsRefusedError, _C, ErrorCode.INVALID_CONFIG, "the TLS handshake with Redis failed"),
    ErrorRule(NoSuchDatabaseError, _C, ErrorCode.INVALID_CONFIG, "the Redis database index does not exist"),
    # the server is there but cannot serve now
    ErrorRule(rx.BusyLoadingError, _T, ErrorCode.CONNECTION_FAILED, "Redis is loading its data set"),
    ErrorRule(rx.ReadOnlyError, _T, ErrorCode.CONNECTION_FAILED, "Redis is a read-only replica (failover?)"),
    ErrorRule(BusyServerError, _T, ErrorCode.CONNECTION_FAILED, "Redis is busy; try again"),
    ErrorRule(rx.TimeoutError, _T, ErrorCode.TIMEOUT, "Redis did not answer in time"),
    ErrorRule(rx.ConnectionError, _T, ErrorCode.CONNECTION_FAILED, "cannot reach Redis"),
    ErrorRule(rx.InvalidResponse, _T, ErrorCode.CONNECTION_FAILED, "Redis sent an unreadable answer"),
    # the request does not fit the data
    ErrorRule(WrongTypeError, _P, ErrorCode.INVALID_DATA, "the key holds another type of value"),
    ErrorRule(NotANumberError, _P, ErrorCode.INVALID_DATA, "the stored value is not a number that fits"),
    ErrorRule(rx.ResponseError, _P, ErrorCode.QUERY_FAILED, "Redis refused the command"),
    ErrorRule(rx.DataError, _P, ErrorCode.INVALID_DATA, "the command's arguments do not fit Redis"),
    ErrorRule(rx.RedisError, _P, ErrorCode.QUERY_FAILED, "the Redis command failed"),
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
