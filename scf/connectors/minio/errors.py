"""The MinIO/S3 error table: S3 error codes and HTTP statuses, SDK and urllib3 exceptions -> categories.

An `S3Error` is looked up by its S3 code, then by its HTTP status; a non-S3 answer (`ServerError`,
`InvalidResponseError`) by its status; urllib3 failures (which arrive wrapped in `MaxRetryError`) by
their type through the connector's `ErrorRule` rows. Keys and bucket names stay in the log detail.
"""

from __future__ import annotations

from dataclasses import dataclass

import urllib3.exceptions as http
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from scf.connectors.base import ErrorRule
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode, error_class

_T, _R, _P, _C, _S = (
    ErrorCategory.TRANSIENT,
    ErrorCategory.RESOURCE,
    ErrorCategory.PERMANENT,
    ErrorCategory.CONFIGURATION,
    ErrorCategory.SECURITY,
)


@dataclass(frozen=True)
class S3Rule:
    category: ErrorCategory
    code: ErrorCode
    message: str


_AUTH = S3Rule(_S, ErrorCode.AUTHENTICATION_FAILED, "authentication failed")
_DENIED = S3Rule(_S, ErrorCode.PERMISSION_DENIED, "permission denied")
_UNAVAILABLE = S3Rule(_T, ErrorCode.CONNECTION_FAILED, "the object store is unavailable")

#: S3 (and MinIO) error codes, https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
S3_CODES: dict[str, S3Rule] = {
    # configuration: the connector points at something that is not there or not right
    "NoSuchBucket": S3Rule(_C, ErrorCode.INVALID_CONFIG, "the configured bucket does not exist"),
    "InvalidBucketName": S3Rule(_C, ErrorCode.INVALID_CONFIG, "the store refuses the bucket name"),
    "AuthorizationHeaderMalformed": S3Rule(
        _C, ErrorCode.INVALID_CONFIG, "the bucket is in another region (set custom_config.region)"
    ),
    "PermanentRedirect": S3Rule(
        _C, ErrorCode.INVALID_CONFIG, "the bucket must be reached through another endpoint or region"
    ),
    "RequestTimeTooSkewed": S3Rule(
        _C, ErrorCode.INVALID_CONFIG, "the worker's clock differs too much from the store's"
    ),
    # security: who is asking, and may they
    "InvalidAccessKeyId": _AUTH,
    "SignatureDoesNotMatch": _AUTH,
    "ExpiredToken": _AUTH,
    "InvalidToken": _AUTH,
    "TokenRefreshRequired": _AUTH,
    "InvalidSecurity": _AUTH,
    "AccessDenied": _DENIED,
    "AllAccessDisabled": _DENIED,
    "AccountProblem": _DENIED,
    # permanent: this request cannot succeed as asked
    "NoSuchKey": S3Rule(_P, ErrorCode.NOT_FOUND, "no object with that key"),
    "ResourceNotFound": S3Rule(_P, ErrorCode.NOT_FOUND, "not found"),
    "InvalidRange": S3Rule(_P, ErrorCode.INVALID_REQUEST, "the requested range is outside the object"),
    "BucketAlreadyExists": S3Rule(
        _P, ErrorCode.CONSTRAINT_VIOLATION, "the bucket name is taken by another account"
    ),
    "BucketNotEmpty": S3Rule(_P, ErrorCode.CONSTRAINT_VIOLATION, "the bucket is not empty"),
    "PreconditionFailed": S3Rule(_P, ErrorCode.CONSTRAINT_VIOLATION, "a precondition did not hold"),
    "EntityTooLarge": S3Rule(_P, ErrorCode.LIMIT_EXCEEDED, "the object is larger than the store allows"),
    "MetadataTooLarge": S3Rule(_P, ErrorCode.LIMIT_EXCEEDED, "the metadata is larger than the store allows"),
    "KeyTooLongError": S3Rule(_P, ErrorCode.INVALID_IDENTIFIER, "the key is longer than the store allows"),
    "EntityTooSmall": S3Rule(_P, ErrorCode.INVALID_DATA, "a multipart part is smaller than the store allows"),
    "InvalidArgument": S3Rule(_P, ErrorCode.INVALID_REQUEST, "the store refused an argument"),
    "InvalidRequest": S3Rule(_P, ErrorCode.INVALID_REQUEST, "the store refused the request"),
    "MalformedXML": S3Rule(_P, ErrorCode.INVALID_REQUEST, "the store refused the request"),
    "MethodNotAllowed": S3Rule(_P, ErrorCode.INVALID_REQUEST, "the store does not allow this operation"),
    "NotImplemented": S3Rule(_P, ErrorCode.INVALID_REQUEST, "the store does not implement this operation"),
    # resource: the store is overloaded or full; retry later, slower
    "SlowDown": S3Rule(_R, ErrorCode.TOO_MANY_CONNECTIONS, "the store asks to slow down"),
    "XMinioStorageFull": S3Rule(_R, ErrorCode.LIMIT_EXCEEDED, "the store is out of space"),
    "XMinioAdminBucketQuotaExceeded": S3Rule(_R, ErrorCode.LIMIT_EXCEEDED, "the bucket's quota is used up"),
    # transient: try again
    "ServiceUnavailable": _UNAVAILABLE,
    "XMinioServerNotInitialized": _UNAVAILABLE,
    "InternalError": S3Rule(_T, ErrorCode.CONNECTION_FAILED, "the object store failed internally"),
    "RequestTimeout": S3Rule(_T, ErrorCode.TIMEOUT, "the store timed out reading the request"),
    "OperationAborted": S3Rule(_T, ErrorCode.CONSTRAINT_VIOLATION, "a conflicting operation is in progress"),
    "NoSuchUpload": S3Rule(_T, ErrorCode.CONNECTION_FAILED, "the multipart upload was aborted"),
}

