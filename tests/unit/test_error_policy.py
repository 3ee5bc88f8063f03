"""The one per-ErrorCode policy table: every code has its row, and every reader of it decides as the
five separate definitions it replaced did (written out here, once, as the reference)."""

from __future__ import annotations

import itertools

import pytest

from scf.connectors.circuit import counts_as_failure
from scf.connectors.retry import is_retryable
from scf.fleet.disposition import DROP, REPLY, UNHEARD, Disposition, Kind, answer_once, decide, tier_for
from scf.schemas.dead_letters import DeadReason
from scf.schemas.errors import (
    POLICY,
    RETRYABLE_CATEGORIES,
    CodePolicy,
    ErrorCategory,
    ErrorCode,
    ErrorInfo,
    error_class,
    policy_of,
)

# The definitions before the table (scf 0.x): disposition's two sets, retry's and the breaker's exceptions.
OLD_FAIL_FAST = {ErrorCode.CIRCUIT_OPEN, ErrorCode.DEADLINE_EXCEEDED, ErrorCode.IN_PROGRESS}
OLD_NOT_DEAD = {ErrorCode.CANCELLED, ErrorCode.OPERATION_ID_IN_USE}
OLD_NOT_RETRIED = {ErrorCode.CIRCUIT_OPEN}
OLD_NOT_COUNTED = {ErrorCode.CIRCUIT_OPEN, ErrorCode.DEADLINE_EXCEEDED, ErrorCode.CANCELLED}
# Access control's refusals (issue 14) are the caller's standing, never the connector's: answered at
# once, never retried, never counted by a breaker, never kept as dead letters (a stranger's flood).
ACCESS = {ErrorCode.UNAUTHENTICATED, ErrorCode.FORBIDDEN, ErrorCode.RATE_LIMITED}
OLD_FAIL_FAST |= ACCESS
OLD_NOT_DEAD |= ACCESS
OLD_NOT_RETRIED |= ACCESS
OLD_NOT_COUNTED |= ACCESS | {ErrorCode.CONCURRENCY_LIMITED}  # busy, not broken

CASES = list(itertools.product(ErrorCode, ErrorCategory))


def old_decide(
    error: ErrorInfo, delayed_retries: int, max_delayed_retries: int, remaining: float, has_reply_to: bool
) -> Disposition:
    if error.code in OLD_NOT_DEAD:
        return REPLY
    if error.retryable and (error.code not in OLD_FAIL_FAST or not has_reply_to):
        tier, wait = tier_for(delayed_retries, error)
        if delayed_retries < max_delayed_retries and wait < remaining * 0.9:
            return Disposition(Kind.RETRY_LATER, tier=tier)
        if error.code not in OLD_FAIL_FAST:
            return Disposition(Kind.DEAD_LETTER, reason=DeadReason.RETRIES_EXHAUSTED)
    if not has_reply_to:
        reason = DeadReason.RETRIES_EXHAUSTED if error.retryable else DeadReason.FAILED_WITHOUT_REPLY
        return Disposition(Kind.DEAD_LETTER, reason=reason)
    return REPLY


def test_every_error_code_has_its_row_in_the_policy_table() -> None:
    assert set(ErrorCode) <= set(POLICY)
    assert all(isinstance(row, CodePolicy) for row in POLICY.values())
    assert set(POLICY) == set(ErrorCode)  # no row for a code that does not exist


def test_a_code_from_outside_the_taxonomy_gets_the_usual_row() -> None:
    assert policy_of("SOMETHING_A_PLUGIN_MADE_UP") == CodePolicy()


@pytest.mark.parametrize(("code", "category"), CASES)
def test_in_process_retries_and_breaker_counting_read_the_table_as_before(
    code: ErrorCode, category: ErrorCategory
) -> None:
    error = error_class(category)("x", code=code)
    retryable_category = category in RETRYABLE_CATEGORIES
    assert is_retryable(error) is (retryable_category and code not in OLD_NOT_RETRIED)
    assert counts_as_failure(error) is (retryable_category and code not in OLD_NOT_COUNTED)
    assert error.retryable is retryable_category


@pytest.mark.parametrize(("code", "category"), CASES)
def test_dispositions_read_the_table_as_before(code: ErrorCode, category: ErrorCategory) -> None:
    error = error_class(category)("x", code=code, retry_after=3.0).to_info()
    for retries, remaining, reply_to in itertools.product((0, 3), (1.0, 300.0), (True, False)):
        assert decide(
            error,
            delayed_retries=retries,
            max_delayed_retries=3,
            remaining=remaining,
            has_reply_to=reply_to,
        ) == old_decide(error, retries, 3, remaining, reply_to)


@pytest.mark.parametrize("code", list(ErrorCode))
def test_a_request_answered_once_is_replied_kept_or_dropped_by_the_table(code: ErrorCode) -> None:
    error = ErrorInfo(category=ErrorCategory.PERMANENT, code=code, message="m")
    assert answer_once(error, has_reply_to=True) is REPLY
    assert answer_once(None, has_reply_to=False) is REPLY
    unheard = answer_once(error, has_reply_to=False)
    assert unheard is (DROP if code in OLD_NOT_DEAD else UNHEARD)
