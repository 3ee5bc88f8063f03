"""The one request convention against real Redis: keys, channel and options in `parameters`, values in
`data`, paging by `parameters.page_size`; the old shapes (everything in `data`, `count`) still work."""

from __future__ import annotations

import pytest

from scf.connectors.redis import RedisConnector
from tests.support.redis_connectors import RedisBench, bench, fails, ok, redis_db, run

pytestmark = pytest.mark.integration

__all__ = ["bench", "redis_db"]  # fixtures used by name below


@pytest.fixture
def kv(bench: RedisBench) -> RedisConnector:
    return bench.connector()


async def test_strings_in_the_convention(kv: RedisConnector) -> None:
    assert await ok(kv, "set", {"value": {"n": 1}}, parameters={"key": "a", "ttl": 60, "nx": True})
    assert (await ok(kv, "get", {}, parameters={"key": "a", "decode": "json"}))["value"] == {"n": 1}
    assert await ok(kv, "mset", {"values": {"b": "x", "c": "y"}})
    assert (await ok(kv, "mget", {}, parameters={"keys": ["b", "c"]}))["values"] == ["x", "y"]
    assert (await ok(kv, "incr", {"amount": 2}, parameters={"key": "n", "ttl": 30}))["value"] == 2
    ttl = (await ok(kv, "ttl", {}, parameters={"key": "n"}))["ttl"]
    assert 0 < ttl <= 30
    assert (await ok(kv, "delete", {}, parameters={"keys": ["a", "b", "c", "n"]}))["deleted"] == 4


async def test_the_old_shape_still_works(kv: RedisConnector) -> None:
    assert (await ok(kv, "set", {"key": "a", "value": "v", "ttl": 60}))["written"]
    assert (await ok(kv, "get", {"key": "a"}))["value"] == "v"
    assert (await ok(kv, "exists", {"keys": ["a"]}))["exists"] == 1


async def test_a_key_given_in_both_places_is_refused(kv: RedisConnector) -> None:
    category, code, message = await fails(kv, "get", {"key": "a"}, parameters={"key": "b"})
    assert (category, code) == ("permanent", "INVALID_REQUEST")
    assert "data.key" in message


async def test_structures_in_the_convention(kv: RedisConnector) -> None:
    await ok(kv, "hset", {"mapping": {"f": 1, "g": 2}}, parameters={"key": "h"})
    assert (await ok(kv, "hget", {}, parameters={"key": "h", "field": "f", "decode": "json"}))["value"] == 1
    assert (await ok(kv, "hincrby", {"amount": 5}, parameters={"key": "h", "field": "g"}))["value"] == 7
    await ok(kv, "rpush", {"values": ["a", "b", "c"]}, parameters={"key": "l"})
    assert (await ok(kv, "lpop", {}, parameters={"key": "l", "count": 2}))["values"] == ["a", "b"]
    await ok(kv, "sadd", {"members": ["m"]}, parameters={"key": "s"})
    assert (await ok(kv, "sismember", {"member": "m"}, parameters={"key": "s"}))["is_member"]
    await ok(kv, "zadd", {"members": {"x": 1.0, "y": 2.0}}, parameters={"key": "z", "nx": True})
    assert (await ok(kv, "zscore", {"member": "y"}, parameters={"key": "z"}))["score"] == 2.0
    entry = await ok(kv, "xadd", {"fields": {"k": "v"}}, parameters={"key": "st", "maxlen": 100})
    assert entry["id"]
    session = await ok(kv, "session_create", {"data": {"user": 1}}, parameters={"ttl": 60})
    sid = session["session_id"]
    await ok(kv, "session_update", {"data": {"cart": 2}}, parameters={"session_id": sid})
    got = await ok(kv, "session_get", {}, parameters={"session_id": sid})
    assert got["data"] == {"user": 1, "cart": 2}
    assert (await ok(kv, "publish", {"message": "hi"}, parameters={"channel": "news"}))["receivers"] == 0


async def test_scan_and_xrange_page_by_page_size(kv: RedisConnector) -> None:
    await ok(kv, "mset", {"values": {f"p{i}": i for i in range(25)}})
    seen: set[str] = set()
    token = None
    while True:
        result = await run(kv, "scan", {}, parameters={"match": "p*", "page_size": 10}, page_token=token)
        assert result.status == "success", result.error
        seen.update(result.result_data["keys"])
        token = result.next_page_token
        if token is None:
            break
    assert seen == {f"p{i}" for i in range(25)}
    for i in range(5):
        await ok(kv, "xadd", {"fields": {"i": i}}, parameters={"key": "s"})
    first = await run(kv, "xrange", {}, parameters={"key": "s", "page_size": 3})
    assert len(first.result_data["entries"]) == 3 and first.next_page_token is not None
    rest = await run(
        kv, "xrange", {}, parameters={"key": "s", "page_size": 3}, page_token=first.next_page_token
    )
    assert len(rest.result_data["entries"]) == 2 and rest.next_page_token is None
    old = await run(kv, "xrange", {"key": "s", "count": 3})  # the old shape: count in data
    assert old.result_data == first.result_data
