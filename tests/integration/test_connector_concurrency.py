"""A connector's `max_concurrent_operations` holds across the fleet: operations beyond it wait their
turn (within their deadline), and one whose deadline passes while waiting fails CONCURRENCY_LIMITED.

Real PostgreSQL (`pg_sleep`), the session fleet's dispatcher and worker."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio

from scf.fleet import keys
from scf.fleet.client import FleetClient

pytestmark = pytest.mark.integration

SLEEP = {"operation": "query", "parameters": {"query": "SELECT pg_sleep(0.6) IS NULL AS slept"}}


async def slot_taken(redis_url: str, name: str) -> None:
    """Wait (bounded) until an operation holds one of the connector's slots in Redis."""
    store = redis.asyncio.Redis.from_url(redis_url)
    try:
        async with asyncio.timeout(10):
            while not await store.zcard(keys.quota_slots(name)):
                await asyncio.sleep(0.01)
    finally:
        await store.aclose()


async def test_operations_beyond_the_limit_wait_their_turn_or_fail_concurrency_limited(
    client: FleetClient, redis_url: str
) -> None:
    name = f"limited_pg_{uuid.uuid4().hex[:6]}"
    await client.create_connector(
        {
            "service_type": "postgresql",
            "service_name": name,
            "host": "127.0.0.1",
            "database": "test",
            "username": "postgres",
            "test_on_create": False,
            "max_concurrent_operations": 1,
        }
    )
    try:
        await client.execute_operation(name, {"operation": "query", "parameters": {"query": "SELECT 1"}})
        started = time.monotonic()
        both = await asyncio.gather(
            client.execute_operation(name, SLEEP), client.execute_operation(name, SLEEP)
        )
        took = time.monotonic() - started
        holder = asyncio.ensure_future(client.execute_operation(name, SLEEP))
        await slot_taken(redis_url, name)  # the holder has the one slot now
        late = await client.execute_operation(name, {**SLEEP, "timeout": 0.3})
        await holder
    finally:
        await client.delete_connector(name)
    assert all(r.status == "success" for r in both), [r.error for r in both]
    assert took >= 1.1, f"two 0.6 s queries with one slot took {took:.2f} s"  # one after the other
    assert late.error is not None and late.error.code == "CONCURRENCY_LIMITED", late.error
