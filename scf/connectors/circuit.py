"""Circuit breaker: the pure state machine, and the board a factory asks before every call.

closed -> open when, within one `window`, at least `min_failures` calls failed and they were at least
`failure_rate` of the calls; open -> half-open after `cooldown` (one probe call at a time is let through);
half-open -> closed when the probe succeeds, -> open again when it fails. Only failures that say the
service is unwell count (`counts_as_failure`): a bad request is the caller's fault, not the service's.

`LocalBreakerBoard` keeps the states in this process (embedded use, and the fleet's fallback when Redis is
unreachable); the fleet's shared board lives in `scf/worker/shared_breakers.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from scf.schemas.errors import ConnectorError, ErrorCode, ResourceError, policy_of

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class BreakerPolicy:
    window: float = 10.0
    min_failures: int = 5
    failure_rate: float = 0.5
    cooldown: float = 5.0

    def should_open(self, calls: int, failures: int) -> bool:
        return failures >= self.min_failures and failures >= self.failure_rate * max(calls, 1)


@dataclass(frozen=True)
class BreakerState:
    state: State = "closed"
    opened_at: float = 0.0
    window_start: float = 0.0
    calls: int = 0
    failures: int = 0
    probing: bool = False


@dataclass(frozen=True)
class Admission:
    allowed: bool
    probe: bool = False
    retry_after: float = 0.0


def counts_as_failure(error: ConnectorError) -> bool:
    """Trouble of the service itself (unreachable, timing out, overloaded), not of the request: a
    retryable error whose code's policy counts it (`scf.schemas.errors.POLICY`)."""
    return error.retryable and policy_of(error.code).counts_for_breaker


def admit(policy: BreakerPolicy, state: BreakerState, now: float) -> tuple[Admission, BreakerState]:
    """May a call go through now? An open breaker past its cooldown lets exactly one probe through."""
    if state.state == "closed":
        return Admission(True), state
    if state.state == "open":
        waited = now - state.opened_at
        if waited < policy.cooldown:
            return Admission(False, retry_after=policy.cooldown - waited), state
        return Admission(True, probe=True), replace(state, state="half_open", probing=True)
    if state.probing:  # half-open with its probe still out: everyone else waits for its verdict
        return Admission(False, retry_after=min(1.0, policy.cooldown)), state
    return Admission(True, probe=True), replace(state, probing=True)


def record(policy: BreakerPolicy, state: BreakerState, ok: bool, now: float) -> BreakerState:
    """The state after one call's outcome (`ok` = it did not count as a failure)."""
    if state.state != "closed":
        if ok:
            return BreakerState(window_start=now)
        return BreakerState(state="open", opened_at=now, window_start=now)
    if now - state.window_start >= policy.window:
        state = BreakerState(window_start=now)
    calls, failures = state.calls + 1, state.failures + (0 if ok else 1)
    if policy.should_open(calls, failures):
        return BreakerState(state="open", opened_at=now, window_start=now)
    # `replace(state, calls=..., failures=...)`, built directly: `replace` cost more than the rest here
    return BreakerState(state.state, state.opened_at, state.window_start, calls, failures, state.probing)


def give_back(state: BreakerState) -> BreakerState:
    """A probe that ended with no verdict (cancelled, or it never ran) gives its turn back: the next call
    probes at once instead of waiting for a verdict that will never come."""
    return replace(state, probing=False) if state.state == "half_open" else state


def circuit_open(endpoint: str, retry_after: float) -> ResourceError:
    return ResourceError(
        f"the circuit breaker of {endpoint} is open: the service failed repeatedly; calls resume after "
        "a successful probe",
        code=ErrorCode.CIRCUIT_OPEN,
        retry_after=round(max(retry_after, 0.1), 3),
    )


class BreakerBoard(Protocol):
    """Breaker states by endpoint key (`name`, or `name@host:port` for a failover host)."""

    async def admit(self, key: str) -> Admission: ...

    async def record(self, key: str, ok: bool, probe: bool) -> None: ...

    async def give_back(self, key: str) -> None:
        """This worker's probe of `key` ended with no verdict: let the next call probe."""
        ...

    def state(self, key: str) -> State: ...


class LocalBreakerBoard:
    """Every breaker in this process's memory."""

    def __init__(self, policy: BreakerPolicy | None = None, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy or BreakerPolicy()
        self.clock = clock
        self._states: dict[str, BreakerState] = {}

    async def admit(self, key: str) -> Admission:
        admission, self._states[key] = admit(self.policy, self._states.get(key, BreakerState()), self.clock())
        return admission

    async def record(self, key: str, ok: bool, probe: bool) -> None:
        current = self._states.get(key, BreakerState())
        if current.state != "closed" and not probe:
            return  # a call admitted before the breaker opened: only the probe decides now
        self._states[key] = record(self.policy, current, ok, self.clock())

    async def give_back(self, key: str) -> None:
        if key in self._states:
            self._states[key] = give_back(self._states[key])

    def state(self, key: str) -> State:
        return self._states.get(key, BreakerState()).state
