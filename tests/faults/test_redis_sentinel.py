"""Redis behind Sentinel loses its primary under keyed load: the fleet follows the promoted replica.

The fleet's own stack here: a private PostgreSQL, a replicated Redis (primary, replica, three
Sentinels; tests/support/redis_sentinel.py) and a vhost of its own on the machine's RabbitMQ. Fleet
processes reach Redis only through `SCF_REDIS_SENTINELS`. The primary is SIGKILLed while keyed inserts
run; nothing may be lost or applied twice, every caller is answered, and the registry written before
the kill is still there after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from scf.fleet.client import FleetClient
from scf.schemas.errors import ConnectorError
from tests.faults.conftest import prepare_effects
from tests.faults.harness import Load, check, dead_letter_ids, effects, recovery_seconds, settle_missing
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.private_services import PrivatePostgres
from tests.support.redis_sentinel import SERVICE as SENTINEL_SERVICE
from tests.support.redis_sentinel import ReplicatedRedis, ask
from tests.support.services import create_vhost, delete_vhost

pytestmark = pytest.mark.faults

SERVICE = "sentinel_db"
TABLE = "sentinel_effects"
COUNT = 2000


class SentinelFleet:
    def __init__(self, postgres: PrivatePostgres, redis: ReplicatedRedis, amqp_url: str, logs: Path) -> None:
        self.postgres, self.redis, self.amqp_url, self.logs = postgres, redis, amqp_url, logs
        self.env = fleet_env(amqp_url, redis.url, Fernet.generate_key().decode(), logs / "data")
        self.env.update(
            {"SCF_REDIS_SENTINELS": redis.sentinels, "SCF_REDIS_SENTINEL_SERVICE": SENTINEL_SERVICE}
        )
        self.processes: list[FleetProcess] = []

    def spawn(self, name: str, args: list[str]) -> None:
        process = FleetProcess(args, self.env, self.logs / f"{name}.log")
        self.processes.append(process)
        process.wait_ready(timeout=60)


@pytest.fixture(scope="module")
def sentinel_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelFleet]:
    logs = tmp_path_factory.mktemp("sentinel-logs")
    vhost = create_vhost()
    try:
        with PrivatePostgres() as postgres, ReplicatedRedis() as redis:  # each started on entering
            fleet = SentinelFleet(postgres, redis, vhost.amqp_url, logs)
            try:
                fleet.spawn("dispatcher", ["dispatcher"])
                for n in (1, 2):
                    fleet.spawn(f"worker{n}", ["worker", "--types", "postgresql", "--concurrency", "16"])
                yield fleet
            finally:
                for process in fleet.processes:
                    process.stop(timeout=10)
    finally:
        delete_vhost(vhost)


@pytest.fixture(scope="module")
async def client(sentinel_fleet: SentinelFleet) -> AsyncIterator[FleetClient]:
    async with await FleetClient.connect(sentinel_fleet.amqp_url, timeout=30) as fleet_client:
        await prepare_effects(fleet_client, sentinel_fleet.postgres, SERVICE, TABLE)
        yield fleet_client


async def probe_registry(client: FleetClient, since: float, until: asyncio.Future[Any]) -> list[float]:
    """Read the connector's state (a Redis read in the dispatcher) every 100 ms until `until` is done;
    the seconds after `since` at which a read failed."""
    failed: list[float] = []
    while not until.done():
        try:
            await client.connector_status(SERVICE)
        except ConnectorError:
            failed.append(round(time.monotonic() - since, 2))
        await asyncio.sleep(0.1)
    return failed


@pytest.mark.timeout(300)
async def test_the_redis_primary_killed_under_keyed_load_loses_nothing(
    sentinel_fleet: SentinelFleet, client: FleetClient
) -> None:
    redis = sentinel_fleet.redis
    # The registry must be on the replica before the primary dies (replication is asynchronous).
    assert ask(redis.primary.port, "WAIT", "1", "5000").startswith(b":1")
    load = Load(client, SERVICE, TABLE, keyed=True, timeout=30)
    running = asyncio.ensure_future(load.run(COUNT, concurrency=24, pace=0.1))
    async with asyncio.timeout(60):  # the fleet is under load (answers coming) before the kill
        while (answered_before := sum(s.code is not None for s in load.sent)) < 200:
            await asyncio.sleep(0.05)
    killed_at = time.monotonic()
    redis.primary.kill()
    probing = asyncio.ensure_future(probe_registry(client, killed_at, running))
    promoted = await asyncio.to_thread(redis.wait_primary_is, redis.replica.port, 30)
    await running
    registry_failures = await probing
    await settle_missing(client, load.sent)
    verdict = check(
        load.sent,
        await effects(sentinel_fleet.postgres.dsn, TABLE, load.run_id),
        await dead_letter_ids(client),
    )
    recovered = recovery_seconds(load.sent, killed_at)
    # the registry survived the failover: the connector is still known, through the new primary
    status = await client.connector_status(SERVICE)

    print(
        f"\nredis primary killed after {answered_before} answers; sentinels promoted the replica in "
        f"{promoted:.2f} s; last failed operation reply {recovered} s after the kill; registry reads "
        f"failed {len(registry_failures)} times, the last {max(registry_failures, default=0.0)} s after "
        f"the kill; {verdict.summary()}"
    )
    assert answered_before > 0
    assert status.service_name == SERVICE
    assert verdict.lost == []
    assert verdict.duplicated == []
    assert verdict.unexpected == []
    assert len(verdict.ok) + len(verdict.dead_lettered) == COUNT
    assert verdict.replies["none"] == 0  # every caller was answered
