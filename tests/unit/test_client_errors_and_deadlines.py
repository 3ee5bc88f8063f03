"""Pure parts of issue 11 items 3 and 9: client-caused errors never count toward a breaker, and every
I/O call's timeout is clipped to the time left before the deadline."""

from __future__ import annotations

import contextlib
import time

import httpx
import pytest
import urllib3
from aiormq.exceptions import ConnectionFrameError, ConnectionInternalError, ConnectionSyntaxError
from minio.error import InvalidResponseError
from pydantic import ValidationError
from urllib3.exceptions import ConnectTimeoutError

from scf.connectors.base import classify
from scf.connectors.circuit import counts_as_failure
from scf.connectors.minio.client import call_timeout
from scf.connectors.minio.errors import classify_store_answer
from scf.connectors.rabbitmq.errors import classify_amqp
from scf.connectors.rabbitmq.requests import MAX_TABLE_BYTES, BindParameters, PublishParameters
from scf.connectors.sources import DEADLINE, time_left
from scf.connectors.url_source import about_the_url
from scf.connectors.web.errors import translate_transport_error
from scf.schemas.errors import (
    ConfigurationError,
    ErrorCategory,
    ErrorCode,
    ResourceError,
    SecurityError,
    TransientError,
)

# --- item 3: what a client library refuses before any I/O is the request's fault ------------------


@pytest.mark.parametrize(
    "exc",
    [
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        ValueError("embedded null byte"),
        OverflowError("int too large to convert"),
        TypeError("string exceeds maximum length of 255 bytes"),
        KeyError("a bug of ours"),
    ],
)
def test_an_unlisted_exception_is_permanent_and_never_counts(exc: Exception) -> None:
    error = classify(exc, ())

    assert error.category is ErrorCategory.PERMANENT and not error.retryable
    assert not counts_as_failure(error)


def test_values_the_client_library_refuses_are_invalid_data() -> None:
    assert classify(UnicodeEncodeError("ascii", "é", 0, 1, "x"), ()).code == ErrorCode.INVALID_DATA
    assert classify(ValueError("embedded null byte"), ()).code == ErrorCode.INVALID_DATA


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (ConnectionFrameError("FRAME_ERROR - frame_too_large"), ErrorCategory.PERMANENT),
        (ConnectionSyntaxError("SYNTAX_ERROR"), ErrorCategory.PERMANENT),
        (ConnectionInternalError("INTERNAL_ERROR"), ErrorCategory.TRANSIENT),  # the broker's own trouble
    ],
)
def test_a_broker_closing_the_connection_over_what_was_sent_is_permanent(
    exc: Exception, category: ErrorCategory
) -> None:
    assert classify_amqp(exc).category is category


@pytest.mark.parametrize(
    ("status", "category", "code"),
    [
        (413, ErrorCategory.PERMANENT, ErrorCode.INVALID_REQUEST),
        (414, ErrorCategory.PERMANENT, ErrorCode.INVALID_REQUEST),
        (400, ErrorCategory.PERMANENT, ErrorCode.INVALID_REQUEST),
        (404, ErrorCategory.PERMANENT, ErrorCode.NOT_FOUND),
        (403, ErrorCategory.SECURITY, ErrorCode.PERMISSION_DENIED),
        (429, ErrorCategory.RESOURCE, ErrorCode.TOO_MANY_CONNECTIONS),
        (502, ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED),
    ],
)
def test_a_non_s3_answer_is_judged_by_its_status(status: int, category: ErrorCategory, code: str) -> None:
    error = classify_store_answer(InvalidResponseError(status, "text/html", "<html>proxy</html>"))

    assert error is not None and (error.category, error.code) == (category, code)


@pytest.mark.parametrize(
    "exc",
    [httpx.LocalProtocolError("Illegal header value"), httpx.UnsupportedProtocol("no scheme")],
)
def test_an_http_request_the_client_cannot_send_is_permanent(exc: Exception) -> None:
    assert translate_transport_error(exc).category is ErrorCategory.PERMANENT


