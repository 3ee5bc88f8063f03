"""Scenarios 3 and 4: the broker restarted and SIGKILLed, PostgreSQL and Redis restarted, under keyed load.

Replies in flight when the broker goes down are lost with the callers' reply queues; those callers
fetch the stored result by operation id afterwards (`settle_missing`), as a real caller would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from scf.fleet.client import FleetClient
from tests.faults.conftest import SERVICE, TABLE, Stack
from tests.faults.harness import Load, Verdict, check, dead_letter_ids, effects, settle_missing

pytestmark = pytest.mark.faults


async def under_load(
    fleet: Stack, client: FleetClient, fault: Callable[[], Awaitable[Any]], count: int = 800
) -> Verdict:
    load = Load(client, SERVICE, TABLE, keyed=True, timeout=45)
    running = asyncio.ensure_future(load.run(count, concurrency=16, pace=0.15))  # about 8 s of load
    await asyncio.sleep(1.0)  # the load is flowing
    assert not running.done(), "the load must still be running when the fault strikes"
    await fault()
    in_flight_after_fault = not running.done()
    await running
    assert in_flight_after_fault, "the load must outlast the fault"
    await settle_missing(client, load.sent, wait=60)
    return check(
        load.sent, await effects(fleet.postgres.dsn, TABLE, load.run_id), await dead_letter_ids(client)
    )


def assert_nothing_lost(verdict: Verdict, count: int) -> None:
    assert (verdict.lost, verdict.duplicated, verdict.unexpected) == ([], [], [])
    assert len(verdict.ok) + len(verdict.dead_lettered) == count


@pytest.mark.timeout(300)
async def test_broker_restart_under_load_loses_nothing(fleet: Stack, client: FleetClient) -> None:
    verdict = await under_load(
        fleet, client, lambda: asyncio.to_thread(fleet.rabbit.restart, immediate=False)
    )
    print(f"\nbroker graceful restart: {verdict.summary()}")
    assert_nothing_lost(verdict, 800)


@pytest.mark.timeout(300)
async def test_broker_sigkill_under_load_loses_nothing(fleet: Stack, client: FleetClient) -> None:
    async def crash() -> None:
        await asyncio.to_thread(fleet.rabbit.sync_quorum_metadata)
        await asyncio.to_thread(fleet.rabbit.kill)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(fleet.rabbit.start)

    verdict = await under_load(fleet, client, crash)
    print(f"\nbroker kill -9: {verdict.summary()}")
    assert_nothing_lost(verdict, 800)


@pytest.mark.timeout(300)
async def test_postgresql_immediate_restart_under_load_loses_nothing(
    fleet: Stack, client: FleetClient
) -> None:
    async def crash() -> None:
        await asyncio.to_thread(fleet.postgres.restart, immediate=True)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(fleet.postgres.restart, immediate=True)

    verdict = await under_load(fleet, client, crash)
    print(f"\npostgresql restart -m immediate (twice): {verdict.summary()}")
    assert_nothing_lost(verdict, 800)


@pytest.mark.timeout(300)
async def test_redis_restart_and_sigkill_under_load_loses_nothing(fleet: Stack, client: FleetClient) -> None:
    async def crash() -> None:
        await asyncio.to_thread(fleet.redis.restart, immediate=False)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(fleet.redis.kill)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(fleet.redis.start)

    verdict = await under_load(fleet, client, crash)
    print(f"\nredis restart and kill -9: {verdict.summary()}")
    assert_nothing_lost(verdict, 800)
    for name in ("dispatcher", "worker1", "worker2"):
        assert fleet.processes[name].proc.poll() is None, f"{name} died"
