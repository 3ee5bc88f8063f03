"""The circuit breaker's state machine and the failover over endpoints (no network: a fake connector)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import pytest

from scf.connectors.base import ServiceConnector
from scf.connectors.circuit import (
    BreakerPolicy,
    BreakerState,
    LocalBreakerBoard,
    admit,
    counts_as_failure,
    record,
)
from scf.connectors.execution import Execution, candidates, endpoints_of
from scf.connectors.retry import RetryPolicy
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import (
    ConnectorError,
    ErrorCode,
    PermanentError,
    ResourceError,
    SecurityError,
    TransientError,
)
from scf.schemas.operation import OperationOutcome, OperationRequest, TestVerdict

POLICY = BreakerPolicy(window=10, min_failures=3, failure_rate=0.5, cooldown=5)


def run(state: BreakerState, outcomes: list[bool], start: float = 100.0) -> BreakerState:
    for i, ok in enumerate(outcomes):
        state = record(POLICY, state, ok, start + i * 0.1)
    return state


def test_a_breaker_opens_after_enough_failures_in_the_window() -> None:
    assert run(BreakerState(), [False, False]).state == "closed"
    opened = run(BreakerState(), [False, False, False])
    assert opened.state == "open"
    assert opened.opened_at == pytest.approx(100.2)


def test_a_low_failure_rate_keeps_it_closed() -> None:
    assert run(BreakerState(), [True] * 10 + [False] * 3).state == "closed"  # 3 of 13 < 50 %


def test_failures_in_an_old_window_are_forgotten() -> None:
    state = run(BreakerState(), [False, False])
    state = record(POLICY, state, False, 100 + 11)  # a new window starts
    assert state.state == "closed" and state.failures == 1


def test_open_rejects_until_the_cooldown_then_lets_one_probe_through() -> None:
    state = BreakerState(state="open", opened_at=100.0)
    first, state = admit(POLICY, state, 102.0)
    assert (first.allowed, first.probe) == (False, False)
    assert first.retry_after == pytest.approx(3.0)
    probe, state = admit(POLICY, state, 105.5)
    assert probe.allowed and probe.probe and state.state == "half_open"
    other, state = admit(POLICY, state, 105.6)
    assert not other.allowed  # one probe at a time


def test_a_good_probe_closes_and_a_bad_one_reopens() -> None:
    half_open = BreakerState(state="half_open", opened_at=100.0, probing=True)
    assert record(POLICY, half_open, True, 106.0).state == "closed"
    reopened = record(POLICY, half_open, False, 106.0)
    assert reopened.state == "open" and reopened.opened_at == 106.0


@pytest.mark.parametrize(
    ("error", "counts"),
    [
        (TransientError("x", code=ErrorCode.CONNECTION_FAILED), True),
        (TransientError("x", code=ErrorCode.TIMEOUT), True),
        (ResourceError("x", code=ErrorCode.TOO_MANY_CONNECTIONS), True),
        (ResourceError("x", code=ErrorCode.CIRCUIT_OPEN), False),
        (TransientError("x", code=ErrorCode.DEADLINE_EXCEEDED), False),
        (PermanentError("x", code=ErrorCode.INVALID_DATA), False),
        (SecurityError("x", code=ErrorCode.AUTHENTICATION_FAILED), False),
    ],
)
def test_only_service_trouble_counts_as_a_failure(error: ConnectorError, counts: bool) -> None:
    assert counts_as_failure(error) is counts


class FakeConnector(ServiceConnector):
    """Answers from a script: each call pops the next outcome ("ok" or an error to raise)."""

    service_type: ClassVar[str] = "postgresql"
    operations: ClassVar[frozenset[str]] = frozenset({"query", "insert"})
    read_operations: ClassVar[frozenset[str]] = frozenset({"query"})

    def __init__(self, connection: ServiceConnection, script: list[Any]) -> None:
        self.connection = connection
        self.script = script
        self.calls = 0
        self.type_config = None
        self._opened = True

    async def open(self) -> None:
        return None

    async def execute(self, request: OperationRequest) -> OperationOutcome:
        self.calls += 1
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, ConnectorError):
            raise step
        return OperationOutcome(result_data={"served_by": self.connection.host})

    async def _open(self) -> None: ...

    async def _check(self) -> dict[str, TestVerdict]:
        return {}

    async def _execute(self, request: OperationRequest) -> OperationOutcome:
        raise NotImplementedError

    async def _close(self) -> None: ...


def connection(**extra: Any) -> ServiceConnection:
    return ServiceConnection.model_validate(
        {"service_type": "postgresql", "service_name": "db", "host": "primary", "port": 5432, **extra}
    )


def down() -> TransientError:
    return TransientError("cannot reach the service", code=ErrorCode.CONNECTION_FAILED)


def build(scripts: list[list[Any]], **extra: Any) -> tuple[list[FakeConnector], Any]:
    conns = connection(**extra).endpoints()
    fakes = [FakeConnector(c, s) for c, s in zip(conns, scripts, strict=True)]
    return fakes, endpoints_of(fakes[0], list(fakes[1:]))


def no_retries(_: ServiceConnector) -> RetryPolicy:
    return RetryPolicy(attempts=0)


async def test_failover_hosts_parse_from_text_and_objects() -> None:
    conn = connection(failover_hosts=["replica-1:5433", {"host": "replica-2", "read_only": True}, "bare"])
    assert [(h.host, h.port, h.read_only) for h in conn.failover_hosts] == [
        ("replica-1", 5433, False),
        ("replica-2", None, True),
        ("bare", None, False),
    ]
    assert [(c.host, c.port) for c in conn.endpoints()] == [
        ("primary", 5432),
        ("replica-1", 5433),
        ("replica-2", 5432),
        ("bare", 5432),
    ]


async def test_reads_go_to_a_backup_while_the_primary_breaker_is_open_and_return_after_a_probe() -> None:
    now = [1000.0]
    board = LocalBreakerBoard(POLICY, clock=lambda: now[0])
    fakes, endpoints = build([[down(), down(), down()], []], failover_hosts=["replica:5433"])
    execution = Execution(board, no_retries)
    query = OperationRequest(operation="query")
    deadline = time.time() + 60

    served = [
        (await execution.run(endpoints, query, deadline, None)).result_data["served_by"] for _ in range(3)
    ]
    assert served == ["replica"] * 3  # each primary failure failed over; the third opened the breaker
    assert board.state("db") == "open"
    calls_before = fakes[0].calls
    assert (await execution.run(endpoints, query, deadline, None)).result_data["served_by"] == "replica"
    assert fakes[0].calls == calls_before  # open: the primary is not touched at all

    now[0] += POLICY.cooldown + 0.1
    assert (await execution.run(endpoints, query, deadline, None)).result_data["served_by"] == "primary"
    assert board.state("db") == "closed"


async def test_a_read_only_backup_takes_no_writes() -> None:
    board = LocalBreakerBoard(POLICY)
    fakes, endpoints = build(
        [[down()] * 5, []], failover_hosts=[{"host": "replica", "port": 5433, "read_only": True}]
    )
    execution = Execution(board, no_retries)
    assert [e.key for e in candidates(endpoints, "insert")] == ["db"]
    for _ in range(3):
        with pytest.raises(TransientError):
            await execution.run(endpoints, OperationRequest(operation="insert"), time.time() + 60, None)
    with pytest.raises(ResourceError) as caught:
        await execution.run(endpoints, OperationRequest(operation="insert"), time.time() + 60, None)
    assert caught.value.code == ErrorCode.CIRCUIT_OPEN
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= POLICY.cooldown
    assert fakes[1].calls == 0


async def test_a_write_fails_over_only_when_nothing_could_have_been_applied() -> None:
    timeout = TransientError("no answer", code=ErrorCode.TIMEOUT)
    fakes, endpoints = build([[timeout], []], failover_hosts=["backup:5433"])
    execution = Execution(LocalBreakerBoard(POLICY), no_retries)
    with pytest.raises(TransientError):  # a timed-out write may have committed: never replay it elsewhere
        await execution.run(endpoints, OperationRequest(operation="insert"), time.time() + 60, None)
    assert fakes[1].calls == 0

    fakes, endpoints = build([[down()], []], failover_hosts=["backup:5433"])
    execution = Execution(LocalBreakerBoard(POLICY), no_retries)
    outcome = await execution.run(endpoints, OperationRequest(operation="insert"), time.time() + 60, None)
    assert outcome.result_data["served_by"] == "backup"


async def test_retries_stop_as_soon_as_the_breaker_opens() -> None:
    fakes, endpoints = build([[down()] * 10])
    execution = Execution(
        LocalBreakerBoard(BreakerPolicy(min_failures=2, cooldown=30)),
        lambda _: RetryPolicy(attempts=8, base_delay=0.001),
    )
    with pytest.raises(ResourceError) as caught:
        await execution.run(endpoints, OperationRequest(operation="query"), time.time() + 60, None)
    assert caught.value.code == ErrorCode.CIRCUIT_OPEN
    assert fakes[0].calls == 2


async def test_a_bad_request_never_opens_the_breaker() -> None:
    bad = PermanentError("bad", code=ErrorCode.INVALID_DATA)
    fakes, endpoints = build([[bad] * 10])
    board = LocalBreakerBoard(POLICY)
    execution = Execution(board, no_retries)
    for _ in range(10):
        with pytest.raises(PermanentError):
            await execution.run(endpoints, OperationRequest(operation="query"), time.time() + 60, None)
    assert board.state("db") == "closed"
    assert fakes[0].calls == 10