#: By HTTP status when the code is unknown (or the answer was not S3 XML at all).
S3_STATUSES: dict[int, S3Rule] = {
    400: S3Rule(_P, ErrorCode.INVALID_REQUEST, "the store refused the request"),
    401: _AUTH,
    403: _DENIED,
    404: S3Rule(_P, ErrorCode.NOT_FOUND, "not found"),
    409: S3Rule(_P, ErrorCode.CONSTRAINT_VIOLATION, "the request conflicts with the store's state"),
    412: S3Rule(_P, ErrorCode.CONSTRAINT_VIOLATION, "a precondition did not hold"),
    416: S3Rule(_P, ErrorCode.INVALID_REQUEST, "the requested range is outside the object"),
    429: S3Rule(_R, ErrorCode.TOO_MANY_CONNECTIONS, "the store asks to slow down"),
    503: S3Rule(_T, ErrorCode.CONNECTION_FAILED, "the object store is unavailable"),
}
_SERVER_FAILED = S3Rule(_T, ErrorCode.CONNECTION_FAILED, "the object store failed to answer")
_UNKNOWN_REFUSAL = S3Rule(_P, ErrorCode.INVALID_REQUEST, "the store refused the request")
_NOT_S3 = S3Rule(_T, ErrorCode.CONNECTION_FAILED, "the endpoint did not answer like an S3 store")


def s3_rule(code: str | None, status: int | None) -> S3Rule:
    """The row for an S3 answer: by code, then by status; other 5xx are transient, other 4xx permanent."""
    if code and code in S3_CODES:
        return S3_CODES[code]
    if status in S3_STATUSES:
        return S3_STATUSES[status]
    return _SERVER_FAILED if status is None or status >= 500 else _UNKNOWN_REFUSAL


def non_s3_rule(status: int | None) -> S3Rule:
    """A reply that is not S3 XML (a proxy's HTML page): a 4xx still refuses this request (a body too
    large, a URI too long), so it is judged by its status; only a 5xx or no status says the endpoint
    is unwell."""
    if status is not None and 400 <= status < 500:
        return s3_rule(None, status)
    return _NOT_S3


def classify_store_answer(exc: BaseException) -> ConnectorError | None:
    """A typed error for an exception the store's answer caused, or None for anything else."""
    if isinstance(exc, S3Error):
        status = getattr(exc.response, "status", None)
        return _typed(s3_rule(exc.code, status), exc, _retry_after(exc))
    if isinstance(exc, ServerError):
        return _typed(s3_rule(None, exc.status_code), exc)
    if isinstance(exc, InvalidResponseError):
        status = getattr(exc, "_code", None)  # the SDK keeps the status only here
        return _typed(non_s3_rule(status if isinstance(status, int) else None), exc)
    return None


def unwrap(exc: BaseException) -> BaseException:
    """urllib3 reports a failed connection as MaxRetryError(reason=...): classify the reason."""
    if isinstance(exc, http.MaxRetryError) and exc.reason is not None:
        return exc.reason
    return exc


def _typed(rule: S3Rule, exc: BaseException, retry_after: float | None = None) -> ConnectorError:
    detail = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"[:2000]
    name = getattr(exc, "code", None)
    message = rule.message if rule.category is _S or not name else f"{rule.message} ({name})"
    return error_class(rule.category)(message, code=rule.code, retry_after=retry_after, detail=detail)


def _retry_after(exc: S3Error) -> float | None:
    headers = getattr(exc.response, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the policy's own backoff applies


MINIO_ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        http.SSLError,
        _C,
        ErrorCode.INVALID_CONFIG,
        "the TLS handshake with the store failed (check secure and cert_check)",
    ),
    ErrorRule(http.NameResolutionError, _T, ErrorCode.CONNECTION_FAILED, "cannot resolve the store's host"),
    ErrorRule(http.NewConnectionError, _T, ErrorCode.CONNECTION_FAILED, "cannot reach the object store"),
    ErrorRule(http.TimeoutError, _T, ErrorCode.TIMEOUT, "the object store did not answer in time"),
    ErrorRule(http.LocationValueError, _C, ErrorCode.INVALID_CONFIG, "the endpoint is not a valid address"),
    ErrorRule(http.HTTPError, _T, ErrorCode.CONNECTION_FAILED, "the connection to the object store failed"),
    ErrorRule(MinioException, _T, ErrorCode.CONNECTION_FAILED, "the store's answer could not be read"),
    # the SDK checks its arguments with ValueError; ours are checked first, so this is a backstop
    ErrorRule(ValueError, _P, ErrorCode.INVALID_REQUEST, "the S3 client refused the request"),
)
