"""Error translation through connector tables, and the pure retry decisions."""

from __future__ import annotations

import random
import time

import pytest

from scf.connectors.base import ErrorRule, classify
from scf.connectors.retry import RetryPolicy, fits_deadline, is_retryable, retrying
from scf.schemas.errors import (
    ErrorCategory,
    ErrorCode,
    PermanentError,
    ResourceError,
    SecurityError,
    TransientError,
)


class FakeDriverAuthError(Exception):
    pass


RULES = (
    ErrorRule(FakeDriverAuthError, ErrorCategory.SECURITY, ErrorCode.AUTHENTICATION_FAILED, "bad login"),
)


@pytest.mark.parametrize(
    ("exc", "category", "code"),
    [
        (FakeDriverAuthError("password for bob"), ErrorCategory.SECURITY, "AUTHENTICATION_FAILED"),
        (ConnectionRefusedError(111, "refused"), ErrorCategory.TRANSIENT, "CONNECTION_FAILED"),
        (TimeoutError(), ErrorCategory.TRANSIENT, "TIMEOUT"),
        (OSError("no route"), ErrorCategory.TRANSIENT, "CONNECTION_FAILED"),
        (KeyError("bug"), ErrorCategory.PERMANENT, "INTERNAL"),
    ],
)
def test_driver_exceptions_are_classified_by_the_table(
    exc: Exception, category: ErrorCategory, code: str
) -> None:
    error = classify(exc, RULES)

    assert (error.category, error.code) == (category, code)
    assert error.detail is not None  # the internal detail is kept for logs


def test_typed_errors_pass_through_unchanged() -> None:
    original = ResourceError("slow down", retry_after=3)

    assert classify(original, RULES) is original


def test_security_detail_never_reaches_the_caller() -> None:
    error = classify(FakeDriverAuthError("password for bob is hunter2"), RULES)

    assert "hunter2" not in error.to_info().model_dump_json()


def test_only_transient_and_resource_errors_are_retryable() -> None:
    assert is_retryable(TransientError("x"))
    assert is_retryable(ResourceError("x"))
    assert not is_retryable(PermanentError("x"))
    assert not is_retryable(SecurityError("x"))
    assert not is_retryable(ValueError("x"))


def test_backoff_grows_exponentially_and_resource_errors_wait_longer() -> None:
    policy = RetryPolicy(attempts=5, base_delay=1.0, max_delay=100.0, jitter=0.0)

    assert [policy.delay(TransientError("x"), n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert policy.delay(ResourceError("x"), 1) == 4.0
    assert policy.delay(ResourceError("x", retry_after=9.0), 1) == 9.0


def test_jitter_stays_within_its_bound() -> None:
    policy = RetryPolicy(base_delay=1.0, jitter=0.25)
    rng = random.Random(7)

    delays = [policy.delay(TransientError("x"), 1, rng) for _ in range(100)]

    assert all(1.0 <= d <= 1.25 for d in delays)


def test_a_retry_must_fit_the_deadline() -> None:
    assert fits_deadline(1.0, remaining=10.0)
    assert not fits_deadline(9.5, remaining=10.0)


async def test_the_loop_retries_transient_errors_then_succeeds() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise TransientError("blip")
        return "ok"

    result = None
    async for attempt in retrying(RetryPolicy(attempts=3, base_delay=0.001, jitter=0.0), time.time() + 5):
        with attempt:
            result = await flaky()

    assert (result, calls) == ("ok", 3)


async def test_the_loop_never_retries_a_permanent_error() -> None:
    calls = 0
    with pytest.raises(PermanentError):
        async for attempt in retrying(RetryPolicy(attempts=3, base_delay=0.001), time.time() + 5):
            with attempt:
                calls += 1
                raise PermanentError("bad data")

    assert calls == 1


async def test_the_loop_gives_up_when_the_next_wait_would_pass_the_deadline() -> None:
    calls = 0
    with pytest.raises(TransientError):
        async for attempt in retrying(RetryPolicy(attempts=10, base_delay=5.0), time.time() + 1):
            with attempt:
                calls += 1
                raise TransientError("down")

    assert calls == 1
