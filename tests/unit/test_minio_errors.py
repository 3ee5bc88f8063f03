"""The MinIO error table: S3 codes, HTTP statuses, SDK and urllib3 exceptions -> categories (no network).

The SDK's exceptions are built here as the SDK builds them from a response; what a real server says is
exercised against moto in tests/integration/test_minio_connector.py.
"""

from __future__ import annotations

import pytest
import urllib3.exceptions as http
from minio.error import InvalidResponseError, S3Error, ServerError
from urllib3 import HTTPConnectionPool, HTTPHeaderDict, HTTPResponse
from urllib3.connection import HTTPConnection

from scf.connectors.minio import MinIOStorageConnector
from scf.connectors.minio.errors import S3_CODES, classify_store_answer, s3_rule
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode

POOL = HTTPConnectionPool("127.0.0.1", 1)  # only named by the exceptions; never connects


def s3_error(code: str, status: int, headers: dict[str, str] | None = None) -> S3Error:
    response = HTTPResponse(body=b"", status=status, headers=HTTPHeaderDict(headers or {}))
    return S3Error(
        response, code, "message from the store", "/bucket/key", "req-1", "host-1", "bucket", "key"
    )


def connector() -> MinIOStorageConnector:
    return MinIOStorageConnector(
        ServiceConnection.model_validate(
            {
                "service_type": "minio",
                "service_name": "errors_test",
                "custom_config": {"endpoint": "127.0.0.1:9", "bucket_name": "data-lake"},
            }
        )
    )


def classified(exc: BaseException) -> ConnectorError:
    return connector().translate(exc)


@pytest.mark.parametrize(
    ("code", "status", "category", "error_code"),
    [
        ("NoSuchBucket", 404, ErrorCategory.CONFIGURATION, ErrorCode.INVALID_CONFIG),
        ("NoSuchKey", 404, ErrorCategory.PERMANENT, ErrorCode.NOT_FOUND),
        ("AccessDenied", 403, ErrorCategory.SECURITY, ErrorCode.PERMISSION_DENIED),
        ("InvalidAccessKeyId", 403, ErrorCategory.SECURITY, ErrorCode.AUTHENTICATION_FAILED),
        ("SignatureDoesNotMatch", 403, ErrorCategory.SECURITY, ErrorCode.AUTHENTICATION_FAILED),
        ("ExpiredToken", 400, ErrorCategory.SECURITY, ErrorCode.AUTHENTICATION_FAILED),
        ("InvalidToken", 400, ErrorCategory.SECURITY, ErrorCode.AUTHENTICATION_FAILED),
        ("SlowDown", 503, ErrorCategory.RESOURCE, ErrorCode.TOO_MANY_CONNECTIONS),
        ("ServiceUnavailable", 503, ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED),
        ("InternalError", 500, ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED),
        ("InvalidRange", 416, ErrorCategory.PERMANENT, ErrorCode.INVALID_REQUEST),
        ("AuthorizationHeaderMalformed", 400, ErrorCategory.CONFIGURATION, ErrorCode.INVALID_CONFIG),
        ("XMinioStorageFull", 507, ErrorCategory.RESOURCE, ErrorCode.LIMIT_EXCEEDED),
        # unknown codes fall back on the status
        ("SomethingNew", 503, ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED),
        ("SomethingNew", 502, ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED),
        ("SomethingNew", 429, ErrorCategory.RESOURCE, ErrorCode.TOO_MANY_CONNECTIONS),
        ("SomethingNew", 403, ErrorCategory.SECURITY, ErrorCode.PERMISSION_DENIED),
        ("SomethingNew", 404, ErrorCategory.PERMANENT, ErrorCode.NOT_FOUND),
        ("SomethingNew", 422, ErrorCategory.PERMANENT, ErrorCode.INVALID_REQUEST),
    ],
)
def test_s3_errors_are_classified_by_code_then_status(
    code: str, status: int, category: ErrorCategory, error_code: ErrorCode
) -> None:
    error = classified(s3_error(code, status))

    assert (error.category, error.code) == (category, error_code)
    assert error.retryable == (category in {ErrorCategory.TRANSIENT, ErrorCategory.RESOURCE})


