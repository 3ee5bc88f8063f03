"""`RedisConnector` against real Redis: strings and keys, TTLs, SCAN paging, prefix isolation, limits and
the typed errors the server's own answers become. Hashes, lists, sets, streams and sessions are in
test_redis_structures.py. Every test uses its own key prefix in a database claimed for this module.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import pytest

from scf.connectors.redis import RedisConnector
from scf.schemas.errors import ConfigurationError
from tests.support.redis_connectors import RedisBench, bench, fails, ok, redis_db, run, unique_prefix

pytestmark = pytest.mark.integration

__all__ = ["bench", "redis_db"]  # fixtures used by name below


@pytest.fixture
def kv(bench: RedisBench) -> RedisConnector:
    return bench.connector()


async def eventually_gone(connector: RedisConnector, key: str, within: float = 5.0) -> float:
    """Poll until `key` no longer exists; returns the seconds it took."""
    started = time.monotonic()
    while (await ok(connector, "exists", {"keys": [key]}))["exists"]:
        assert time.monotonic() - started < within, f"{key} did not expire within {within} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def scan_all(connector: RedisConnector, data: dict[str, Any]) -> tuple[set[str], int]:
    """Every key a scan reports, following page tokens to the end; and how many pages it took."""
    seen: set[str] = set()
    pages, token = 0, None
    while True:
        result = await run(connector, "scan", data, page_token=token)
        assert result.status == "success", result.error
        seen.update(result.result_data["keys"])
        pages += 1
        token = result.next_page_token
        if token is None:
            return seen, pages


# --- strings and keys --------------------------------------------------------------------------------


async def test_strings_are_stored_under_the_prefix_and_read_back(
    kv: RedisConnector, bench: RedisBench
) -> None:
    written = await ok(kv, "set", {"key": "greeting", "value": "héllo"})
    got = await ok(kv, "get", {"key": "greeting"})
    missing = await ok(kv, "get", {"key": "nothing"})
    await ok(kv, "mset", {"values": {"a": 1, "b": {"x": [1, 2]}, "c": True}})
    many = await ok(kv, "mget", {"keys": ["a", "b", "c", "nothing"]}, parameters={"decode": "json"})
    exists = await ok(kv, "exists", {"keys": ["a", "b", "nothing"]})
    deleted = await ok(kv, "delete", {"keys": ["a", "b", "nothing"]})

    assert written == {"written": True}
    assert got == {"value": "héllo", "exists": True}
    assert missing == {"value": None, "exists": False}
    assert many == {"values": [1, {"x": [1, 2]}, True, None]}
    assert exists == {"exists": 2} and deleted == {"deleted": 2}
    assert await bench.raw.get(kv.keys.prefix + "greeting") == "héllo".encode()
    assert await bench.raw.get("greeting") is None


async def test_set_honours_nx_and_xx(kv: RedisConnector) -> None:
    assert await ok(kv, "set", {"key": "k", "value": 1, "xx": True}) == {"written": False}
    assert await ok(kv, "set", {"key": "k", "value": 1, "nx": True}) == {"written": True}
    assert await ok(kv, "set", {"key": "k", "value": 2, "nx": True}) == {"written": False}
    assert await ok(kv, "set", {"key": "k", "value": 3, "xx": True}) == {"written": True}
    assert (await ok(kv, "get", {"key": "k"}))["value"] == "3"


async def test_numbers_are_stored_so_that_redis_can_count_them(kv: RedisConnector) -> None:
    await ok(kv, "set", {"key": "n", "value": 10})
    counted = await ok(kv, "incr", {"key": "n", "amount": 5})
    decimal = await ok(kv, "incr", {"key": "n", "amount": 0.5})
    fresh = await ok(kv, "incr", {"key": "fresh"})

    assert counted == {"value": 15} and decimal == {"value": 15.5} and fresh == {"value": 1}


async def test_binary_values_round_trip_and_foreign_bytes_never_crash(
    kv: RedisConnector, bench: RedisBench
) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    marker = {"$base64": base64.b64encode(png).decode()}
    await ok(kv, "set", {"key": "img", "value": marker})
    await bench.raw.set(kv.keys.prefix + "foreign", b"\xfe\xfe")

    assert await bench.raw.get(kv.keys.prefix + "img") == png
    assert (await ok(kv, "get", {"key": "img"}))["value"] == marker
    foreign = await ok(kv, "get", {"key": "foreign"}, parameters={"decode": "json"})
    assert foreign["value"] == {"$base64": base64.b64encode(b"\xfe\xfe").decode()}


async def test_ttls_expire_keys_and_expire_sets_new_ones(kv: RedisConnector) -> None:
    await ok(kv, "set", {"key": "short", "value": "x", "ttl": 0.3})
    await ok(kv, "set", {"key": "kept", "value": "x"})
    before = await ok(kv, "ttl", {"key": "short"})
    forever = await ok(kv, "ttl", {"key": "kept"})
    took = await eventually_gone(kv, "short")
    expired = await ok(kv, "ttl", {"key": "short"})
    updated = await ok(kv, "expire", {"key": "kept", "ttl": 0.2})
    await eventually_gone(kv, "kept")

    assert before["exists"] and 0 < before["ttl"] <= 0.3
    assert forever == {"exists": True, "ttl": None}
    assert took < 2.0
    assert expired == {"exists": False, "ttl": None}
    assert updated == {"updated": True}
    assert await ok(kv, "expire", {"key": "kept", "ttl": 5}) == {"updated": False}


async def test_incr_with_a_ttl_starts_a_window_only_once(kv: RedisConnector) -> None:
    await ok(kv, "incr", {"key": "hits", "ttl": 100})
    await ok(kv, "incr", {"key": "hits", "ttl": 1})  # the window is already running: unchanged
    ttl = await ok(kv, "ttl", {"key": "hits"})

    assert ttl["ttl"] > 50


# --- scan and prefix isolation -----------------------------------------------------------------------


async def test_scan_pages_through_every_key_of_the_prefix_and_nothing_else(
    kv: RedisConnector, bench: RedisBench
) -> None:
    names = {f"item:{i:04d}" for i in range(2_500)}
    await ok(kv, "mset", {"values": dict.fromkeys(names, 1)})
    await ok(bench.connector(), "set", {"key": "item:other", "value": 1})  # another prefix
    await bench.raw.set("item:unprefixed", 1)

    seen, pages = await scan_all(kv, {"match": "item:*", "count": 200})

    assert seen == names
    assert pages > 1


async def test_glob_characters_in_a_prefix_do_not_widen_scan(bench: RedisBench) -> None:
    tag = unique_prefix("g")[:-1]
    starred = bench.connector(custom_config={"key_prefix": f"{tag}*:"})
    neighbour = bench.connector(custom_config={"key_prefix": f"{tag}x:"})
    await ok(starred, "set", {"key": "mine", "value": 1})
    await ok(neighbour, "set", {"key": "theirs", "value": 1})

    listed, _ = await scan_all(starred, {"match": "*", "count": 1000})

    assert listed == {"mine"}


async def test_two_prefixes_never_read_each_others_keys(bench: RedisBench) -> None:
    left, right = bench.connector(), bench.connector()
    await ok(left, "set", {"key": "shared-name", "value": "left"})
    await ok(right, "set", {"key": "shared-name", "value": "right"})

    assert (await ok(left, "get", {"key": "shared-name"}))["value"] == "left"
    assert (await ok(right, "get", {"key": "shared-name"}))["value"] == "right"
    assert await ok(right, "delete", {"keys": ["only-left"]}) == {"deleted": 0}
    await ok(left, "set", {"key": "only-left", "value": 1})
    assert await ok(right, "exists", {"keys": ["only-left"]}) == {"exists": 0}
    assert (await scan_all(right, {"match": "only-*", "count": 1000}))[0] == set()


# --- limits and errors -------------------------------------------------------------------------------


async def test_a_value_over_max_value_bytes_is_refused_and_not_written(bench: RedisBench) -> None:
    small = bench.connector(custom_config={"max_value_bytes": 1024})

    refused = await fails(small, "set", {"key": "big", "value": "x" * 2_000})

    assert refused[:2] == ("permanent", "LIMIT_EXCEEDED") and "max_value_bytes" in refused[2]
    assert await ok(small, "exists", {"keys": ["big"]}) == {"exists": 0}


async def test_a_key_of_another_type_is_a_permanent_wrongtype_error(kv: RedisConnector) -> None:
    await ok(kv, "hset", {"key": "h", "mapping": {"f": 1}})
    await ok(kv, "set", {"key": "word", "value": "abc"})

    wrongtype = await fails(kv, "get", {"key": "h"})
    not_a_number = await fails(kv, "incr", {"key": "word"})

    assert wrongtype[:2] == ("permanent", "INVALID_DATA") and "WRONGTYPE" in wrongtype[2]
    assert not_a_number[:2] == ("permanent", "INVALID_DATA")


async def test_bad_requests_are_refused_before_any_io(kv: RedisConnector) -> None:
    assert (await fails(kv, "get", {"key": "k"}, parameters={"decode": "yaml"}))[1] == "INVALID_REQUEST"
    assert (await fails(kv, "set", {"key": "k", "value": 1}, parameters={"decode": "json"}))[
        1
    ] == "INVALID_REQUEST"
    assert (await fails(kv, "get", {"key": "k"}, page_token="5"))[1] == "INVALID_REQUEST"
    assert (await fails(kv, "scan", {}, page_token="not-a-cursor"))[1] == "INVALID_REQUEST"
    assert (await fails(kv, "get", {"key": ""}))[1] == "INVALID_REQUEST"


async def test_a_database_the_server_does_not_have_is_a_configuration_error(
    bench: RedisBench,
) -> None:
    databases = int((await bench.raw.config_get("databases"))["databases"] or 16)
    if databases > 1000:
        pytest.skip("this server has more than 1000 databases")
    connector = bench.connector(custom_config={"db": 1000})

    with pytest.raises(ConfigurationError) as caught:
        await connector.open()

    assert caught.value.code == "INVALID_CONFIG"


async def test_a_full_pool_is_a_resource_error(bench: RedisBench) -> None:
    one = bench.connector(connection_timeout=0.5, custom_config={"max_connections": 1, "socket_timeout": 10})
    waiting = asyncio.create_task(ok(one, "xread", {"streams": {"s": "$"}, "block": 2_000}))
    await asyncio.sleep(0.3)  # the blocking read holds the only connection

    refused = await fails(one, "get", {"key": "k"})
    await waiting

    assert refused[:2] == ("resource", "TOO_MANY_CONNECTIONS")
    assert one.pool_stats().size == 1 and one.pool_stats().opened_total >= 1
