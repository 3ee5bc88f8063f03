"""How one operation runs: which endpoint (circuit breaker, failover), retries, and the deadline.

A connector's endpoints are its primary and its `failover_hosts`, each with its own connector instance
and its own breaker (key `name`, `name@host:port`). The primary is tried first; an endpoint whose
breaker is open is skipped, so traffic moves to the next healthy backup and returns to the primary once
a half-open probe succeeds. Read-only backups take only the connector's read operations. Within an
endpoint, retryable errors are retried with backoff (tenacity), never past the deadline, never once
the breaker has opened, and not at all when a backup may take the call at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from scf.connectors.base import ServiceConnector
from scf.connectors.circuit import BreakerBoard, circuit_open, counts_as_failure
from scf.connectors.retry import RetryPolicy, is_retryable, retrying
from scf.connectors.sources import DEADLINE
from scf.schemas.errors import ConnectorError, ErrorCode, TransientError
from scf.schemas.operation import OperationOutcome, OperationRequest

log = structlog.get_logger(__name__)

OnRetry = Callable[[ServiceConnector, ConnectorError, int], None]


@dataclass(frozen=True)
class Endpoint:
    key: str
    connector: ServiceConnector
    read_only: bool = False


def endpoints_of(primary: ServiceConnector, backups: list[ServiceConnector]) -> list[Endpoint]:
    name = primary.service_name
    hosts = primary.connection.failover_hosts
    return [
        Endpoint(name, primary),
        *(Endpoint(f"{name}@{h.label()}", c, h.read_only) for h, c in zip(hosts, backups, strict=True)),
    ]


def candidates(endpoints: list[Endpoint], operation: str) -> list[Endpoint]:
    """The endpoints that may serve `operation`, primary first."""
    reads = endpoints[0].connector.read_operations
    return [e for e in endpoints if not e.read_only or operation in reads]


def may_fail_over(error: ConnectorError, operation: str, connector: ServiceConnector) -> bool:
    """After a failed call, is trying a backup safe? Reads always (also when the endpoint's breaker
    opened while the read was retrying there); writes only if nothing could have been applied (the
    connection never came up)."""
    if operation in connector.read_operations and error.code == ErrorCode.CIRCUIT_OPEN:
        return True
    if not counts_as_failure(error):
        return False
    return operation in connector.read_operations or error.code == ErrorCode.CONNECTION_FAILED


class Execution:
    """Runs operations over endpoints with one breaker board and one retry policy."""

    def __init__(self, breakers: BreakerBoard, policy_for: Callable[[ServiceConnector], RetryPolicy]) -> None:
        self.breakers = breakers
        self.policy_for = policy_for

    async def run(
        self, endpoints: list[Endpoint], request: OperationRequest, deadline: float, on_retry: OnRetry | None
    ) -> OperationOutcome:
        """Raises the last endpoint's typed error, or CIRCUIT_OPEN when every breaker is open."""
        wait: float | None = None
        last: ConnectorError | None = None
        chosen = candidates(endpoints, request.operation)
        for position, endpoint in enumerate(chosen):
            admission = await self.breakers.admit(endpoint.key)
            if not admission.allowed:
                wait = admission.retry_after if wait is None else min(wait, admission.retry_after)
                continue
            backup_left = position < len(chosen) - 1
            try:
                return await self._attempts(
                    endpoint, request, deadline, admission.probe, on_retry, backup_left=backup_left
                )
            except ConnectorError as exc:
                last = exc
                if not may_fail_over(exc, request.operation, endpoint.connector) or time.time() >= deadline:
                    raise
                log.info("failing_over", endpoint=endpoint.key, code=exc.code)
        if last is not None:
            raise last
        raise circuit_open(endpoints[0].key, wait or 0.0)

    async def _attempts(
        self,
        endpoint: Endpoint,
        request: OperationRequest,
        deadline: float,
        probe: bool,
        on_retry: OnRetry | None,
        *,
        backup_left: bool = False,
    ) -> OperationOutcome:
        connector = endpoint.connector
        # The first try runs outside tenacity: most calls succeed (or fail for good) there, and then no
        # retry loop is built at all. A retryable failure starts the loop with that failure as its first
        # attempt (replayed, not run again), so attempt numbers, waits and stops are tenacity's as ever.
        try:
            return await self._once(endpoint, request, deadline, probe)
        except ConnectorError as exc:
            if probe or not is_retryable(exc):
                raise
            if backup_left and may_fail_over(exc, request.operation, connector):
                raise  # a backup takes it now: backing off here first only delays the failover
            failed = exc
        policy = self.policy_for(connector)
        if policy.attempts == 0:
            raise failed
        replay = [failed]

        def retried(error: ConnectorError, attempt: int, sleep: float) -> None:
            log.info(
                "operation_retry",
                endpoint=endpoint.key,
                attempt=attempt,
                code=error.code,
                sleep=round(sleep, 3),
            )
            if on_retry is not None:
                on_retry(connector, error, attempt)

        async for attempt in retrying(policy, deadline, retried):
            with attempt:
                if replay:
                    raise replay.pop()
                # the breaker may have opened meanwhile (here or on another worker)
                admission = await self.breakers.admit(endpoint.key)
                if not admission.allowed:
                    raise circuit_open(endpoint.key, admission.retry_after)
                # It may also have opened and cooled down, and this retry won the half-open probe: its
                # verdict must settle the breaker, or the probe's lease holds every caller off until it
                # expires (30 s in the fleet) although the service is back.
                return await self._once(endpoint, request, deadline, admission.probe)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _once(
        self, endpoint: Endpoint, request: OperationRequest, deadline: float, probe: bool
    ) -> OperationOutcome:
        remaining = deadline - time.time()
        if remaining <= 0:
            if probe:
                await self._give_back(endpoint.key)
            raise TransientError("the operation's deadline passed", code=ErrorCode.DEADLINE_EXCEEDED)
        token = DEADLINE.set(deadline)
        try:
            async with asyncio.timeout(remaining):
                outcome = await endpoint.connector.execute(request)
        except TimeoutError:
            error = TransientError(
                "the operation did not finish within its deadline", code=ErrorCode.DEADLINE_EXCEEDED
            )
            if probe:  # a probe that never answered proves nothing good: the breaker stays open
                await self.breakers.record(endpoint.key, ok=False, probe=True)
            raise error from None  # otherwise slow, not broken: no verdict either way
        except ConnectorError as exc:
            await self.breakers.record(endpoint.key, ok=not counts_as_failure(exc), probe=probe)
            raise
        except (asyncio.CancelledError, Exception):
            if probe:  # cancelled (operation cancel, shutdown) or a fault of ours: no verdict either way
                await self._give_back(endpoint.key)
            raise
        finally:
            DEADLINE.reset(token)
        await self.breakers.record(endpoint.key, ok=True, probe=probe)
        return outcome

    async def _give_back(self, key: str) -> None:
        """Give the probe's turn back, waiting at most a second (shielded: cancelling this task again
        does not stop it): a lease left behind would hold every caller off the endpoint until it expires."""
        try:
            async with asyncio.timeout(1.0):
                await asyncio.shield(self.breakers.give_back(key))
        except TimeoutError:
            log.info("probe_give_back_late", endpoint=key)
