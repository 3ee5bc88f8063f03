"""Waiting for the broker and Redis at start: exponential backoff with jitter (tenacity) up to a total
deadline (`SCF_STARTUP_TIMEOUT`), one progress line per retry, then one clear failure.

A fleet started beside its services (compose, a reboot) should wait for them, not die at once; one
started against a wrong address should say so within a bounded time, not retry forever.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_exponential_jitter,
)

T = TypeVar("T")

#: First wait and the largest one between attempts (seconds), before jitter.
FIRST_WAIT = 0.5
LONGEST_WAIT = 2.0  # a service that comes back is used within about 2 s


class StartupError(RuntimeError):
    """A service the process needs did not answer within the startup deadline."""


async def wait_for(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    deadline: float,
    say: Callable[[str], None],
    ready: Callable[[T], bool] = lambda _: True,
) -> T:
    """`attempt()` until it returns a value `ready` accepts, retrying exceptions and refusals with
    backoff for at most `deadline` seconds. Raises StartupError naming `what` and the last reason."""

    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        reason = "not ready"
        if outcome is not None and outcome.failed:
            error = outcome.exception()
            reason = f"{type(error).__name__}: {error}"[:200]
        wait = state.next_action.sleep if state.next_action else 0.0
        say(f"waiting for {what} (attempt {state.attempt_number}, next in {wait:.1f} s): {reason}")

    retrying = AsyncRetrying(
        stop=stop_after_delay(deadline),
        wait=wait_exponential_jitter(multiplier=FIRST_WAIT, max=LONGEST_WAIT, jitter=FIRST_WAIT),
        retry=retry_if_exception_type(Exception) | retry_if_result(lambda value: not ready(value)),
        before_sleep=before_sleep,
        reraise=False,
    )

    async def once() -> T:  # a real coroutine function: tenacity awaits only those
        return await attempt()

    try:
        return await retrying(once)
    except RetryError as exc:
        last = exc.last_attempt
        reason = "it never answered"
        if last.failed:
            error = last.exception()
            reason = f"{type(error).__name__}: {error}"[:200]
        raise StartupError(f"{what} did not answer within {deadline:g} s ({reason})") from None
