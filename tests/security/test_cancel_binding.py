"""A cancel mark never outlives the claim on its operation id, so it cannot pre-empt the id's next user.

The mark lived two hours and the claim one (the result TTL): cancelling a finished operation left a mark
that stopped whoever used the id after the claim expired, for up to an hour (a caller reusing its own
deterministic ids, or one who squatted them and cancelled).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from scf.fleet import keys
from scf.fleet.client import FleetClient

pytestmark = pytest.mark.integration

SERVICE = f"sec_cancel_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def service(client: FleetClient) -> AsyncIterator[str]:
    await client.create_connector({"service_type": "csv", "service_name": SERVICE, "test_on_create": False})
    try:
        yield SERVICE
    finally:
        await client.delete_connector(SERVICE)


@pytest.fixture
async def state(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.from_url(redis_url, decode_responses=True)
    try:
        yield redis
    finally:
        await redis.aclose()


async def preview(client: FleetClient, service: str, operation_id: str) -> tuple[str, str | None]:
    result = await client.execute_operation(
        service,
        {"operation": "preview", "operation_id": operation_id, "data": {"file_data": "a,b\n1,2\n"}},
    )
    return result.status, result.error.code if result.error else None


async def test_the_mark_expires_with_the_claim(
    client: FleetClient, service: str, state: aioredis.Redis
) -> None:
    operation_id = f"op_cancel_ttl_{uuid.uuid4().hex[:8]}"
    assert await preview(client, service, operation_id) == ("success", None)

    cancel = await client.cancel_operation(operation_id)

    claim_ms = await state.pttl(keys.operation_claim(operation_id))
    mark_ms = await state.pttl(keys.cancelled(operation_id))
    assert cancel.operation_id == operation_id
    assert claim_ms > 0, "the finished operation's claim was not where expected (scf/fleet/keys.py)"
    assert 0 < mark_ms <= claim_ms + 1_000, f"the mark lives {mark_ms} ms, the claim {claim_ms} ms"


async def test_a_cancel_after_the_claim_expired_stops_no_later_request(
    client: FleetClient, service: str, state: aioredis.Redis
) -> None:
    operation_id = f"op_cancel_late_{uuid.uuid4().hex[:8]}"
    assert await preview(client, service, operation_id) == ("success", None)
    await state.delete(keys.operation_claim(operation_id))  # what its TTL does after the result TTL

    cancel = await client.cancel_operation(operation_id)  # finished: accepted, nothing left to stop
    again = await preview(client, service, operation_id)  # the id is free: a new request may take it

    assert cancel.operation_id == operation_id
    assert await state.exists(keys.cancelled(operation_id)) == 0
    assert again == ("success", None), again
