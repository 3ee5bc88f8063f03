"""The Qdrant error table: what qdrant-client raises (REST, gRPC, local mode) -> category and code.

Remote errors are told apart by HTTP status or gRPC code; local mode raises plain `ValueError` and
`RuntimeError`, told apart by message (as qdrant-client 1.20 words them). Rows run most specific first.
`refine` adds Retry-After and the server's own words for refused requests, never for security errors.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import grpc
import httpx
from pydantic import ValidationError
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from scf.connectors.base import ErrorRule
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode

_SERVER_TEXT_LIMIT = 300


def status_of(exc: BaseException) -> int | None:
    return exc.status_code if isinstance(exc, UnexpectedResponse) else None


def grpc_code(exc: BaseException) -> str | None:
    """The gRPC status name (`UNAVAILABLE`, ...) of a gRPC error, else None."""
    if not isinstance(exc, grpc.RpcError) or not callable(getattr(exc, "code", None)):
        return None
    name = getattr(exc.code(), "name", None)
    return name if isinstance(name, str) else None


def server_text(exc: BaseException) -> str | None:
    """The `status.error` text of a Qdrant REST error body, shortened."""
    if not isinstance(exc, UnexpectedResponse):
        return None
    try:
        text = json.loads(exc.content)["status"]["error"]
    except (ValueError, TypeError, KeyError):
        return None
    return str(text)[:_SERVER_TEXT_LIMIT] if text else None


class _Predicate(type):
    """`isinstance` by a predicate: one type (UnexpectedResponse, ValueError) covers many cases here."""

    def __instancecheck__(cls, instance: Any) -> bool:
        return bool(cls.test(instance))  # type: ignore[attr-defined]


class _Matching(Exception, metaclass=_Predicate):
    """Matches `kinds` whose message holds a fragment, or with one of `statuses` / `grpc_codes`."""

    kinds: ClassVar[tuple[type[BaseException], ...]] = ()
    fragments: ClassVar[tuple[str, ...]] = ()
    statuses: ClassVar[frozenset[int]] = frozenset()
    grpc_codes: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def test(cls, exc: Any) -> bool:
        if not isinstance(exc, BaseException):
            return False
        if isinstance(exc, cls.kinds) and any(f in str(exc) for f in cls.fragments):
            return True
        status = status_of(exc)
        return (status is not None and status in cls.statuses) or grpc_code(exc) in cls.grpc_codes


class LocalStorageLockedError(_Matching):
    """Local mode: another process (or client) holds the storage folder's lock."""

    kinds = (RuntimeError,)
    fragments = ("is already accessed by another instance",)


class LocalClientClosedError(_Matching):
    kinds = (RuntimeError,)
    fragments = ("instance is closed",)


class MissingCollectionError(_Matching):
    kinds = (ValueError,)
    fragments = ("not found",)  # local mode: "Collection x not found"
    statuses = frozenset({404})
    grpc_codes = frozenset({"NOT_FOUND"})

    @classmethod
    def test(cls, exc: Any) -> bool:
        if isinstance(exc, ValueError) and not str(exc).startswith("Collection "):
            return False
        return super().test(exc)


class CollectionExistsError(_Matching):
    kinds = (ValueError,)
    fragments = ("already exists",)
    statuses = frozenset({409})
    grpc_codes = frozenset({"ALREADY_EXISTS"})


class DimensionMismatchError(_Matching):
    """Local mode words it as below or fails inside numpy (`not aligned`); the server answers 400."""

    kinds = (ValueError,)
    fragments = ("Vector dimension error", "not aligned")

    @classmethod
    def test(cls, exc: Any) -> bool:
        text = server_text(exc) if isinstance(exc, BaseException) else None
        return super().test(exc) or (text is not None and "dimension error" in text)


class AuthenticationFailedError(_Matching):
    statuses = frozenset({401})
    grpc_codes = frozenset({"UNAUTHENTICATED"})


class PermissionDeniedError(_Matching):
    statuses = frozenset({403})
    grpc_codes = frozenset({"PERMISSION_DENIED"})


class RateLimitedError(_Matching):
    statuses = frozenset({429})
    grpc_codes = frozenset({"RESOURCE_EXHAUSTED"})


class TooLargeError(_Matching):
    statuses = frozenset({413})


class ServerUnavailableError(_Matching):
    statuses = frozenset(range(500, 600))
    grpc_codes = frozenset({"UNAVAILABLE", "ABORTED", "INTERNAL", "UNKNOWN", "CANCELLED"})


class GrpcTimeoutError(_Matching):
    grpc_codes = frozenset({"DEADLINE_EXCEEDED"})


class RequestRefusedError(_Matching):
    statuses = frozenset(range(400, 500))
    grpc_codes = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "UNIMPLEMENTED"})


class TimedOutResponseError(Exception, metaclass=_Predicate):
    """qdrant-client wraps every transport failure in ResponseHandlingException; a timeout is one kind."""

    @staticmethod
    def test(exc: Any) -> bool:
        return isinstance(exc, ResponseHandlingException) and isinstance(exc.source, httpx.TimeoutException)


