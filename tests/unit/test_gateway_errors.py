"""HTTP status codes follow the error's code, then its category."""

from __future__ import annotations

import pytest

from scf.gateway.errors import http_status, retry_after_header
from scf.schemas.errors import ErrorCategory, ErrorInfo


def info(category: str, code: str, retry_after: float | None = None) -> ErrorInfo:
    return ErrorInfo(category=ErrorCategory(category), code=code, message="m", retry_after=retry_after)


@pytest.mark.parametrize(
    ("category", "code", "status"),
    [
        ("configuration", "CONNECTOR_NOT_FOUND", 404),
        ("permanent", "CONNECTOR_EXISTS", 409),
        ("configuration", "CONNECTOR_PAUSED", 409),
        ("configuration", "INVALID_CONFIG", 422),
        ("permanent", "UNKNOWN_OPERATION", 400),
        ("permanent", "CONSTRAINT_VIOLATION", 400),
        ("resource", "TOO_MANY_CONNECTIONS", 429),
        ("resource", "NO_WORKER", 503),
        ("transient", "CONNECTION_FAILED", 503),
        ("transient", "TIMEOUT", 504),
        ("transient", "DEADLINE_EXCEEDED", 504),
        ("security", "AUTHENTICATION_FAILED", 403),
        ("permanent", "INTERNAL", 500),
    ],
)
def test_status_codes_follow_code_then_category(category: str, code: str, status: int) -> None:
    assert http_status(info(category, code)) == status


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert retry_after_header(info("resource", "X", 0.2)) == {"Retry-After": "1"}
    assert retry_after_header(info("resource", "X", 9.6)) == {"Retry-After": "10"}
    assert retry_after_header(info("permanent", "X")) == {}
