"""Scenario 9: a hung dependency, a server that accepts connections and never answers.

A second PostgreSQL connector points at a `HungServer`. Operations on it must come back as typed
failures within their deadline (plus a small margin for the reply's trip), while inserts through the
good connector `faults_db` keep succeeding at the same time. With a breaker that opens after a few
failures, repeated hangs must turn into fast CIRCUIT_OPEN answers with a retry_after.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from scf.fleet.client import FleetClient
from scf.schemas.operation import OperationResult
from tests.faults.conftest import SERVICE, TABLE, Stack
from tests.faults.harness import Load, check, dead_letter_ids, effects, settle_missing
from tests.faults.raw import fleet_alive
from tests.support.fleet import READY_LINE
from tests.support.hung import HungServer

pytestmark = pytest.mark.faults

WORKER = ["worker", "--types", "postgresql", "--concurrency", "16"]
DEADLINE = 3.0
#: The reply's own trip after the deadline: worker -> (dead letters ->) dispatcher -> caller.
MARGIN = 1.0
HUNG_CODES = frozenset({"TIMEOUT", "CONNECTION_FAILED", "DEADLINE_EXCEEDED", "CIRCUIT_OPEN"})


@dataclass
class Hung:
    result: OperationResult
    seconds: float

    @property
    def code(self) -> str:
        return self.result.error.code if self.result.error is not None else "success"


@pytest.fixture
async def hung() -> AsyncIterator[HungServer]:
    async with HungServer() as server:
        yield server


async def register_hung(client: FleetClient, server: HungServer, name: str, connect_timeout: float) -> None:
    await client.create_connector(
        {
            "service_type": "postgresql",
            "service_name": name,
            "host": server.host,
            "port": server.port,
            "database": "postgres",
            "username": "postgres",
            "connection_timeout": connect_timeout,
            "retry_attempts": 0,
            "test_on_create": False,
        }
    )


async def call_hung(client: FleetClient, name: str, timeout: float = DEADLINE) -> Hung:
    started = time.monotonic()
    result = await client.execute_operation(
        name,
        {
            "operation": "insert",
            "data": {"table_name": TABLE, "records": [{"req": 0, "run": "hung"}]},
            "timeout": timeout,
        },
    )
    return Hung(result, time.monotonic() - started)


async def hammer(client: FleetClient, name: str, count: int, concurrency: int) -> list[Hung]:
    answers: list[Hung] = []
    remaining = iter(range(count))

    async def lane() -> None:
        for _ in remaining:
            answers.append(await call_hung(client, name))

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return answers


def describe(answers: list[Hung]) -> str:
    seconds = [a.seconds for a in answers]
    retry_after = sorted(
        {
            a.result.error.retry_after
            for a in answers
            if a.result.error is not None and a.result.error.retry_after is not None
        }
    )
    return (
        f"codes {dict(Counter(a.code for a in answers))}, seconds median {statistics.median(seconds):.2f} "
        f"max {max(seconds):.2f}, retry_after {retry_after}"
    )


@pytest.mark.timeout(120)
async def test_hung_dependency_fails_within_its_deadline_while_the_good_connector_keeps_working(
    fleet: Stack, client: FleetClient, hung: HungServer
) -> None:
    name = f"hung_{uuid.uuid4().hex[:6]}"
    await register_hung(client, hung, name, connect_timeout=2)
    load = Load(client, SERVICE, TABLE, keyed=True, timeout=20)
    good = asyncio.ensure_future(load.run(300, concurrency=8, pace=0.05))
    answers = await hammer(client, name, 40, concurrency=8)
    await good
    await settle_missing(client, load.sent)
    verdict = check(
        load.sent, await effects(fleet.postgres.dsn, TABLE, load.run_id), await dead_letter_ids(client)
    )
    letters = (await client.dead_letters(service_name=name, limit=1000)).dead_letters
    alive = fleet_alive(fleet)

    print(
        f"\nhung dependency (connect timeout 2s, deadline {DEADLINE:g}s): 40 calls: {describe(answers)}; "
        f"hung server accepted {hung.accepted}; "
        f"dead letters {dict(Counter(d.reason.value for d in letters))}; "
        f"good connector meanwhile {verdict.summary()}; fleet alive {alive}"
    )
    assert {a.code for a in answers} <= HUNG_CODES
    assert max(a.seconds for a in answers) <= DEADLINE + MARGIN
    assert (verdict.lost, verdict.duplicated, verdict.unexpected) == ([], [], [])
    assert len(verdict.ok) == 300
    assert all(alive.values()), alive


SENSITIVE = {"SCF_BREAKER_MIN_FAILURES": "3", "SCF_BREAKER_COOLDOWN": "3"}


def respawn(fleet: Stack, name: str, **env: str) -> None:
    """Restart one worker and wait for ITS ready line.

    `Stack.spawn` under an existing name appends to the same log file, whose earlier ready line makes
    `wait_ready` return at once (reported to the lead); counting the ready lines works around it.
    """
    before = fleet.processes[name].output().count(READY_LINE)
    fleet.spawn(name, WORKER, **env)
    deadline = time.monotonic() + 60
    while fleet.processes[name].output().count(READY_LINE) <= before:
        assert time.monotonic() < deadline, f"{name} not ready after a restart"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def sensitive_fleet(fleet: Stack) -> Iterator[Stack]:
    """Both workers restarted with a breaker that opens after three failures (the suite's default: 20)."""
    for n in (1, 2):
        respawn(fleet, f"worker{n}", **SENSITIVE)
    yield fleet
    for n in (1, 2):
        respawn(fleet, f"worker{n}")


async def until_open(client: FleetClient, name: str, limit: int = 10) -> list[Hung]:
    """Call one at a time until the breaker answers CIRCUIT_OPEN (at most `limit` calls)."""
    answers: list[Hung] = []
    while len(answers) < limit and (not answers or answers[-1].code != "CIRCUIT_OPEN"):
        answers.append(await call_hung(client, name))
    return answers


async def after_cooldown(answer: Hung) -> None:
    assert answer.result.error is not None and answer.result.error.retry_after is not None
    await asyncio.sleep(answer.result.error.retry_after + 0.6)  # + the workers' view refresh (0.5 s)


@pytest.mark.timeout(120)
async def test_repeated_hangs_open_the_breaker_and_calls_then_fail_fast(
    sensitive_fleet: Stack, client: FleetClient, hung: HungServer
) -> None:
    crowd_name, name = f"hung_{uuid.uuid4().hex[:6]}", f"hung_{uuid.uuid4().hex[:6]}"
    await register_hung(client, hung, crowd_name, connect_timeout=2)
    await register_hung(client, hung, name, connect_timeout=2)
    crowd = await hammer(client, crowd_name, 24, concurrency=8)  # observed, not asserted: see the report
    opening = await until_open(client, name)
    fast = await hammer(client, name, 20, concurrency=4)
    await after_cooldown(fast[-1])
    probe = await call_hung(client, name)  # half-open: one probe, which hangs and fails
    reopened = await call_hung(client, name)
    alive = fleet_alive(sensitive_fleet)

    print(
        f"\nbreaker (opens after 3 failures, cooldown {SENSITIVE['SCF_BREAKER_COOLDOWN']}s): 24 concurrent "
        f"hung calls (8 at a time): {describe(crowd)}; one at a time: opened after "
        f"{len(opening) - 1} hung calls ({[a.code for a in opening]}); then 20 calls: {describe(fast)}; "
        f"after the cooldown the probe got {probe.code} in {probe.seconds:.2f}s, the next call "
        f"{reopened.code} in {reopened.seconds:.2f}s; fleet alive {alive}"
    )
    assert {a.code for a in crowd} <= HUNG_CODES
    assert max(a.seconds for a in crowd) <= DEADLINE + MARGIN
    assert opening[-1].code == "CIRCUIT_OPEN"
    assert {a.code for a in opening[:-1]} <= HUNG_CODES - {"CIRCUIT_OPEN"}
    assert {a.code for a in fast} == {"CIRCUIT_OPEN"}
    assert all(a.result.error and a.result.error.retry_after for a in fast)
    assert max(a.seconds for a in fast) < 0.5
    assert probe.code in {"TIMEOUT", "CONNECTION_FAILED"}
    assert probe.seconds <= DEADLINE + MARGIN
    assert reopened.code == "CIRCUIT_OPEN"
    assert all(alive.values()), alive


@pytest.mark.timeout(120)
async def test_a_probe_that_runs_out_of_deadline_does_not_close_the_breaker(
    sensitive_fleet: Stack, client: FleetClient, hung: HungServer
) -> None:
    name = f"hung_{uuid.uuid4().hex[:6]}"
    await register_hung(client, hung, name, connect_timeout=2)
    opening = await until_open(client, name)
    await after_cooldown(opening[-1])
    probe = await call_hung(client, name, timeout=1.0)  # shorter than the connect timeout
    after = await call_hung(client, name)

    print(
        f"\nprobe past its deadline: opened after {len(opening) - 1} hung calls; the probe (deadline 1s) got "
        f"{probe.code} in {probe.seconds:.2f}s; the next call got {after.code} in {after.seconds:.2f}s"
    )
    assert opening[-1].code == "CIRCUIT_OPEN"
    assert probe.code == "DEADLINE_EXCEEDED"
    assert after.code == "CIRCUIT_OPEN", "a probe that never answered must not close the breaker"