def test_every_code_row_is_reachable_and_distinct_from_the_fallback() -> None:
    for code, rule in S3_CODES.items():
        assert s3_rule(code, None) is rule


def test_a_numeric_retry_after_is_honoured() -> None:
    error = classified(s3_error("SlowDown", 503, {"Retry-After": "7"}))

    assert error.retry_after == 7.0


def test_the_message_names_the_s3_code_but_security_stays_generic() -> None:
    assert "(NoSuchKey)" in classified(s3_error("NoSuchKey", 404)).message
    denied = classified(s3_error("InvalidAccessKeyId", 403))
    assert "InvalidAccessKeyId" not in denied.message
    assert denied.to_info().message == "access denied"


def test_the_detail_keeps_what_the_store_said_for_the_logs() -> None:
    error = classified(s3_error("NoSuchKey", 404))

    assert error.detail is not None and "req-1" in error.detail


@pytest.mark.parametrize(
    ("exc", "category", "code"),
    [
        (
            ServerError("server failed with HTTP status code 502", 502),
            ErrorCategory.TRANSIENT,
            "CONNECTION_FAILED",
        ),
        (
            ServerError("server failed with HTTP status code 400", 400),
            ErrorCategory.PERMANENT,
            "INVALID_REQUEST",
        ),
        (
            InvalidResponseError(502, "text/html", "<h1>Bad Gateway</h1>"),
            ErrorCategory.TRANSIENT,
            "CONNECTION_FAILED",
        ),
        (
            InvalidResponseError(429, "text/plain", "slow down"),
            ErrorCategory.RESOURCE,
            "TOO_MANY_CONNECTIONS",
        ),
    ],
)
def test_answers_that_are_not_s3_xml_are_classified_by_status(
    exc: BaseException, category: ErrorCategory, code: str
) -> None:
    error = classified(exc)

    assert (error.category, error.code) == (category, code)


def _refused() -> http.NewConnectionError:
    return http.NewConnectionError(
        HTTPConnection("127.0.0.1", 1), "Failed to establish a new connection: [Errno 111] Connection refused"
    )


@pytest.mark.parametrize(
    ("exc", "category", "code"),
    [
        (http.MaxRetryError(POOL, "/", _refused()), ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED),
        (
            http.MaxRetryError(POOL, "/", http.ReadTimeoutError(POOL, "/", "read timed out")),
            ErrorCategory.TRANSIENT,
            ErrorCode.TIMEOUT,
        ),
        (
            http.MaxRetryError(POOL, "/", http.ConnectTimeoutError("connect timed out")),
            ErrorCategory.TRANSIENT,
            ErrorCode.TIMEOUT,
        ),
        (
            http.MaxRetryError(POOL, "/", http.ProtocolError("Connection aborted.")),
            ErrorCategory.TRANSIENT,
            ErrorCode.CONNECTION_FAILED,
        ),
        (
            http.MaxRetryError(POOL, "/", http.SSLError("wrong version number")),
            ErrorCategory.CONFIGURATION,
            ErrorCode.INVALID_CONFIG,
        ),
        (
            http.ProtocolError("Connection broken: IncompleteRead"),
            ErrorCategory.TRANSIENT,
            ErrorCode.CONNECTION_FAILED,
        ),
        (
            ConnectionResetError(104, "Connection reset by peer"),
            ErrorCategory.TRANSIENT,
            ErrorCode.CONNECTION_FAILED,
        ),
        (ValueError("invalid bucket name"), ErrorCategory.PERMANENT, ErrorCode.INVALID_REQUEST),
    ],
)
def test_transport_failures_are_classified_through_maxretryerror(
    exc: BaseException, category: ErrorCategory, code: ErrorCode
) -> None:
    error = classified(exc)

    assert (error.category, error.code) == (category, code)


def test_non_store_exceptions_are_left_to_the_table() -> None:
    assert classify_store_answer(KeyError("x")) is None
