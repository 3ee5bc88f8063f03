"""A clustered broker: the node that leads `scf.ops.postgresql` is SIGKILLed under keyed insert load.

The fleet (dispatcher, two postgresql workers) and the caller are given all three nodes of a private
RabbitMQ cluster in `SCF_AMQP_URL`. The work queues are quorum queues with a member on every node, so
losing the leader costs an election, not data: the fleet moves its connections on to the next node,
unacked deliveries come back from the new leader and the idempotency keys keep every effect single.
This module brings its own `stack` (the cluster instead of one private broker); the `fleet` and
`client` fixtures of conftest.py build on it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet

from scf.fleet.client import FleetClient
from scf.schemas.topology import work_queue
from tests.faults.conftest import SERVICE, TABLE, Stack
from tests.faults.harness import Load, Sent, Verdict, check, dead_letter_ids, effects, settle_missing
from tests.support.fleet import fleet_env
from tests.support.private_services import PrivatePostgres, PrivateRedis
from tests.support.rabbit_cluster import ClusterNode, LeaderChange, RabbitCluster, require_rabbitmq_server

pytestmark = pytest.mark.faults

QUEUE = work_queue("postgresql")
COUNT = 1200  # at 16 lanes and 0.15 s pace, about 12 s of load; the kill comes 3 s in


@dataclass
class ClusterStack(Stack):
    cluster: RabbitCluster | None = None
    vhost: str = ""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterStack]:
    require_rabbitmq_server()
    logs = tmp_path_factory.mktemp("cluster-logs")
    vhost = f"faults-{uuid.uuid4().hex[:6]}"
    with PrivatePostgres() as postgres, PrivateRedis(persistent=True) as redis, RabbitCluster() as cluster:
        print(
            f"\ncluster boot {cluster.boot_seconds:.1f}s (3 nodes at once), join {cluster.join_seconds:.1f}s"
        )
        amqp_url = ",".join(cluster.add_vhost(vhost))
        env = fleet_env(amqp_url, redis.url, Fernet.generate_key().decode(), logs / "data")
        env.update({"SCF_DELIVERY_LIMIT": "5", "SCF_BREAKER_MIN_FAILURES": "20", "SCF_LOG_LEVEL": "info"})
        # `rabbit` is the node everyone connects to first; the scenario kills whichever node leads
        built = ClusterStack(
            postgres, redis, cluster.nodes[0], amqp_url, env, logs, cluster=cluster, vhost=vhost
        )
        try:
            yield built
        finally:
            built.stop_all()


class TimedLoad(Load):
    """`Load` that also notes when each request was sent and when its success came back (monotonic)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.succeeded: list[tuple[float, float]] = []  # (sent, answered) of every success

    async def send(self, sent: Sent, client: FleetClient | None = None) -> None:
        began = time.monotonic()
        await super().send(sent, client)
        if sent.code == "success":
            self.succeeded.append((began, time.monotonic()))


@dataclass(frozen=True)
class Recovery:
    """Seconds from the kill until: the new leader was elected, the first success was answered, the
    first request sent after the kill was answered with success; the longest gap between two successes
    from the kill until the last request was sent (while load was offered); the slowest success of a
    request in flight at the kill."""

    leader_elected: float
    leader_watched: bool
    first_answer: float | None
    first_round_trip: float | None
    longest_gap: float | None
    slowest_in_flight: float | None

    @classmethod
    def measure(cls, killed_at: float, killed_wall: float, change: LeaderChange, load: TimedLoad) -> Recovery:
        answers = sorted(answered for _, answered in load.succeeded if answered > killed_at)
        round_trips = [answered for began, answered in load.succeeded if began > killed_at]
        last_sent = max(began for began, _ in load.succeeded)
        edges = [killed_at, *(answered for answered in answers if answered <= last_sent)]
        gaps = [later - earlier for earlier, later in itertools.pairwise(edges)]
        in_flight = [answered - began for began, answered in load.succeeded if began <= killed_at < answered]
        return cls(
            leader_elected=change.at - killed_wall,
            leader_watched=change.watched,
            first_answer=answers[0] - killed_at if answers else None,
            first_round_trip=min(round_trips) - killed_at if round_trips else None,
            longest_gap=max(gaps) if gaps else None,
            slowest_in_flight=max(in_flight) if in_flight else None,
        )

    def line(self) -> str:
        def fmt(value: float | None) -> str:
            return "never" if value is None else f"{value:.2f}s"

        bound = "" if self.leader_watched else " (upper bound: the watch started late)"
        return (
            f"new leader {fmt(self.leader_elected)}{bound}, first success answered {fmt(self.first_answer)}, "
            f"first request sent after the kill answered {fmt(self.first_round_trip)}, "
            f"longest gap between successes {fmt(self.longest_gap)}, "
            f"slowest call in flight at the kill {fmt(self.slowest_in_flight)}"
        )