@pytest.mark.parametrize(
    "error",
    [
        TransientError("cannot resolve the API's host", code=ErrorCode.CONNECTION_FAILED),
        TransientError("the API did not answer in time", code=ErrorCode.TIMEOUT),
        ResourceError("the API is rate limiting (HTTP 429)", code=ErrorCode.LIMIT_EXCEEDED, retry_after=9),
    ],
)
def test_trouble_of_a_callers_url_is_permanent_for_the_connector(error: TransientError) -> None:
    moved = about_the_url(error)

    assert moved.category is ErrorCategory.PERMANENT and moved.code == error.code
    assert not counts_as_failure(moved)
    assert error.message in moved.message


def test_refusals_of_a_callers_url_stay_as_they_are() -> None:
    for error in (SecurityError("access denied"), ConfigurationError("tls failed")):
        assert about_the_url(error) is error


# --- item 3: AMQP tables the broker would close the connection over are refused before I/O ---------


@pytest.mark.parametrize(
    "headers",
    [
        {"a": "x" * (MAX_TABLE_BYTES + 1)},  # FRAME_ERROR: the content header frame is too large
        {"a": float("inf")},  # the broker answers INTERNAL_ERROR and closes the connection
        {"a": [1.0, float("nan")]},
        {"a": {"k" * 200: 1}},  # pamqp silently cuts keys past 128 bytes
        {"a": "v\ud800"},
    ],
)
def test_headers_that_cannot_travel_are_refused(headers: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PublishParameters.model_validate({"headers": headers})
    with pytest.raises(ValidationError):
        BindParameters.model_validate({"queue": "q", "exchange": "x", "arguments": headers})


def test_a_property_longer_than_an_amqp_short_string_is_refused() -> None:
    with pytest.raises(ValidationError):
        PublishParameters.model_validate({"correlation_id": "é" * 200})  # 400 bytes, 200 characters
    assert PublishParameters.model_validate({"correlation_id": "é" * 127}).correlation_id


def test_checking_a_large_table_is_linear() -> None:
    """The table check walks and encodes the headers once: 1 MB of them (refused: over a frame) costs
    about 1000 times 1 KB (accepted)."""

    def seconds(size: int) -> float:
        items = max(1, size // (25 * 36))  # each item encodes to about 36 bytes, in 25 headers
        headers = {f"h{i}": [{"n": 1.5, "s": "x" * 8} for _ in range(items)] for i in range(25)}
        started = time.perf_counter()
        with contextlib.suppress(ValidationError):  # 1 MB is over a frame: refused, after the same walk
            PublishParameters.model_validate({"headers": headers})
        return time.perf_counter() - started

    small = min(seconds(1_000) for _ in range(5))
    large = seconds(1_000_000)
    print(f"table check: 1 KB {small * 1e6:.0f} us, 1 MB {large * 1e3:.1f} ms")

    assert large < 2.0 and large / max(small, 1e-5) < 2000, (small, large)


# --- item 9: every I/O call gets the time left --------------------------------------------------------


def test_time_left_is_the_limit_without_a_deadline() -> None:
    assert time_left(5.0) == 5.0
    assert time_left() is None


def test_time_left_is_clipped_by_the_deadline() -> None:
    token = DEADLINE.set(time.time() + 2.0)
    try:
        assert 1.5 < time_left(30.0) <= 2.0
        assert time_left(0.5) == 0.5
        assert time_left() is not None
    finally:
        DEADLINE.reset(token)


def test_time_left_past_the_deadline_is_a_millisecond_not_zero_or_negative() -> None:
    token = DEADLINE.set(time.time() - 5)
    try:
        assert time_left(30.0) == 0.001
    finally:
        DEADLINE.reset(token)


def test_an_s3_call_connects_and_reads_within_the_time_left() -> None:
    clipped = call_timeout(5.0, 60.0, deadline=102.0, now=100.0)
    unbounded = call_timeout(5.0, 60.0, deadline=None, now=100.0)

    assert (clipped.connect_timeout, clipped.read_timeout) == (2.0, 2.0)
    assert (unbounded.connect_timeout, unbounded.read_timeout) == (5.0, 60.0)
    assert isinstance(clipped, urllib3.Timeout)


def test_no_s3_call_starts_past_its_deadline() -> None:
    with pytest.raises(ConnectTimeoutError):
        call_timeout(5.0, 60.0, deadline=99.0, now=100.0)
