"""Scenario: the PostgreSQL primary SIGKILLed under reads and keyed writes, with a streaming replica as a
`read_only` failover host.

Every read answers with the server's port and `pg_is_in_recovery()`, so each answer says which server
served it. While the primary is down the replica must serve every read and every write must get a typed
error; once the primary is back (same port, same data dir), writes succeed again and reads return to it.
Every keyed write told success must be in the table exactly once, and a write told an outage error must
be either absent or, asked again with its key after the failback, a replay: never a second row.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from scf.fleet.client import FleetClient
from scf.schemas.operation import OperationResult
from tests.faults.conftest import Stack
from tests.faults.harness import effects
from tests.support.private_replica import PrivatePostgresReplica
from tests.support.private_services import PrivatePostgres

pytestmark = pytest.mark.faults

SERVICE = "failover_db"
TABLE = "failover_rows"
#: Which server answered, and how many rows it sees.
READ = f"SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby, count(*) AS n FROM {TABLE}"
#: Each request's own deadline (seconds): no caller may wait longer than this for its typed answer.
TIMEOUT = 8.0
#: A short breaker (3 failures open it, a probe after 1 s) so that the scenario takes seconds.
BREAKER_ENV = {"SCF_BREAKER_MIN_FAILURES": "3", "SCF_BREAKER_WINDOW": "5", "SCF_BREAKER_COOLDOWN": "1"}
#: What a write may be told while the primary is down: nothing was applied, or (for a keyed write) it is
#: safe to ask again with the same key. Not TIMEOUT: that is the client's own "no reply in time".
OUTAGE_CODES = frozenset({"CONNECTION_FAILED", "CIRCUIT_OPEN", "DEADLINE_EXCEEDED"})
#: The longest any wait for a phase of the scenario may take before the test fails saying which.
PHASE_BOUND = 45.0


@dataclass
class Answer:
    kind: str  # "read" or "write"
    index: int
    sent_at: float
    answered_at: float
    code: str  # "success" or the typed error's code
    message: str = ""
    port: int | None = None
    standby: bool | None = None
    replayed: bool = False


@dataclass
class Traffic:
    """Read lanes and keyed-write lanes through the fleet until `stop` is set."""

    client: FleetClient
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    answers: list[Answer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def key(self, index: int) -> str:
        return f"failover_{self.run}_{index}"

    def write_request(self, index: int) -> dict[str, Any]:
        return {
            "operation": "insert",
            "data": {"table_name": TABLE, "records": [{"req": index, "run": self.run}]},
            "idempotency_key": self.key(index),
            "timeout": TIMEOUT,
        }

    async def read(self, index: int) -> Answer:
        sent = time.monotonic()
        request = {"operation": "query", "parameters": {"query": READ}, "timeout": TIMEOUT}
        result = await self.client.execute_operation(SERVICE, request)
        answer = _answer("read", index, sent, result)
        if result.error is None:
            row = result.result_data["rows"][0]
            answer.port, answer.standby = int(row["port"]), bool(row["standby"])
        return answer

    async def write(self, index: int) -> Answer:
        sent = time.monotonic()
        result = await self.client.execute_operation(SERVICE, self.write_request(index))
        return _answer("write", index, sent, result)

    async def lane(self, kind: str, pause: float) -> None:
        call = self.read if kind == "read" else self.write
        while not self.stop.is_set():
            self.answers.append(await call(next(self._numbers)))
            await asyncio.sleep(pause)

    def of(self, kind: str, where: Callable[[Answer], bool] = lambda a: True) -> list[Answer]:
        return [a for a in self.answers if a.kind == kind and where(a)]


def _answer(kind: str, index: int, sent: float, result: OperationResult) -> Answer:
    error = result.error
    return Answer(
        kind,
        index,
        sent,
        time.monotonic(),
        "success" if error is None else error.code,
        "" if error is None else error.message,
        replayed=result.replayed,
    )


async def wait_for(
    what: str, condition: Callable[[], bool | Awaitable[bool]], bound: float = PHASE_BOUND
) -> None:
    """Poll `condition` until it holds; fail naming `what` if it does not within `bound` seconds."""
    deadline = time.monotonic() + bound
    while True:
        held = condition()
        if not isinstance(held, bool):
            held = await held
        if held:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {bound:g}s: {what}")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PrivatePostgres, PrivatePostgresReplica]]:
    with PrivatePostgres() as primary, PrivatePostgresReplica(primary) as replica:
        replica.wait_streaming()
        yield primary, replica


@pytest.fixture(scope="module")
def failover_fleet(stack: Stack) -> Stack:
    stack.spawn("dispatcher", ["dispatcher"])
    stack.spawn("worker1", ["worker", "--types", "postgresql", "--concurrency", "16"], **BREAKER_ENV)
    return stack


@pytest.fixture(scope="module")
async def failover_client(
    failover_fleet: Stack, servers: tuple[PrivatePostgres, PrivatePostgresReplica]
) -> AsyncIterator[FleetClient]:
    primary, replica = servers
    admin = await asyncpg.connect(primary.dsn)
    await admin.execute(f"CREATE TABLE {TABLE} (req int NOT NULL, run text NOT NULL)")
    await admin.executemany(f"INSERT INTO {TABLE} VALUES ($1, 'seed')", [(i,) for i in range(10)])
    written = await admin.fetchval("SELECT pg_current_wal_lsn()::text")
    await admin.close()
    standby = await asyncpg.connect(replica.dsn)
    try:

        async def replayed() -> bool:
            caught_up = "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn"
            return bool(await standby.fetchval(caught_up, written))

        await wait_for("the replica replays the seed rows", replayed)
        assert await standby.fetchval(f"SELECT count(*) FROM {TABLE}") == 10
    finally:
        await standby.close()
    async with await FleetClient.connect(failover_fleet.amqp_url, timeout=30) as client:
        await client.create_connector(
            {
                "service_type": "postgresql",
                "service_name": SERVICE,
                "host": primary.host,
                "port": primary.port,
                "database": "postgres",
                "username": "postgres",
                "connection_timeout": 2,
                "retry_attempts": 2,
                "failover_hosts": [{"host": replica.host, "port": replica.port, "read_only": True}],
                "custom_config": {"max_connections": 8},
            }
        )
        yield client


@pytest.mark.timeout(240)
async def test_primary_killed_reads_fail_over_to_replica_and_writes_fail_typed(
    failover_client: FleetClient, servers: tuple[PrivatePostgres, PrivatePostgresReplica]
) -> None:
    primary, replica = servers
    traffic = Traffic(failover_client)
    lanes = asyncio.gather(
        *(traffic.lane("read", 0.02) for _ in range(2)), *(traffic.lane("write", 0.05) for _ in range(2))
    )
    try:
        await wait_for(
            "steady traffic on the primary",
            lambda: (
                len(traffic.of("read", lambda a: a.port == primary.port)) >= 10
                and len(traffic.of("write", lambda a: a.code == "success")) >= 10
            ),
        )
        killed_at = time.monotonic()
        await primary.akill()
        dead_at = time.monotonic()  # a call sent before this may still have reached the primary
        await wait_for(
            "a read answered by the replica and a refused write, after the kill",
            lambda: (
                bool(traffic.of("read", lambda a: a.sent_at > killed_at and a.port == replica.port))
                and len(traffic.of("write", lambda a: a.sent_at > killed_at and a.code != "success")) >= 3
            ),
        )
        await asyncio.sleep(2.0)  # an outage of some seconds: the primary's breaker opens meanwhile
        restart_at = time.monotonic()
        await primary.astart()  # same port, same data dir: crash recovery, then it accepts again
        await wait_for(
            "a read answered by the primary and a successful write, after it is back",
            lambda: (
                bool(traffic.of("read", lambda a: a.answered_at > restart_at and a.port == primary.port))
                and bool(traffic.of("write", lambda a: a.sent_at > restart_at and a.code == "success"))
            ),
        )
        await asyncio.sleep(1.0)  # steady again on the primary
    finally:
        traffic.stop.set()
        await lanes

    reads, writes = traffic.of("read"), traffic.of("write")
    during = [a for a in traffic.answers if dead_at < a.sent_at and a.answered_at < restart_at]
    by_replica = [a for a in reads if a.port == replica.port]
    failed_writes = [a for a in writes if a.code != "success"]
    first_replica_read = min(a.answered_at for a in by_replica if a.sent_at > killed_at)
    first_primary_read = min(
        a.answered_at for a in reads if a.answered_at > restart_at and a.port == primary.port
    )

    # Ask again, with the same key, every write that was refused: a real caller would. A refused write
    # that did reach the table (its connection died after the commit) must come back as a replay.
    resent = [await traffic.write(a.index) for a in failed_writes]
    found = await effects(primary.dsn, TABLE, traffic.run)

    slowest_read = max((a.answered_at - a.sent_at for a in during if a.kind == "read"), default=0.0)
    slowest_refusal = max((a.answered_at - a.sent_at for a in failed_writes), default=0.0)
    refusals = dict(Counter(a.code for a in failed_writes))
    again = dict(Counter("replayed" if a.replayed else a.code for a in resent))
    print(
        f"\nprimary SIGKILL with a read-only replica: failover {first_replica_read - killed_at:.2f}s "
        f"(kill -> first read answered by the replica), failback {first_primary_read - restart_at:.2f}s "
        f"(restart -> first read answered by the primary, of which the primary's own start "
        f"{primary.last_start_seconds or 0:.2f}s), outage {restart_at - killed_at:.2f}s; "
        f"reads {len(reads)} ({len(by_replica)} by the replica, slowest during the outage "
        f"{slowest_read:.2f}s); writes {len(writes)} ({len(failed_writes)} refused: {refusals}, "
        f"slowest refusal {slowest_refusal:.2f}s); refused writes asked again: {again}"
    )
    # every read succeeded, and said truthfully which server served it
    assert Counter(a.code for a in reads) == Counter(success=len(reads))
    assert all(a.standby == (a.port == replica.port) for a in reads)
    assert {a.port for a in reads} == {primary.port, replica.port}
    # while the primary was down, reads came from the replica and no write succeeded
    assert [a for a in during if a.kind == "read" and a.port != replica.port] == []
    assert [a.index for a in during if a.kind == "write" and a.code == "success"] == []
    # every refusal was a typed outage error from the fleet, never a caller left without an answer
    assert {a.code for a in failed_writes} <= OUTAGE_CODES, [a.message for a in failed_writes]
    assert not [a.message for a in failed_writes if a.message.startswith("no reply")]
    assert failed_writes, "the outage refused no write: the scenario did not test it"
    # after the failback: every write asked again succeeded, and each keyed write is there exactly once
    assert Counter(a.code for a in resent) == Counter(success=len(resent))
    told_success = {a.index for a in writes if a.code == "success"}
    assert all(found[i] == 1 for i in told_success)
    assert found == Counter({a.index: 1 for a in writes}), "a keyed write missing or applied twice"

    async def replica_caught_up() -> bool:  # the replica streams from the restarted primary again
        return await effects(replica.dsn, TABLE, traffic.run) == found

    await wait_for("the replica catches up with the restarted primary", replica_caught_up)
