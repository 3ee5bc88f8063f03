"""The Redis connector through the fleet: spec bodies over real RabbitMQ to the session's worker process,
which reaches the session's private Redis in a database claimed for this module (the fleet claims its own).

One operation of every family runs as a caller would run it (AMQP RPC through `FleetClient`), and a
typed error (WRONGTYPE) crosses the fleet as a failed reply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from scf.fleet.client import FleetClient
from scf.schemas.operation import OperationResult
from tests.support.services import RedisDb, claim_redis_db, require

pytestmark = pytest.mark.integration

SERVICE = "fleet_cache"


@pytest.fixture(scope="module")
def redis_db() -> Iterator[RedisDb]:
    require("Redis", "127.0.0.1", 6379)
    claimed = claim_redis_db()
    yield claimed
    claimed.release()


@pytest.fixture(scope="module")
async def cache(client: FleetClient, redis_db: RedisDb) -> AsyncIterator[str]:
    created = await client.create_connector(
        {
            "service_type": "redis",
            "service_name": SERVICE,
            "host": redis_db.host,
            "port": redis_db.port,
            "connection_timeout": 5,
            "retry_attempts": 1,
            "custom_config": {"db": redis_db.index, "session_ttl": 300},
        }
    )
    assert created.created.connector_info.connection_status == "connected", created.created
    yield SERVICE
    await client.delete_connector(SERVICE)


async def call(client: FleetClient, operation: str, data: dict[str, Any], **fields: Any) -> OperationResult:
    return await client.execute_operation(SERVICE, {"operation": operation, "data": data, **fields})


async def ok(client: FleetClient, operation: str, data: dict[str, Any], **fields: Any) -> Any:
    result = await call(client, operation, data, **fields)
    assert result.status == "success", (operation, result.error)
    return result.result_data


async def test_redis_connector_passes_its_connection_test(client: FleetClient, cache: str) -> None:
    tested = await client.test_connection(cache)

    assert tested.status == "success", tested.error
    assert set(tested.test_results.values()) == {"passed"}


async def test_one_operation_of_every_family_through_the_fleet(client: FleetClient, cache: str) -> None:
    await ok(client, "set", {"key": "greeting", "value": {"text": "hello"}, "ttl": 60})
    got = await ok(client, "get", {"key": "greeting"}, parameters={"decode": "json"})
    counted = await ok(client, "incr", {"key": "visits", "amount": 3})
    await ok(client, "hset", {"key": "user:1", "mapping": {"name": "Ada"}})
    field = await ok(client, "hget", {"key": "user:1", "field": "name"})
    await ok(client, "rpush", {"key": "jobs", "values": ["a", "b"]})
    jobs = await ok(client, "lrange", {"key": "jobs"})
    await ok(client, "sadd", {"key": "tags", "members": ["x", "y"]})
    tags = await ok(client, "scard", {"key": "tags"})
    await ok(client, "zadd", {"key": "board", "members": {"ada": 2, "bob": 1}})
    board = await ok(client, "zrange", {"key": "board", "reverse": True})
    entry = await ok(client, "xadd", {"key": "events", "fields": {"kind": "login"}})
    events = await ok(client, "xrange", {"key": "events"})
    published = await ok(client, "publish", {"channel": "news", "message": "hi"})
    session = await ok(client, "session_create", {"data": {"user": "ada"}})
    restored = await ok(client, "session_get", {"session_id": session["session_id"]})
    scanned = [await call(client, "scan", {"match": "user:*"})]
    while scanned[-1].next_page_token is not None:
        scanned.append(
            await call(client, "scan", {"match": "user:*"}, page_token=scanned[-1].next_page_token)
        )

    assert got == {"value": {"text": "hello"}, "exists": True}
    assert counted == {"value": 3}
    assert field == {"value": "Ada", "exists": True}
    assert jobs == {"values": ["a", "b"], "truncated": False}
    assert tags == {"count": 2}
    assert board == {"members": ["ada", "bob"], "truncated": False}
    assert events["entries"] == [{"id": entry["id"], "fields": {"kind": "login"}}]
    assert published == {"receivers": 0}
    assert session["ttl"] == 300 and restored["data"] == {"user": "ada"}
    assert [key for page in scanned for key in page.result_data["keys"]] == ["user:1"]


async def test_typed_errors_cross_the_fleet(client: FleetClient, cache: str) -> None:
    await ok(client, "hset", {"key": "profile", "mapping": {"a": 1}})

    wrongtype = await call(client, "get", {"key": "profile"})
    misspelt = await call(client, "set", {"key": "k", "valeu": 1})
    unknown = await call(client, "teleport", {})

    assert wrongtype.status == "failed" and wrongtype.error is not None
    assert (wrongtype.error.category, wrongtype.error.code) == ("permanent", "INVALID_DATA")
    assert not wrongtype.error.retryable
    assert misspelt.error is not None and misspelt.error.code == "INVALID_REQUEST"
    assert "valeu" in misspelt.error.message
    assert unknown.error is not None and unknown.error.code == "UNKNOWN_OPERATION"
