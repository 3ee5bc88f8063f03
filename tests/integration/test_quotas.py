"""Quotas on a real Redis (an empty private database): GCRA rates per principal, connector slots.

Two StateStore connections stand for two processes (a gateway and a worker, or two gateways): they
share one quota because the state and the clock are Redis's. A second check runs two OS processes.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
from cryptography.fernet import Fernet

from scf.fleet.crypto import SecretBox
from scf.fleet.quotas import ConcurrencyLimiter, RateLimiter
from scf.fleet.state import StateStore
from scf.schemas.access import Principal
from scf.schemas.errors import ConnectorError
from tests.support.services import claim_redis_db

pytestmark = pytest.mark.integration


@pytest.fixture
async def stores() -> AsyncIterator[tuple[StateStore, StateStore, str]]:
    claimed = claim_redis_db()
    box = SecretBox([Fernet.generate_key().decode()])
    first, second = StateStore.from_url(claimed.url, box), StateStore.from_url(claimed.url, box)
    try:
        yield first, second, claimed.url
    finally:
        await first.close()
        await second.close()
        claimed.release()


async def test_a_burst_beyond_the_quota_is_refused_with_an_honest_retry_after(
    stores: tuple[StateStore, StateStore, str],
) -> None:
    limiter = RateLimiter(stores[0])
    answers = [await limiter.take("alice", rate=20, burst=5) for _ in range(8)]
    assert answers[:5] == [None] * 5
    refused = [a for a in answers[5:] if a is not None]
    assert len(refused) == 3 and all(0 < wait <= 0.05 + 1e-6 for wait in refused)
    await asyncio.sleep(refused[-1])  # honest: after the wait it was told, one more is admitted
    assert await limiter.take("alice", rate=20, burst=5) is None
    assert await limiter.take("alice", rate=20, burst=5) is not None  # ... and only one
    assert await limiter.take("bob", rate=20, burst=5) is None  # principals do not share


async def test_two_connections_share_one_quota(stores: tuple[StateStore, StateStore, str]) -> None:
    one, two = RateLimiter(stores[0]), RateLimiter(stores[1])
    admitted = 0
    for i in range(20):
        limiter = one if i % 2 else two
        admitted += await limiter.take("carol", rate=1, burst=6) is None
    assert admitted == 6


def test_two_processes_together_cannot_exceed_the_burst(stores: tuple[StateStore, StateStore, str]) -> None:
    url = stores[2]
    script = f"""
import asyncio
from cryptography.fernet import Fernet
from scf.fleet.crypto import SecretBox
from scf.fleet.quotas import RateLimiter
from scf.fleet.state import StateStore

async def main() -> None:
    store = StateStore.from_url({url!r}, SecretBox([Fernet.generate_key().decode()]))
    limiter = RateLimiter(store)
    admitted = sum([await limiter.take("dave", rate=0.5, burst=10) is None for _ in range(50)])
    print(admitted)
    await store.close()

asyncio.run(main())
"""
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    counts = [int(p.communicate(timeout=60)[0].strip()) for p in procs]
    assert sum(counts) == 10, counts


async def test_charge_refuses_rate_limited_and_unlimited_costs_nothing(
    stores: tuple[StateStore, StateStore, str],
) -> None:
    limiter = RateLimiter(stores[0])
    capped = Principal("erin", frozenset(), rate=1, burst=1)
    await limiter.charge(capped)
    with pytest.raises(ConnectorError) as refused:
        await limiter.charge(capped)
    assert refused.value.code == "RATE_LIMITED" and refused.value.retry_after is not None
    assert 0 < refused.value.retry_after <= 1.0
    free = Principal("frank", frozenset(), rate=0, burst=1)
    for _ in range(100):
        await limiter.charge(free)
    assert await stores[0].redis.dbsize() == 1  # only erin's state: unlimited writes nothing


async def test_connector_slots_admit_exactly_the_limit_and_come_back(
    stores: tuple[StateStore, StateStore, str],
) -> None:
    slots, other = ConcurrencyLimiter(stores[0]), ConcurrencyLimiter(stores[1])
    held = [await slots.acquire("pg", 3, lease=30) for _ in range(3)]
    assert all(held)
    assert await other.acquire("pg", 3, lease=30) is None
    assert await other.acquire("es", 3, lease=30) is not None  # per connector
    first = held[0]
    assert first is not None
    await slots.release("pg", first)
    assert await other.acquire("pg", 3, lease=30) is not None
    short = ConcurrencyLimiter(stores[0])
    assert await short.acquire("mq", 1, lease=0.05) is not None
    assert await short.acquire("mq", 1, lease=0.05) is None
    time.sleep(0.1)  # the holder "died": its lease runs out
    assert await short.acquire("mq", 1, lease=30) is not None


async def test_charging_ahead_for_a_large_burst_never_admits_more_than_the_quota(
    stores: tuple[StateStore, StateStore, str],
) -> None:
    """A burst of 1,000 is charged 10 requests per Redis call; two processes together still get
    exactly the burst (paid tokens are used up or lost, never admitted twice)."""
    one, two = RateLimiter(stores[0]), RateLimiter(stores[1])
    principal = Principal("gina", frozenset(), rate=0.001, burst=1000)
    admitted = 0
    for i in range(1200):
        try:
            await (one if i % 2 else two).charge(principal)
            admitted += 1
        except ConnectorError as exc:
            assert exc.code == "RATE_LIMITED"
    assert admitted == 1000
