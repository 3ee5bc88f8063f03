"""The fleet's error taxonomy: categories that decide what happens next, stable codes, typed exceptions.

Every failure a caller can see is one `ConnectorError` subclass carrying a category (docs/architecture.md), a
stable machine-readable code and a user-safe message. The internal detail stays in logs only.

    ConnectorError
    ├── TransientError       retried with backoff inside the deadline
    ├── ResourceError        retried with longer backoff, honours retry_after
    ├── PermanentError       answered at once, never retried
    ├── ConfigurationError   answered at once; the connector is misconfigured
    └── SecurityError        answered with a generic message, never retried
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class ErrorCategory(StrEnum):
    TRANSIENT = "transient"
    RESOURCE = "resource"
    PERMANENT = "permanent"
    CONFIGURATION = "configuration"
    SECURITY = "security"


class ErrorCode(StrEnum):
    # request shape
    INVALID_JSON = "INVALID_JSON"
    INVALID_REQUEST = "INVALID_REQUEST"
    UNKNOWN_MESSAGE_TYPE = "UNKNOWN_MESSAGE_TYPE"
    UNKNOWN_OPERATION = "UNKNOWN_OPERATION"
    INVALID_DATA = "INVALID_DATA"
    INVALID_IDENTIFIER = "INVALID_IDENTIFIER"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    # registry
    CONNECTOR_NOT_FOUND = "CONNECTOR_NOT_FOUND"
    CONNECTOR_EXISTS = "CONNECTOR_EXISTS"
    CONNECTOR_PAUSED = "CONNECTOR_PAUSED"
    INVALID_CONFIG = "INVALID_CONFIG"
    SECRETS_UNREADABLE = "SECRETS_UNREADABLE"
    RESULT_NOT_FOUND = "RESULT_NOT_FOUND"
    # running
    NO_WORKER = "NO_WORKER"
    QUEUE_FULL = "QUEUE_FULL"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    TIMEOUT = "TIMEOUT"
    CONNECTION_FAILED = "CONNECTION_FAILED"
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
    STATE_UNAVAILABLE = "STATE_UNAVAILABLE"
    # service answers
    AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    CONSTRAINT_VIOLATION = "CONSTRAINT_VIOLATION"
    QUERY_FAILED = "QUERY_FAILED"
    NOT_FOUND = "NOT_FOUND"
    DEAD_LETTERED = "DEAD_LETTERED"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    IN_PROGRESS = "IN_PROGRESS"
    CIRCUIT_OPEN = "CIRCUIT_OPEN"
    CANCELLED = "CANCELLED"
    INTERNAL = "INTERNAL"
    OPERATION_ID_IN_USE = "OPERATION_ID_IN_USE"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    GATEWAY_BUSY = "GATEWAY_BUSY"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    CONCURRENCY_LIMITED = "CONCURRENCY_LIMITED"
    EGRESS_DENIED = "EGRESS_DENIED"


#: Retryable is a category's property: transient and resource trouble may pass, the rest will not.
RETRYABLE_CATEGORIES = frozenset({ErrorCategory.TRANSIENT, ErrorCategory.RESOURCE})


@dataclass(frozen=True, slots=True)
class CodePolicy:
    """What one error code means for what happens next, beyond its category's retryability.

    `retry_in_process`: a retryable error of this code is retried inside the deadline (tenacity).
    `counts_for_breaker`: a retryable error of this code says the service is unwell (circuit breaker).
    `fail_fast`: answered at once rather than retried later through a delayed-retry queue when a caller
    waits (retrying later cannot help, or the caller asked for speed).
    `dead_letter`: may end as a dead letter; False when the caller chose this ending, or a dead letter
    would record the failure under someone else's operation id.
    """

    retry_in_process: bool = True
    counts_for_breaker: bool = True
    fail_fast: bool = False
    dead_letter: bool = True


_USUAL = CodePolicy()

#: The one policy table, a row for every `ErrorCode` written out (a new code needs its own decision;
#: tests/unit/test_error_policy.py checks each has one). Retryability (by category, above), in-process
#: retries, breaker counting and dispositions are read from here (`policy_of`), nowhere else.
POLICY: dict[str, CodePolicy] = {
    ErrorCode.INVALID_JSON: _USUAL,
    ErrorCode.INVALID_REQUEST: _USUAL,
    ErrorCode.UNKNOWN_MESSAGE_TYPE: _USUAL,
    ErrorCode.UNKNOWN_OPERATION: _USUAL,
    ErrorCode.INVALID_DATA: _USUAL,
    ErrorCode.INVALID_IDENTIFIER: _USUAL,
    ErrorCode.LIMIT_EXCEEDED: _USUAL,
    ErrorCode.CONNECTOR_NOT_FOUND: _USUAL,
    ErrorCode.CONNECTOR_EXISTS: _USUAL,
    ErrorCode.CONNECTOR_PAUSED: _USUAL,
    ErrorCode.INVALID_CONFIG: _USUAL,
    ErrorCode.SECRETS_UNREADABLE: _USUAL,
    ErrorCode.RESULT_NOT_FOUND: _USUAL,
    ErrorCode.NO_WORKER: _USUAL,
    ErrorCode.QUEUE_FULL: _USUAL,
    ErrorCode.TIMEOUT: _USUAL,
    ErrorCode.CONNECTION_FAILED: _USUAL,
    ErrorCode.TOO_MANY_CONNECTIONS: _USUAL,
    ErrorCode.STATE_UNAVAILABLE: _USUAL,
    ErrorCode.AUTHENTICATION_FAILED: _USUAL,
    ErrorCode.PERMISSION_DENIED: _USUAL,
    ErrorCode.CONSTRAINT_VIOLATION: _USUAL,
    ErrorCode.QUERY_FAILED: _USUAL,
    ErrorCode.NOT_FOUND: _USUAL,
    ErrorCode.DEAD_LETTERED: _USUAL,
    ErrorCode.IDEMPOTENCY_CONFLICT: _USUAL,
    ErrorCode.INTERNAL: _USUAL,
    ErrorCode.REQUEST_TOO_LARGE: _USUAL,
    ErrorCode.GATEWAY_BUSY: _USUAL,
    ErrorCode.EGRESS_DENIED: _USUAL,
    # the caller's own standing, never the connector's health: not counted, answered at once, not kept
    ErrorCode.UNAUTHENTICATED: CodePolicy(
        retry_in_process=False, counts_for_breaker=False, fail_fast=True, dead_letter=False
    ),
    ErrorCode.FORBIDDEN: CodePolicy(
        retry_in_process=False, counts_for_breaker=False, fail_fast=True, dead_letter=False
    ),
    # the caller's quota: answered at once with its honest retry_after, never retried for it, not kept
    ErrorCode.RATE_LIMITED: CodePolicy(
        retry_in_process=False, counts_for_breaker=False, fail_fast=True, dead_letter=False
    ),
    # the connector is at its concurrency limit: the service behind it is busy, not broken
    ErrorCode.CONCURRENCY_LIMITED: CodePolicy(counts_for_breaker=False),
    # the breaker already said it: answered at once, neither retried nor counted again
    ErrorCode.CIRCUIT_OPEN: CodePolicy(retry_in_process=False, counts_for_breaker=False, fail_fast=True),
    ErrorCode.DEADLINE_EXCEEDED: CodePolicy(counts_for_breaker=False, fail_fast=True),  # slow, not broken
    ErrorCode.IN_PROGRESS: CodePolicy(fail_fast=True),  # the first delivery is still at it
    ErrorCode.CANCELLED: CodePolicy(counts_for_breaker=False, dead_letter=False),  # the caller's choice
    ErrorCode.OPERATION_ID_IN_USE: CodePolicy(dead_letter=False),  # its owner's id, not ours to record
}


def policy_of(code: str) -> CodePolicy:
    """The row of `code` (a code from outside the taxonomy gets the usual row): one dict lookup."""
    return POLICY.get(code, _USUAL)


_SECURITY_MESSAGE = "access denied"


class ErrorInfo(BaseModel):
    """The `error` object of every failed reply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: ErrorCategory
    code: str
    message: str
    retryable: bool = False
    retry_after: float | None = Field(default=None, ge=0)


