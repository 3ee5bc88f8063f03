"""Failover meets retries and the half-open probe (no network: the scripted fake connector).

Each test guards a fault the real-server scenario (tests/faults/test_pg_failover.py) found: a read that
backed off on a dead primary before trying its replica, a read refused CIRCUIT_OPEN although the replica
could serve it, and a half-open probe won inside a retry loop whose verdict never settled the breaker;
and a probe that ends with no verdict (cancelled, or its deadline passed first) gives its turn back.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from scf.connectors.base import ServiceConnector
from scf.connectors.circuit import Admission, BreakerPolicy, BreakerState, LocalBreakerBoard, record
from scf.connectors.execution import Execution, endpoints_of
from scf.connectors.retry import RetryPolicy
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCode, ResourceError
from scf.schemas.operation import OperationOutcome, OperationRequest
from tests.unit.test_breaker import POLICY, FakeConnector, build, connection, down

REPLICA = [{"host": "replica", "port": 5433, "read_only": True}]


def quick_retries(_: ServiceConnector) -> RetryPolicy:
    return RetryPolicy(attempts=3, base_delay=0.001, jitter=0)


async def test_a_read_goes_to_the_replica_at_once_instead_of_retrying_a_dead_primary() -> None:
    fakes, endpoints = build([[down()], []], failover_hosts=REPLICA)
    execution = Execution(LocalBreakerBoard(POLICY), quick_retries)
    outcome = await execution.run(endpoints, OperationRequest(operation="query"), time.time() + 60, None)
    assert outcome.result_data["served_by"] == "replica"
    assert fakes[0].calls == 1  # no backoff on the primary first: the replica took it at once


async def test_a_write_without_a_writable_backup_still_retries_its_primary() -> None:
    fakes, endpoints = build([[down()], []], failover_hosts=REPLICA)
    execution = Execution(LocalBreakerBoard(POLICY), quick_retries)
    outcome = await execution.run(endpoints, OperationRequest(operation="insert"), time.time() + 60, None)
    assert outcome.result_data["served_by"] == "primary"
    assert (fakes[0].calls, fakes[1].calls) == (2, 0)


class OpensAfterFirstAdmission(LocalBreakerBoard):
    """The primary's breaker opens (on other calls' failures) right after this call was let in."""

    def __init__(self) -> None:
        super().__init__(POLICY)
        self.asked = 0

    async def admit(self, key: str) -> Admission:
        if key != "db":
            return await super().admit(key)
        self.asked += 1
        return Admission(True) if self.asked == 1 else Admission(False, retry_after=1.0)


async def test_a_read_moves_to_the_replica_when_the_breaker_opens_while_it_retries() -> None:
    busy = ResourceError("too many at once", code=ErrorCode.CONCURRENCY_LIMITED)  # retried, not counted
    fakes, endpoints = build([[busy], []], failover_hosts=REPLICA)
    execution = Execution(OpensAfterFirstAdmission(), quick_retries)
    outcome = await execution.run(endpoints, OperationRequest(operation="query"), time.time() + 60, None)
    assert outcome.result_data["served_by"] == "replica"
    assert fakes[0].calls == 1


async def test_a_retry_that_wins_the_half_open_probe_settles_the_breaker() -> None:
    now = [1000.0]
    policy = BreakerPolicy(window=10, min_failures=2, failure_rate=0.5, cooldown=5)
    board = LocalBreakerBoard(policy, clock=lambda: now[0])
    fakes, endpoints = build([[down(), down()]])  # then it answers: the service is back

    def retried(_: ServiceConnector, error: ConnectorError, attempt: int) -> None:
        if attempt == 2:  # the second failure opened the breaker; its cooldown passes during the backoff
            assert board.state("db") == "open"
            now[0] += policy.cooldown + 0.1

    execution = Execution(board, quick_retries)
    outcome = await execution.run(endpoints, OperationRequest(operation="insert"), time.time() + 60, retried)
    assert outcome.result_data["served_by"] == "primary"
    assert fakes[0].calls == 3
    assert board.state("db") == "closed"  # the probe's verdict closed it: nobody waits for a lost probe
    assert (await board.admit("db")).allowed


class Hangs(FakeConnector):
    """Answers nothing until cancelled: the probe an operation cancel or a worker shutdown interrupts."""

    def __init__(self, connection: ServiceConnection, started: asyncio.Event) -> None:
        super().__init__(connection, [])
        self.started = started

    async def execute(self, request: OperationRequest) -> OperationOutcome:
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("never answered")


def opened_and_cooled(now: list[float]) -> LocalBreakerBoard:
    policy = BreakerPolicy(window=10, min_failures=1, failure_rate=0.5, cooldown=5)
    board = LocalBreakerBoard(policy, clock=lambda: now[0])
    board._states["db"] = record(policy, BreakerState(window_start=now[0]), False, now[0])
    now[0] += policy.cooldown + 0.1
    return board


async def test_a_cancelled_probe_gives_its_turn_back_at_once() -> None:
    now = [1000.0]
    board = opened_and_cooled(now)
    started = asyncio.Event()
    hangs = Hangs(connection().endpoints()[0], started)
    execution = Execution(board, quick_retries)
    probing = asyncio.create_task(
        execution.run(endpoints_of(hangs, []), OperationRequest(operation="query"), time.time() + 60, None)
    )
    await started.wait()
    assert not (await board.admit("db")).allowed  # its probe is out: everyone else waits for the verdict

    probing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probing

    after = await board.admit("db")  # no verdict will come: the next call probes, not after a lease
    assert (after.allowed, after.probe) == (True, True)
    assert board.state("db") == "half_open"


async def test_a_probe_whose_deadline_passed_before_it_ran_gives_its_turn_back() -> None:
    now = [1000.0]
    board = opened_and_cooled(now)
    fakes, endpoints = build([[]])
    execution = Execution(board, quick_retries)
    with pytest.raises(ConnectorError) as raised:
        await execution.run(endpoints, OperationRequest(operation="query"), time.time() - 1, None)
    assert raised.value.code == ErrorCode.DEADLINE_EXCEEDED and fakes[0].calls == 0
    assert (await board.admit("db")).probe
