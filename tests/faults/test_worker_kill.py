"""Scenario 1: workers SIGKILLed mid-operation, again and again, under load (keyed and unkeyed inserts)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scf.fleet.client import FleetClient
from tests.faults.conftest import SERVICE, TABLE, Stack
from tests.faults.harness import Load, check, dead_letter_ids, effects, settle_missing

pytestmark = pytest.mark.faults

WORKER = ["worker", "--types", "postgresql", "--concurrency", "16"]
COUNT = 3000


async def kill_workers(fleet: Stack, load: asyncio.Future[Any], every: float = 1.0) -> int:
    """SIGKILL a worker (alternating) every `every` seconds while the load runs, restarting each."""
    kills = 0
    while not load.done():
        await asyncio.sleep(every)
        name = f"worker{kills % 2 + 1}"
        fleet.processes[name].kill()
        kills += 1
        await asyncio.to_thread(fleet.spawn, name, WORKER)
    return kills


@pytest.mark.timeout(300)
@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "unkeyed"])
async def test_worker_killed_mid_insert_loses_nothing(fleet: Stack, client: FleetClient, keyed: bool) -> None:
    load = Load(client, SERVICE, TABLE, keyed=keyed, timeout=30)
    running = asyncio.ensure_future(load.run(COUNT, concurrency=24, pace=0.1))  # about 12 s of load
    kills = await kill_workers(fleet, running)
    await running
    await settle_missing(client, load.sent)
    verdict = check(
        load.sent, await effects(fleet.postgres.dsn, TABLE, load.run_id), await dead_letter_ids(client)
    )

    print(f"\nworker kills: {kills}, {'keyed' if keyed else 'unkeyed'}: {verdict.summary()}")
    assert kills >= 3
    assert verdict.lost == []
    assert verdict.unexpected == []
    if keyed:
        assert verdict.duplicated == []
    assert len(verdict.ok) + len(verdict.duplicated) + len(verdict.dead_lettered) == COUNT