async def kill_leader_under_load(
    stack: ClusterStack, client: FleetClient
) -> tuple[Verdict, Recovery, ClusterNode, LeaderChange]:
    cluster = stack.cluster
    assert cluster is not None
    leader = await asyncio.to_thread(cluster.leader, stack.vhost, QUEUE)
    witness = next(node for node in cluster.nodes if node is not leader)
    for node in cluster.nodes:  # crash the broker, not its quorum bookkeeping (PrivateRabbit docstring)
        await asyncio.to_thread(node.sync_quorum_metadata)

    tag = f"scf_watch_{uuid.uuid4().hex[:8]}"
    watch = asyncio.ensure_future(
        asyncio.to_thread(cluster.await_leader_change, stack.vhost, QUEUE, leader.node, witness, 120.0, tag)
    )
    async with asyncio.timeout(60):  # rabbitmqctl takes seconds to start on a busy machine
        while not await asyncio.to_thread(cluster.watching, witness, tag):
            assert not watch.done(), watch.result()
            await asyncio.sleep(0.2)
    load = TimedLoad(client, SERVICE, TABLE, keyed=True, timeout=45)
    running = asyncio.ensure_future(load.run(COUNT, concurrency=16, pace=0.15))
    async with asyncio.timeout(60):  # the load is flowing: answers are coming back
        while sum(s.code is not None for s in load.sent) < 150:
            await asyncio.sleep(0.05)
    assert not running.done(), "the load must still be running when the leader is killed"
    killed_wall, killed_at = time.time(), time.monotonic()
    await asyncio.to_thread(leader.kill)
    change = await watch
    in_flight_after_kill = not running.done()
    await running
    assert in_flight_after_kill, "the load must outlast the election"
    await settle_missing(client, load.sent, wait=60)
    verdict = check(
        load.sent, await effects(stack.postgres.dsn, TABLE, load.run_id), await dead_letter_ids(client)
    )
    return verdict, Recovery.measure(killed_at, killed_wall, change, load), leader, change


@pytest.mark.timeout(420)
async def test_broker_leader_node_killed_under_keyed_load_loses_nothing(
    fleet: ClusterStack, client: FleetClient
) -> None:
    cluster = fleet.cluster
    assert cluster is not None
    members = await asyncio.to_thread(cluster.members, fleet.vhost, QUEUE)
    assert set(members) == {node.node for node in cluster.nodes}, f"{QUEUE} is not on every node: {members}"

    verdict, recovery, killed, change = await kill_leader_under_load(fleet, client)
    print(f"\nkilled {killed.node} (leader of {QUEUE}); new leader {change.leader}")
    print(f"recovery: {recovery.line()}")
    print(f"verdict: {verdict.summary()}")

    assert change.leader != killed.node
    assert (verdict.lost, verdict.duplicated, verdict.unexpected) == ([], [], [])
    assert len(verdict.ok) + len(verdict.dead_lettered) == COUNT
    assert recovery.first_round_trip is not None, "no request sent after the kill succeeded"
    for name in ("dispatcher", "worker1", "worker2"):
        assert fleet.processes[name].proc.poll() is None, f"{name} died with the broker node"

    restarted = time.monotonic()
    await asyncio.to_thread(killed.start)
    members = await asyncio.to_thread(cluster.await_rejoined, killed, fleet.vhost, QUEUE)
    took = time.monotonic() - restarted
    print(f"restarted {killed.node}: rejoined as a {members[killed.node]} in {took:.1f}s")
    after = await client.execute_operation(
        SERVICE, {"operation": "query", "parameters": {"query": f"SELECT count(*) AS n FROM {TABLE}"}}
    )
    assert after.error is None, after.error
