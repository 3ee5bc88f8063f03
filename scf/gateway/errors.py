"""HTTP status codes for the fleet's typed errors: one table, by code first, then by category.

The body of every error response is the same typed JSON AMQP callers get (`FailedReply` or a failed
`OperationResult`), so only the status line differs between the two faces of the fleet.
"""

from __future__ import annotations

import math
from typing import Any

from scf.schemas.control import FailedReply
from scf.schemas.errors import ErrorCategory, ErrorCode, ErrorInfo
from scf.schemas.operation import OperationResult

STATUS_BY_CODE: dict[str, int] = {
    ErrorCode.CONNECTOR_NOT_FOUND: 404,
    ErrorCode.RESULT_NOT_FOUND: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONNECTOR_EXISTS: 409,
    ErrorCode.CONNECTOR_PAUSED: 409,
    ErrorCode.IDEMPOTENCY_CONFLICT: 409,
    ErrorCode.IN_PROGRESS: 409,
    ErrorCode.OPERATION_ID_IN_USE: 409,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.INVALID_CONFIG: 422,
    ErrorCode.INVALID_REQUEST: 422,
    ErrorCode.NO_WORKER: 503,
    ErrorCode.STATE_UNAVAILABLE: 503,
    ErrorCode.CIRCUIT_OPEN: 503,
    ErrorCode.GATEWAY_BUSY: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CONCURRENCY_LIMITED: 429,
}

STATUS_BY_CATEGORY: dict[ErrorCategory, int] = {
    ErrorCategory.PERMANENT: 400,
    ErrorCategory.CONFIGURATION: 422,
    ErrorCategory.SECURITY: 403,
    ErrorCategory.RESOURCE: 429,
    ErrorCategory.TRANSIENT: 503,
}


def http_status(error: ErrorInfo) -> int:
    return STATUS_BY_CODE.get(error.code, STATUS_BY_CATEGORY[error.category])


def retry_after_header(error: ErrorInfo) -> dict[str, str]:
    """`Retry-After` (whole seconds, rounded up, at least 1) when the fleet says when to try again."""
    if error.retry_after is None:
        return {}
    return {"Retry-After": str(max(1, math.ceil(error.retry_after)))}  # never sooner than it is true


def refusal_body(method: str, path: str, error: ErrorInfo) -> dict[str, Any]:
    """A refusal's body: `execute` answers a failed OperationResult (as over AMQP), the rest FailedReply."""
    if method == "POST" and path.endswith("/execute"):
        return OperationResult.failed("op_unparsed", error).model_dump(mode="json")
    return FailedReply(error=error).model_dump(mode="json")
