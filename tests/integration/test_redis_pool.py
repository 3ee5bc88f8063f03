"""A burst of concurrent state calls waits for a free Redis connection instead of failing.

redis-py's default asyncio pool refuses a call past 100 connections in use ("Too many connections");
a dispatcher's first burst of new-route calls met it as STATE_UNAVAILABLE (bench/scaleout.py).
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from scf.fleet import redis_client
from scf.fleet.crypto import SecretBox
from scf.fleet.state import StateStore
from tests.support.services import claim_redis_db

pytestmark = pytest.mark.integration


async def test_a_burst_past_the_pool_size_waits_and_succeeds() -> None:
    claimed = claim_redis_db()
    state = StateStore.from_url(claimed.url, SecretBox([Fernet.generate_key().decode()]))
    try:
        burst = [state.redis.set(f"burst:{n}", n) for n in range(redis_client.POOL_SIZE * 5)]
        answers = await asyncio.gather(*burst, return_exceptions=True)
        pool = state.redis.connection_pool
        opened = len(pool._in_use_connections) + len(pool._available_connections)
    finally:
        await state.close()
        claimed.release()

    assert [a for a in answers if a is not True] == []
    assert opened <= redis_client.POOL_SIZE


async def test_the_default_pool_would_have_refused_the_same_burst() -> None:
    """The negative control: what the fleet's pool is for."""
    claimed = claim_redis_db()
    plain = aioredis.Redis.from_url(claimed.url)
    try:
        answers = await asyncio.gather(
            *(plain.set(f"burst:{n}", n) for n in range(redis_client.POOL_SIZE * 5)), return_exceptions=True
        )
    finally:
        await plain.aclose()
        claimed.release()
    assert any("Too many connections" in str(a) for a in answers if isinstance(a, Exception))