class ConnectorError(Exception):
    """Base of every typed error. `message` is safe to show the caller; `detail` is for logs only."""

    category: ClassVar[ErrorCategory] = ErrorCategory.PERMANENT
    default_code: ClassVar[ErrorCode] = ErrorCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | str | None = None,
        retry_after: float | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = str(code or self.default_code)
        self.retry_after = retry_after
        self.detail = detail
        #: the endpoint an error reaching or logging in to a service names (host:port, user, database)
        self.where: str | None = None

    @property
    def retryable(self) -> bool:
        return self.category in RETRYABLE_CATEGORIES

    def to_info(self) -> ErrorInfo:
        message = self.message
        if self.category is ErrorCategory.SECURITY:  # the service's own words may say too much
            message = f"{_SECURITY_MESSAGE} ({self.where})" if self.where else _SECURITY_MESSAGE
        return ErrorInfo(
            category=self.category,
            code=self.code,
            message=message,
            retryable=self.retryable,
            retry_after=self.retry_after,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class TransientError(ConnectorError):
    category = ErrorCategory.TRANSIENT
    default_code = ErrorCode.CONNECTION_FAILED


class ResourceError(ConnectorError):
    category = ErrorCategory.RESOURCE
    default_code = ErrorCode.TOO_MANY_CONNECTIONS


class PermanentError(ConnectorError):
    category = ErrorCategory.PERMANENT
    default_code = ErrorCode.INVALID_DATA


class ConfigurationError(ConnectorError):
    category = ErrorCategory.CONFIGURATION
    default_code = ErrorCode.INVALID_CONFIG


class SecurityError(ConnectorError):
    category = ErrorCategory.SECURITY
    default_code = ErrorCode.PERMISSION_DENIED


_BY_CATEGORY: dict[ErrorCategory, type[ConnectorError]] = {
    ErrorCategory.TRANSIENT: TransientError,
    ErrorCategory.RESOURCE: ResourceError,
    ErrorCategory.PERMANENT: PermanentError,
    ErrorCategory.CONFIGURATION: ConfigurationError,
    ErrorCategory.SECURITY: SecurityError,
}


def error_class(category: ErrorCategory) -> type[ConnectorError]:
    return _BY_CATEGORY[category]


def error_from_info(info: ErrorInfo) -> ConnectorError:
    """Rebuild the typed exception from a reply's error object (used by clients that prefer raising)."""
    return error_class(info.category)(info.message, code=info.code, retry_after=info.retry_after)
