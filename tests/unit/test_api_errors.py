"""The API error tables: statuses to categories, Retry-After, TLS failures, and secrets kept out."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

import httpx
import pytest

from scf.connectors.web.errors import retry_after, status_error, translate_transport_error
from scf.connectors.web.redaction import Redactor
from scf.schemas.errors import ErrorCategory, ResourceError

SECRET = "errors-canary-secret-5e7b"
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "headers", "category", "code"),
    [
        (400, {}, "permanent", "INVALID_REQUEST"),
        (401, {}, "security", "AUTHENTICATION_FAILED"),
        (403, {}, "security", "PERMISSION_DENIED"),
        (404, {}, "permanent", "NOT_FOUND"),
        (408, {}, "transient", "TIMEOUT"),
        (413, {}, "permanent", "LIMIT_EXCEEDED"),
        (422, {}, "permanent", "INVALID_REQUEST"),
        (429, {}, "resource", "LIMIT_EXCEEDED"),
        (429, {"retry-after": "3"}, "resource", "LIMIT_EXCEEDED"),
        (500, {}, "transient", "CONNECTION_FAILED"),
        (502, {}, "transient", "CONNECTION_FAILED"),
        (503, {}, "transient", "CONNECTION_FAILED"),
        (503, {"retry-after": "7"}, "resource", "LIMIT_EXCEEDED"),
        (504, {}, "transient", "TIMEOUT"),
        (302, {}, "permanent", "INVALID_REQUEST"),
    ],
)
def test_statuses_map_to_categories(status: int, headers: dict[str, str], category: str, code: str) -> None:
    error = status_error(status, headers, b"", Redactor(), "https://api.example.com/x")

    assert (error.category.value, error.code) == (category, code)
    assert error.retryable is (category in ("transient", "resource"))


def test_429_and_503_carry_retry_after() -> None:
    limited = status_error(429, {"retry-after": "3"}, b"", Redactor(), "u")
    busy = status_error(503, {"retry-after": "7"}, b"", Redactor(), "u")

    assert isinstance(limited, ResourceError) and limited.retry_after == 3
    assert busy.retry_after == 7
    assert limited.to_info().retry_after == 3


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("120", 120.0),
        ("999999", 3600.0),
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value: str | None, seconds: float | None) -> None:
    assert retry_after(value, now=NOW) == seconds


def test_request_errors_quote_the_reply_without_secrets() -> None:
    redact = Redactor([SECRET])
    body = f'{{"error": "bad key {SECRET}", "auth": "Bearer abc.def", "url": "https://u:pw@h/"}}'.encode()

    error = status_error(400, {}, body, redact, "https://api.example.com/x")

    assert "bad key" in error.message
    for leaked in (SECRET, "abc.def", ":pw@"):
        assert leaked not in error.message
        assert leaked not in (error.detail or "")


def test_security_replies_are_not_quoted() -> None:
    error = status_error(401, {}, b'{"error": "token tok-123 expired"}', Redactor(), "u")

    assert "tok-123" not in error.message
    assert "tok-123" not in (error.detail or "")
    assert error.to_info().message == "access denied"


def test_long_replies_are_cut() -> None:
    error = status_error(400, {}, b"x" * 10_000, Redactor(), "u")

    assert len(error.message) < 300


def wrapped(cause: BaseException) -> httpx.ConnectError:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise httpx.ConnectError("handshake failed") from inner
    except httpx.ConnectError as outer:
        return outer


def test_tls_verification_failures_are_configuration_errors() -> None:
    failure = ssl.SSLCertVerificationError(1, "certificate verify failed")
    failure.reason = "CERTIFICATE_VERIFY_FAILED"
    failure.verify_message = "Hostname mismatch"

    error = translate_transport_error(wrapped(failure))

    assert error.category is ErrorCategory.CONFIGURATION


def test_a_refused_client_certificate_is_a_security_error() -> None:
    alert = ssl.SSLError(1, "tlsv13 alert certificate required")
    alert.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"

    error = translate_transport_error(wrapped(alert))

    assert (error.category, error.code) == (ErrorCategory.SECURITY, "AUTHENTICATION_FAILED")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (httpx.ConnectError("refused"), "CONNECTION_FAILED"),
        (httpx.ConnectTimeout("slow"), "TIMEOUT"),
        (httpx.ReadTimeout("slow"), "TIMEOUT"),
        (httpx.RemoteProtocolError("cut"), "CONNECTION_FAILED"),
        (httpx.ReadError("reset"), "CONNECTION_FAILED"),
        (TimeoutError(), "TIMEOUT"),
    ],
)
def test_network_trouble_is_transient(exc: Exception, code: str) -> None:
    error = translate_transport_error(exc)

    assert (error.category, error.code) == (ErrorCategory.TRANSIENT, code)
