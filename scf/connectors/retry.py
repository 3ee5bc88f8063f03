"""In-process retry policy as data, the pure decisions behind it, and the tenacity loop that applies them.

Only `transient` and `resource` errors are retried, never past the deadline; `resource` errors wait
longer and at least their `retry_after`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

from scf.schemas.errors import ConnectorError, ErrorCategory, policy_of


@dataclass(frozen=True)
class RetryPolicy:
    """A connector's retry policy. Built once per connector (the factory keeps it), with the tenacity
    strategies it needs built once with it (`stop_after_attempts`, `wait`): a call that succeeds at the
    first try builds no tenacity object at all (see `Execution`)."""

    attempts: int = 3  # retries after the first try
    base_delay: float = 1.0
    max_delay: float = 30.0
    resource_multiplier: float = 4.0
    jitter: float = 0.25

    def delay(self, error: ConnectorError, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed try number `attempt` (1-based): exponential, jittered."""
        delay = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        if error.category is ErrorCategory.RESOURCE:
            delay = min(self.max_delay, delay * self.resource_multiplier)
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return float(delay * (1 + (rng or random).uniform(0, self.jitter)))

    @cached_property
    def stop_after_attempts(self) -> stop_base:
        """tenacity's stop after the first try and `attempts` retries (built once per policy)."""
        return stop_after_attempt(self.attempts + 1)

    def wait(self, state: RetryCallState) -> float:
        """tenacity's wait: this policy's delay after the attempt that just failed."""
        exc = state.outcome.exception() if state.outcome else None
        return self.delay(exc, state.attempt_number) if isinstance(exc, ConnectorError) else 0.0


#: A probe (half-open breaker) gets exactly one try.
NO_RETRIES = RetryPolicy(attempts=0)


def is_retryable(exc: BaseException) -> bool:
    """Transient and resource errors whose code's policy retries in process (an open breaker fails fast)."""
    return isinstance(exc, ConnectorError) and exc.retryable and policy_of(exc.code).retry_in_process


#: tenacity's retry predicate, the same object for every loop.
RETRY_RETRYABLE = retry_if_exception(is_retryable)


def fits_deadline(delay: float, remaining: float) -> bool:
    """A retry is worth it only if it starts with time left to finish (a tenth of the budget)."""
    return delay < remaining * 0.9


OnRetry = Callable[[ConnectorError, int, float], None]


def retrying(policy: RetryPolicy, deadline: float, on_retry: OnRetry | None = None) -> AsyncRetrying:
    """A tenacity loop: retry retryable errors with the policy's backoff, never past `deadline`.

    `on_retry(error, attempt, sleep)` is called before each retry (for metrics and logs). The loop holds
    per-call state (attempt numbers, the deadline), so it is made per call that needs retrying; the
    policy's strategies are shared.
    """

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if on_retry is not None and isinstance(exc, ConnectorError):
            on_retry(exc, state.attempt_number, state.upcoming_sleep)

    return AsyncRetrying(
        retry=RETRY_RETRYABLE,
        wait=policy.wait,
        stop=policy.stop_after_attempts | _StopAtDeadline(deadline),
        before_sleep=before_sleep,
        reraise=True,
    )


class _StopAtDeadline(stop_base):
    """Stop when the next sleep would leave too little of the deadline to finish the retry."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return not fits_deadline(retry_state.upcoming_sleep, self.deadline - time.time())
