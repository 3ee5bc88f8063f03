"""Scenario 2: dispatchers SIGKILLed between consume and republish; and the negative control.

The negative control runs the same load and the same checker against a dispatcher started in the
deliberately broken mode `SCF_UNSAFE_EARLY_ACK=1` (it acks a request before its republish is
confirmed): killing it must show up as lost requests, which proves the checker can fail.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scf.fleet.client import FleetClient
from tests.faults.conftest import SERVICE, TABLE, Stack
from tests.faults.harness import Load, Verdict, check, dead_letter_ids, effects, settle_missing

pytestmark = pytest.mark.faults

DISPATCHER = ["dispatcher"]


async def kill_dispatchers(fleet: Stack, load: asyncio.Future[Any], names: list[str], every: float) -> int:
    kills = 0
    while not load.done():
        await asyncio.sleep(every)
        name = names[kills % len(names)]
        fleet.processes[name].kill()
        kills += 1
        await asyncio.to_thread(fleet.spawn, name, DISPATCHER)
    return kills


async def run_and_check(
    fleet: Stack, client: FleetClient, count: int, names: list[str], every: float
) -> tuple[int, Verdict]:
    load = Load(client, SERVICE, TABLE, keyed=True, timeout=30)
    running = asyncio.ensure_future(load.run(count, concurrency=32, pace=0.1))
    kills = await kill_dispatchers(fleet, running, names, every)
    await running
    await settle_missing(client, load.sent, wait=15)
    found = await effects(fleet.postgres.dsn, TABLE, load.run_id)
    return kills, check(load.sent, found, await dead_letter_ids(client))


@pytest.mark.timeout(300)
async def test_dispatcher_killed_between_consume_and_republish_loses_nothing(
    fleet: Stack, client: FleetClient
) -> None:
    fleet.spawn("dispatcher2", DISPATCHER)
    kills, verdict = await run_and_check(fleet, client, 3000, ["dispatcher", "dispatcher2"], every=0.7)

    print(f"\ndispatcher kills: {kills}: {verdict.summary()}")
    assert kills >= 3
    assert (verdict.lost, verdict.duplicated, verdict.unexpected) == ([], [], [])
    assert len(verdict.ok) == 3000


@pytest.mark.timeout(300)
async def test_negative_control_early_ack_dispatcher_loses_requests_and_the_checker_sees_it(
    fleet: Stack, client: FleetClient
) -> None:
    fleet.processes.pop("dispatcher2").stop(timeout=10)
    fleet.spawn("dispatcher", DISPATCHER, SCF_UNSAFE_EARLY_ACK="1")
    try:
        load = Load(client, SERVICE, TABLE, keyed=True, timeout=2)
        running = asyncio.ensure_future(load.run(1000, concurrency=64))
        kills = 0
        while not running.done() and kills < 5:
            await asyncio.sleep(0.5)
            fleet.processes["dispatcher"].kill()
            kills += 1
            await asyncio.to_thread(fleet.spawn, "dispatcher", DISPATCHER, SCF_UNSAFE_EARLY_ACK="1")
        await running
        await settle_missing(client, load.sent, wait=5)
        verdict = check(
            load.sent, await effects(fleet.postgres.dsn, TABLE, load.run_id), await dead_letter_ids(client)
        )
    finally:
        fleet.spawn("dispatcher", DISPATCHER)

    print(f"\nnegative control (early ack), dispatcher kills: {kills}: {verdict.summary()}")
    assert kills >= 1
    assert verdict.lost, "the checker must report the requests an early-acking dispatcher dropped"
