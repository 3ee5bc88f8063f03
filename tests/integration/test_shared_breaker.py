"""The fleet-wide circuit breaker in real Redis: two workers' boards share one breaker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from scf.connectors.circuit import BreakerPolicy
from scf.fleet import keys
from scf.fleet.crypto import SecretBox
from scf.fleet.state import StateStore
from scf.worker.shared_breakers import RedisBreakerBoard
from tests.support.services import claim_redis_db

pytestmark = pytest.mark.integration

POLICY = BreakerPolicy(window=30, min_failures=4, failure_rate=0.5, cooldown=5)


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    claimed = claim_redis_db()
    redis = aioredis.Redis.from_url(claimed.url, decode_responses=True)
    try:
        yield redis
    finally:
        await redis.aclose()
        claimed.release()


def board(client: aioredis.Redis, owner: str, now: list[float]) -> RedisBreakerBoard:
    state = StateStore(client, SecretBox([Fernet.generate_key().decode()]))  # the board's one way to Redis
    return RedisBreakerBoard(state, owner, POLICY, refresh=0.0, clock=lambda: now[0])


async def open_and_cool(b: RedisBreakerBoard, now: list[float]) -> None:
    for _ in range(POLICY.min_failures):
        await b.record("db", ok=False, probe=False)
    now[0] += POLICY.cooldown + 0.5


async def test_failures_of_two_workers_add_up_and_both_see_it_open(client: aioredis.Redis) -> None:
    now = [1_000_000.0]
    one, two = board(client, "w1", now), board(client, "w2", now)
    for b in (one, two, one):
        await b.record("db", ok=False, probe=False)
    assert (await two.admit("db")).allowed  # 3 failures: not yet
    await two.record("db", ok=False, probe=False)

    for b in (one, two):
        admission = await b.admit("db")
        assert not admission.allowed
        assert admission.retry_after == pytest.approx(POLICY.cooldown)
    assert await client.hget(keys.breaker("db"), "state") == "open"


async def test_exactly_one_worker_probes_and_its_success_closes_it_for_all(client: aioredis.Redis) -> None:
    now = [2_000_000.0]
    one, two = board(client, "w1", now), board(client, "w2", now)
    await open_and_cool(one, now)

    first, second = await one.admit("db"), await two.admit("db")
    assert (first.allowed, first.probe) == (True, True)
    assert not second.allowed
    await one.record("db", ok=True, probe=True)

    assert (await two.admit("db")).allowed
    assert await client.exists(keys.breaker("db")) == 0


async def test_a_failed_probe_reopens_for_another_cooldown(client: aioredis.Redis) -> None:
    now = [3_000_000.0]
    one = board(client, "w1", now)
    await open_and_cool(one, now)
    assert (await one.admit("db")).probe
    await one.record("db", ok=False, probe=True)

    again = await one.admit("db")
    assert not again.allowed and again.retry_after == pytest.approx(POLICY.cooldown)


async def test_without_redis_each_worker_keeps_a_local_breaker() -> None:
    unreachable = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    now = [4_000_000.0]
    local = board(unreachable, "w1", now)
    try:
        for _ in range(4):
            await local.record("db", ok=False, probe=False)
        admission = await local.admit("db")
    finally:
        await unreachable.aclose()
    assert not admission.allowed
    assert local.local.state("db") == "open"


async def test_a_probe_given_back_lets_another_worker_probe_at_once(client: aioredis.Redis) -> None:
    now = [5_000_000.0]
    one, two = board(client, "w1", now), board(client, "w2", now)
    await open_and_cool(one, now)
    assert (await one.admit("db")).probe
    assert not (await two.admit("db")).allowed  # w1's lease (30 s) holds everyone off

    await two.give_back("db")  # not w2's lease: it stays
    assert await client.get(keys.breaker_probe("db")) == "w1"
    await one.give_back("db")  # w1's probe was cancelled: no verdict

    taken = await two.admit("db")
    assert (taken.allowed, taken.probe) == (True, True)
    assert await client.get(keys.breaker_probe("db")) == "w2"
    assert await client.hget(keys.breaker("db"), "state") == "open"  # still open until a verdict
