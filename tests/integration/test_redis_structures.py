"""`RedisConnector` against real Redis: hashes, lists, sets, sorted sets, streams, publish and sessions,
with the read bounds (`max_items`, `truncated`, LIMIT_EXCEEDED) and sliding session expiry.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from scf.connectors.redis import RedisConnector
from tests.support.redis_connectors import RedisBench, bench, fails, ok, redis_db, run

pytestmark = pytest.mark.integration

__all__ = ["bench", "redis_db"]  # fixtures used by name below


@pytest.fixture
def kv(bench: RedisBench) -> RedisConnector:
    return bench.connector(custom_config={"max_items": 10})


async def test_hashes(kv: RedisConnector) -> None:
    added = await ok(kv, "hset", {"key": "user:1", "mapping": {"name": "Ada", "visits": 1, "tags": ["a"]}})
    name = await ok(kv, "hget", {"key": "user:1", "field": "name"})
    visits = await ok(kv, "hincrby", {"key": "user:1", "field": "visits", "amount": 2})
    score = await ok(kv, "hincrby", {"key": "user:1", "field": "score", "amount": 0.25})
    deleted = await ok(kv, "hdel", {"key": "user:1", "fields": ["score", "nothing"]})
    everything = await ok(kv, "hgetall", {"key": "user:1"}, parameters={"decode": "json"})
    await ok(kv, "hset", {"key": "wide", "mapping": {f"f{i}": i for i in range(11)}})

    assert added == {"added": 3}
    assert name == {"value": "Ada", "exists": True}
    assert visits == {"value": 3} and score == {"value": 0.25} and deleted == {"deleted": 1}
    assert everything == {"fields": {"name": "Ada", "visits": 3, "tags": ["a"]}, "exists": True}
    assert (await fails(kv, "hgetall", {"key": "wide"}))[:2] == ("permanent", "LIMIT_EXCEEDED")


async def test_lists(kv: RedisConnector) -> None:
    await ok(kv, "rpush", {"key": "q", "values": [1, 2, 3]})
    length = await ok(kv, "lpush", {"key": "q", "values": [0]})
    middle = await ok(kv, "lrange", {"key": "q", "start": 1, "stop": 2}, parameters={"decode": "json"})
    first = await ok(kv, "lpop", {"key": "q"})
    last_two = await ok(kv, "rpop", {"key": "q", "count": 2})
    left = await ok(kv, "llen", {"key": "q"})
    empty = await ok(kv, "lpop", {"key": "nothing"})

    assert length == {"length": 4}
    assert middle == {"values": [1, 2], "truncated": False}
    assert first == {"value": "0", "exists": True} and last_two == {"values": ["3", "2"]}
    assert left == {"length": 1} and empty == {"value": None, "exists": False}


async def test_long_list_ranges_are_truncated_at_max_items(kv: RedisConnector) -> None:
    await ok(kv, "rpush", {"key": "long", "values": list(range(25))})

    everything = await ok(kv, "lrange", {"key": "long"}, parameters={"decode": "json"})
    tail = await ok(kv, "lrange", {"key": "long", "start": -5, "stop": -1}, parameters={"decode": "json"})
    too_many = await fails(kv, "lpop", {"key": "long", "count": 11})

    assert everything == {"values": list(range(10)), "truncated": True}
    assert tail == {"values": [20, 21, 22, 23, 24], "truncated": False}
    assert too_many[:2] == ("permanent", "LIMIT_EXCEEDED")


async def test_sets(kv: RedisConnector) -> None:
    added = await ok(kv, "sadd", {"key": "s", "members": ["a", "b", "c", "a"]})
    removed = await ok(kv, "srem", {"key": "s", "members": ["c", "z"]})
    members = await ok(kv, "smembers", {"key": "s"})
    yes = await ok(kv, "sismember", {"key": "s", "member": "a"})
    no = await ok(kv, "sismember", {"key": "s", "member": "c"})
    count = await ok(kv, "scard", {"key": "s"})
    await ok(kv, "sadd", {"key": "big", "members": list(range(11))})

    assert added == {"added": 3} and removed == {"removed": 1}
    assert sorted(members["members"]) == ["a", "b"]
    assert yes == {"is_member": True} and no == {"is_member": False} and count == {"count": 2}
    assert (await fails(kv, "smembers", {"key": "big"}))[:2] == ("permanent", "LIMIT_EXCEEDED")


async def test_sorted_sets(kv: RedisConnector) -> None:
    added = await ok(kv, "zadd", {"key": "board", "members": {"ada": 30, "bob": 10, "cy": 20}})
    by_rank = await ok(kv, "zrange", {"key": "board"})
    top = await ok(kv, "zrange", {"key": "board", "start": 0, "stop": 0, "reverse": True, "withscores": True})
    by_score = await ok(kv, "zrange", {"key": "board", "by": "score", "min": 15, "max": "+inf"})
    high_first = await ok(
        kv, "zrange", {"key": "board", "by": "score", "min": "(10", "reverse": True, "count": 1}
    )
    bumped = await ok(kv, "zincrby", {"key": "board", "member": "bob", "amount": 25})
    score = await ok(kv, "zscore", {"key": "board", "member": "bob"})
    removed = await ok(kv, "zrem", {"key": "board", "members": ["cy", "nobody"]})
    after = await ok(kv, "zrange", {"key": "board", "withscores": True})

    assert added == {"added": 3}
    assert by_rank == {"members": ["bob", "cy", "ada"], "truncated": False}
    assert top == {"members": [{"member": "ada", "score": 30.0}], "truncated": False}
    assert by_score == {"members": ["cy", "ada"], "truncated": False}
    assert high_first == {"members": ["ada"], "truncated": True}
    assert bumped == {"score": 35.0} and score == {"score": 35.0, "exists": True}
    assert removed == {"removed": 1}
    assert after["members"] == [{"member": "ada", "score": 30.0}, {"member": "bob", "score": 35.0}]


async def test_streams_add_range_page_and_read(kv: RedisConnector) -> None:
    ids = [
        (await ok(kv, "xadd", {"key": "events", "fields": {"n": i, "kind": "tick"}}))["id"] for i in range(7)
    ]
    length = await ok(kv, "xlen", {"key": "events"})
    pages, token = [], None
    while True:
        result = await run(
            kv, "xrange", {"key": "events", "count": 3}, page_token=token, parameters={"decode": "json"}
        )
        assert result.status == "success", result.error
        pages.append(result.result_data["entries"])
        token = result.next_page_token
        if token is None:
            break
    read = await ok(kv, "xread", {"streams": {"events": ids[4]}, "count": 5})
    capped = await ok(kv, "xadd", {"key": "capped", "fields": {"x": 1}, "maxlen": 1, "approximate": False})

    assert length == {"length": 7}
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [e["id"] for page in pages for e in page] == ids
    assert pages[0][0]["fields"] == {"n": 0, "kind": "tick"}
    assert [e["id"] for e in read["streams"]["events"]] == ids[5:]
    assert capped["id"]


async def test_xread_waits_for_new_entries_but_never_past_the_request_timeout(kv: RedisConnector) -> None:
    waiting = asyncio.create_task(ok(kv, "xread", {"streams": {"feed": "$"}, "block": 5_000}, timeout=10))
    await asyncio.sleep(0.3)
    await ok(kv, "xadd", {"key": "feed", "fields": {"msg": "hello"}})
    arrived = await waiting

    started = time.monotonic()
    nothing = await ok(kv, "xread", {"streams": {"quiet": "$"}, "block": 0}, timeout=1)
    waited = time.monotonic() - started

    assert [e["fields"] for e in arrived["streams"]["feed"]] == [{"msg": "hello"}]
    assert nothing == {"streams": {}}
    assert 0.5 < waited < 1.0


async def test_publish_reaches_subscribers_of_the_prefixed_channel(
    kv: RedisConnector, bench: RedisBench
) -> None:
    pubsub = bench.raw.pubsub()
    await pubsub.subscribe(kv.keys.prefix + "news")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    try:
        sent = await ok(kv, "publish", {"channel": "news", "message": {"headline": "hi"}})
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        unheard = await ok(kv, "publish", {"channel": "elsewhere", "message": "x"})
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]

    assert sent == {"receivers": 1} and unheard == {"receivers": 0}
    assert message is not None and message["data"] == b'{"headline":"hi"}'


async def test_sessions_round_trip_and_update_only_existing_ones(
    kv: RedisConnector, bench: RedisBench
) -> None:
    created = await ok(kv, "session_create", {"data": {"user": "ada", "cart": [1, 2], "n": "5"}, "ttl": 600})
    sid = created["session_id"]
    got = await ok(kv, "session_get", {"session_id": sid})
    updated = await ok(kv, "session_update", {"session_id": sid, "data": {"cart": []}, "remove": ["n"]})
    after = await ok(kv, "session_get", {"session_id": sid})
    ghost = "g" * 43
    missing = await ok(kv, "session_update", {"session_id": ghost, "data": {"x": 1}})
    deleted = await ok(kv, "session_delete", {"session_id": sid})
    gone = await ok(kv, "session_get", {"session_id": sid})

    assert created["ttl"] == 600 and len(sid) >= 43
    assert got == {
        "session_id": sid,
        "found": True,
        "data": {"user": "ada", "cart": [1, 2], "n": "5"},
        "ttl": 600,
    }
    assert updated == {"session_id": sid, "found": True, "ttl": 600}
    assert after["data"] == {"user": "ada", "cart": []}
    assert missing == {"session_id": ghost, "found": False}
    assert await bench.raw.exists(kv.keys.session(ghost)) == 0  # an update never creates a session
    assert deleted["deleted"] is True and gone["found"] is False


async def test_reading_a_session_slides_its_expiry(kv: RedisConnector) -> None:
    sid = (await ok(kv, "session_create", {"data": {"user": "ada"}, "ttl": 1}))["session_id"]

    for _ in range(5):  # 2.5 s in all, well past the 1 s lifetime, kept alive by each read
        await asyncio.sleep(0.5)
        assert (await ok(kv, "session_get", {"session_id": sid}))["found"] is True

    started = time.monotonic()
    while (await kv.execute_operation({"operation": "ttl", "data": {"key": f"session:{sid}"}})).result_data[
        "exists"
    ]:
        assert time.monotonic() - started < 5, "the idle session did not expire"
        await asyncio.sleep(0.1)
    assert (await ok(kv, "session_get", {"session_id": sid}))["found"] is False


async def test_sessions_use_the_configured_default_ttl(bench: RedisBench) -> None:
    connector = bench.connector(custom_config={"session_ttl": 120})

    created = await ok(connector, "session_create", {})
    ttl = await ok(connector, "ttl", {"key": f"session:{created['session_id']}"})

    assert created["ttl"] == 120 and 100 < ttl["ttl"] <= 120