_T, _R, _P, _C, _S = (
    ErrorCategory.TRANSIENT,
    ErrorCategory.RESOURCE,
    ErrorCategory.PERMANENT,
    ErrorCategory.CONFIGURATION,
    ErrorCategory.SECURITY,
)

QDRANT_ERROR_RULES: tuple[ErrorRule, ...] = (
    # local mode's own storage
    ErrorRule(
        LocalStorageLockedError,
        _C,
        ErrorCode.INVALID_CONFIG,
        "the local Qdrant storage folder is held by another client (another worker process, or another "
        "connector with the same custom_config.path); one process owns a local path: give each connector "
        "its own path, serve it from one worker, or use a Qdrant server to share data",
    ),
    ErrorRule(LocalClientClosedError, _T, ErrorCode.CONNECTION_FAILED, "the local Qdrant store was closed"),
    ErrorRule(PermissionError, _C, ErrorCode.INVALID_CONFIG, "the local Qdrant path is not writable"),
    ErrorRule(NotADirectoryError, _C, ErrorCode.INVALID_CONFIG, "the local Qdrant path is not a directory"),
    # the server (or local mode) answered
    ErrorRule(AuthenticationFailedError, _S, ErrorCode.AUTHENTICATION_FAILED, "authentication failed"),
    ErrorRule(PermissionDeniedError, _S, ErrorCode.PERMISSION_DENIED, "permission denied"),
    ErrorRule(MissingCollectionError, _C, ErrorCode.NOT_FOUND, "the collection does not exist"),
    ErrorRule(CollectionExistsError, _P, ErrorCode.CONSTRAINT_VIOLATION, "the collection already exists"),
    ErrorRule(
        DimensionMismatchError,
        _P,
        ErrorCode.INVALID_DATA,
        "a vector's dimension does not match the collection",
    ),
    ErrorRule(ResourceExhaustedResponse, _R, ErrorCode.LIMIT_EXCEEDED, "Qdrant is rate limiting requests"),
    ErrorRule(RateLimitedError, _R, ErrorCode.LIMIT_EXCEEDED, "Qdrant is rate limiting requests"),
    ErrorRule(TooLargeError, _P, ErrorCode.LIMIT_EXCEEDED, "the request is too large for Qdrant"),
    ErrorRule(ServerUnavailableError, _T, ErrorCode.CONNECTION_FAILED, "the Qdrant server is unavailable"),
    ErrorRule(GrpcTimeoutError, _T, ErrorCode.TIMEOUT, "Qdrant did not answer in time"),
    ErrorRule(RequestRefusedError, _P, ErrorCode.QUERY_FAILED, "Qdrant refused the request"),
    ErrorRule(UnexpectedResponse, _P, ErrorCode.QUERY_FAILED, "Qdrant gave an unexpected answer"),
    # could not talk to the server
    ErrorRule(TimedOutResponseError, _T, ErrorCode.TIMEOUT, "Qdrant did not answer in time"),
    ErrorRule(ResponseHandlingException, _T, ErrorCode.CONNECTION_FAILED, "cannot reach the Qdrant server"),
    ErrorRule(httpx.TimeoutException, _T, ErrorCode.TIMEOUT, "Qdrant did not answer in time"),
    ErrorRule(httpx.TransportError, _T, ErrorCode.CONNECTION_FAILED, "cannot reach the Qdrant server"),
    ErrorRule(grpc.RpcError, _T, ErrorCode.CONNECTION_FAILED, "the Qdrant gRPC call failed"),
    # local mode refuses bad input with ValueError (pydantic's ValidationError is one too)
    ErrorRule(ValidationError, _P, ErrorCode.INVALID_DATA, "a value does not fit Qdrant's data model"),
    ErrorRule(ValueError, _P, ErrorCode.INVALID_REQUEST, "Qdrant refused the request"),
)

# Local-mode messages that name ids, sizes and collections but never payload values.
_LOCAL_TEXT_IS_SAFE: tuple[type[BaseException], ...] = (DimensionMismatchError, CollectionExistsError)


def refine(error: ConnectorError, exc: BaseException) -> ConnectorError:
    """Add Retry-After and the service's own words to a classified error (not to security errors)."""
    if error.category is ErrorCategory.SECURITY:
        return error
    retry_after = _retry_after(exc)
    message = error.message
    local = isinstance(exc, ValueError) and isinstance(exc, _LOCAL_TEXT_IS_SAFE)
    text = server_text(exc) or (str(exc)[:_SERVER_TEXT_LIMIT] if local else None)
    if text and error.category is not ErrorCategory.TRANSIENT:
        message = f"{message}: {text}"
    if retry_after is None and message == error.message:
        return error
    return type(error)(message, code=error.code, retry_after=retry_after, detail=error.detail)


def _retry_after(exc: BaseException) -> float | None:
    if isinstance(exc, ResourceExhaustedResponse):
        return float(exc.retry_after_s)
    if isinstance(exc, UnexpectedResponse) and exc.status_code == 429:
        try:
            return max(0.0, float(exc.headers.get("Retry-After", "")))
        except ValueError:
            return None
    return None
