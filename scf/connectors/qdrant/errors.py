"""The Qdrant error table: what qdrant-client raises (REST, gRPC, local mode) -> category and code.

Remote errors are told apart by HTTP status or gRPC code; local mode raises plain `ValueError` and
`RuntimeError`, told apart by message (as qdrant-client 1.20 words them). Rows run most specific first.
`refine` adds Retry-After and the server's own words for refused requests, never for security errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection

import grpc
import httpx
from pydantic import ValidationError
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from scf.connectors.base import C, ErrorRule, P, R, S, T
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


def replied(
    statuses: Collection[int] = frozenset(), grpc_codes: Collection[str] = frozenset()
) -> Callable[[BaseException], bool]:
    """A predicate: the server answered with one of `statuses` (REST) or `grpc_codes` (gRPC)."""

    def test(exc: BaseException) -> bool:
        status = status_of(exc)
        return (status is not None and status in statuses) or grpc_code(exc) in grpc_codes

    return test


_NOT_FOUND = replied({404}, {"NOT_FOUND"})
_EXISTS = replied({409}, {"ALREADY_EXISTS"})
#: Local mode words a dimension mismatch as below, or fails inside numpy (`not aligned`).
_DIMENSION_TEXT = ("Vector dimension error", "not aligned")


def missing_collection(exc: BaseException) -> bool:
    """Local mode says "Collection x not found"; a server answers 404 (REST) or NOT_FOUND (gRPC)."""
    if isinstance(exc, ValueError):
        return str(exc).startswith("Collection ") and "not found" in str(exc)
    return _NOT_FOUND(exc)


def collection_exists(exc: BaseException) -> bool:
    if isinstance(exc, ValueError):
        return "already exists" in str(exc)
    return _EXISTS(exc)


def dimension_mismatch(exc: BaseException) -> bool:
    if isinstance(exc, ValueError):
        return any(fragment in str(exc) for fragment in _DIMENSION_TEXT)
    return "dimension error" in (server_text(exc) or "")


def timed_out(exc: BaseException) -> bool:
    """qdrant-client wraps every transport failure in ResponseHandlingException; a timeout is one kind."""
    return isinstance(exc, ResponseHandlingException) and isinstance(exc.source, httpx.TimeoutException)


_REFUSED = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "UNIMPLEMENTED"})
_UNAVAILABLE = frozenset({"UNAVAILABLE", "ABORTED", "INTERNAL", "UNKNOWN", "CANCELLED"})


def answered(
    category: ErrorCategory,
    code: ErrorCode,
    message: str,
    statuses: Collection[int] = frozenset(),
    grpc_codes: Collection[str] = frozenset(),
) -> ErrorRule:
    """A row for what the server answered, by HTTP status (REST) or status code (gRPC)."""
    return ErrorRule(Exception, category, code, message, when=replied(statuses, grpc_codes))


QDRANT_ERROR_RULES: tuple[ErrorRule, ...] = (
    # local mode's own storage
    ErrorRule(
        RuntimeError,
        C,
        ErrorCode.INVALID_CONFIG,
        "the local Qdrant storage folder is held by another client (another worker process, or another "
        "connector with the same custom_config.path); one process owns a local path: give each connector "
        "its own path, serve it from one worker, or use a Qdrant server to share data",
        text=("is already accessed by another instance",),
    ),
    ErrorRule(
        RuntimeError,
        T,
        ErrorCode.CONNECTION_FAILED,
        "the local Qdrant store was closed",
        text=("instance is closed",),
    ),
    ErrorRule(PermissionError, C, ErrorCode.INVALID_CONFIG, "the local Qdrant path is not writable"),
    ErrorRule(NotADirectoryError, C, ErrorCode.INVALID_CONFIG, "the local Qdrant path is not a directory"),
    # the server (or local mode) answered
    answered(S, ErrorCode.AUTHENTICATION_FAILED, "authentication failed", {401}, {"UNAUTHENTICATED"}),
    answered(S, ErrorCode.PERMISSION_DENIED, "permission denied", {403}, {"PERMISSION_DENIED"}),
    ErrorRule(Exception, C, ErrorCode.NOT_FOUND, "the collection does not exist", when=missing_collection),
    ErrorRule(
        Exception, P, ErrorCode.CONSTRAINT_VIOLATION, "the collection already exists", when=collection_exists
    ),
    ErrorRule(
        Exception,
        P,
        ErrorCode.INVALID_DATA,
        "a vector's dimension does not match the collection",
        when=dimension_mismatch,
    ),
    ErrorRule(ResourceExhaustedResponse, R, ErrorCode.LIMIT_EXCEEDED, "Qdrant is rate limiting requests"),
    answered(R, ErrorCode.LIMIT_EXCEEDED, "Qdrant is rate limiting requests", {429}, {"RESOURCE_EXHAUSTED"}),
    answered(P, ErrorCode.LIMIT_EXCEEDED, "the request is too large for Qdrant", {413}),
    answered(
        T, ErrorCode.CONNECTION_FAILED, "the Qdrant server is unavailable", range(500, 600), _UNAVAILABLE
    ),
    answered(T, ErrorCode.TIMEOUT, "Qdrant did not answer in time", grpc_codes={"DEADLINE_EXCEEDED"}),
    answered(P, ErrorCode.QUERY_FAILED, "Qdrant refused the request", range(400, 500), _REFUSED),
    ErrorRule(UnexpectedResponse, P, ErrorCode.QUERY_FAILED, "Qdrant gave an unexpected answer"),
    # could not talk to the server
    ErrorRule(
        ResponseHandlingException, T, ErrorCode.TIMEOUT, "Qdrant did not answer in time", when=timed_out
    ),
    ErrorRule(ResponseHandlingException, T, ErrorCode.CONNECTION_FAILED, "cannot reach the Qdrant server"),
    ErrorRule(httpx.TimeoutException, T, ErrorCode.TIMEOUT, "Qdrant did not answer in time"),
    ErrorRule(httpx.TransportError, T, ErrorCode.CONNECTION_FAILED, "cannot reach the Qdrant server"),
    ErrorRule(grpc.RpcError, T, ErrorCode.CONNECTION_FAILED, "the Qdrant gRPC call failed"),
    # local mode refuses bad input with ValueError (pydantic's ValidationError is one too)
    ErrorRule(ValidationError, P, ErrorCode.INVALID_DATA, "a value does not fit Qdrant's data model"),
    ErrorRule(ValueError, P, ErrorCode.INVALID_REQUEST, "Qdrant refused the request"),
)


# Local-mode messages that name ids, sizes and collections but never payload values.
def _local_text_is_safe(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and (dimension_mismatch(exc) or collection_exists(exc))


def refine(error: ConnectorError, exc: BaseException) -> ConnectorError:
    """Add Retry-After and the service's own words to a classified error (not to security errors)."""
    if error.category is ErrorCategory.SECURITY:
        return error
    retry_after = _retry_after(exc)
    message = error.message
    text = server_text(exc) or (str(exc)[:_SERVER_TEXT_LIMIT] if _local_text_is_safe(exc) else None)
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
