"""The one decision after a worker ran a request: reply, retry later, or dead-letter."""

from __future__ import annotations

import pytest

from scf.fleet.disposition import Disposition, Kind, decide, tier_for
from scf.schemas.dead_letters import DeadReason
from scf.schemas.errors import ErrorCategory, ErrorCode, ErrorInfo


def info(category: ErrorCategory, code: ErrorCode, retry_after: float | None = None) -> ErrorInfo:
    return ErrorInfo(
        category=category,
        code=code,
        message="m",
        retryable=category in (ErrorCategory.TRANSIENT, ErrorCategory.RESOURCE),
        retry_after=retry_after,
    )


DOWN = info(ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED)
BUSY = info(ErrorCategory.RESOURCE, ErrorCode.TOO_MANY_CONNECTIONS)
BAD = info(ErrorCategory.PERMANENT, ErrorCode.INVALID_DATA)
OPEN = info(ErrorCategory.RESOURCE, ErrorCode.CIRCUIT_OPEN, retry_after=4)
LATE = info(ErrorCategory.TRANSIENT, ErrorCode.DEADLINE_EXCEEDED)
CANCELLED = info(ErrorCategory.PERMANENT, ErrorCode.CANCELLED)


def run(
    error: ErrorInfo | None, retries: int = 0, remaining: float = 120, reply_to: bool = True
) -> Disposition:
    return decide(
        error, delayed_retries=retries, max_delayed_retries=3, remaining=remaining, has_reply_to=reply_to
    )


def test_success_and_permanent_failures_are_answered_at_once() -> None:
    assert run(None).kind is Kind.REPLY
    assert run(BAD).kind is Kind.REPLY


@pytest.mark.parametrize(("retries", "tier"), [(0, "1s"), (1, "10s"), (2, "60s")])
def test_transient_failures_wait_longer_each_time(retries: int, tier: str) -> None:
    decision = run(DOWN, retries=retries)
    assert (decision.kind, decision.tier) == (Kind.RETRY_LATER, tier)


def test_resource_errors_back_off_longer_and_honour_retry_after() -> None:
    assert tier_for(0, BUSY)[0] == "10s"
    assert tier_for(0, info(ErrorCategory.TRANSIENT, ErrorCode.TIMEOUT, retry_after=30))[0] == "60s"
    assert tier_for(0, info(ErrorCategory.TRANSIENT, ErrorCode.TIMEOUT, retry_after=600))[0] == "60s"


def test_retries_stop_at_the_limit_or_the_deadline_and_the_request_is_dead_lettered() -> None:
    for decision in (run(DOWN, retries=3), run(DOWN, retries=0, remaining=1.0)):
        assert (decision.kind, decision.reason) == (Kind.DEAD_LETTER, DeadReason.RETRIES_EXHAUSTED)


def test_fail_fast_errors_are_answered_not_retried() -> None:
    assert run(OPEN).kind is Kind.REPLY
    assert run(LATE).kind is Kind.REPLY


def test_without_a_reply_queue_nothing_is_dropped_silently() -> None:
    assert run(BAD, reply_to=False).reason is DeadReason.FAILED_WITHOUT_REPLY
    assert run(OPEN, reply_to=False).kind is Kind.RETRY_LATER
    assert run(OPEN, retries=3, reply_to=False).reason is DeadReason.RETRIES_EXHAUSTED
    assert run(CANCELLED, reply_to=False).kind is Kind.REPLY
