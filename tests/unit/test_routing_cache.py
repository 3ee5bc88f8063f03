"""The dispatcher's routing cache: short-lived, bounded, never caches a refusal."""

from __future__ import annotations

from scf.dispatcher.routing_cache import RoutingCache
from scf.fleet.state import RegistryEntry


def entry(name: str, *, paused: bool = False) -> RegistryEntry:
    return RegistryEntry(name, "postgresql", 1, paused)


def test_a_route_is_served_until_it_expires() -> None:
    cache = RoutingCache(ttl=1.0)
    cache.put(entry("db"), live_workers=2, now=100.0)

    hit = cache.get("db", now=100.5)

    assert hit is not None and hit.live_workers == 2
    assert cache.get("db", now=101.0) is None


def test_no_live_worker_and_paused_connectors_are_never_cached() -> None:
    cache = RoutingCache(ttl=1.0)
    cache.put(entry("lonely"), live_workers=0, now=0.0)
    cache.put(entry("paused", paused=True), live_workers=3, now=0.0)

    assert cache.get("lonely", now=0.1) is None
    assert cache.get("paused", now=0.1) is None


def test_invalidate_drops_a_route_at_once() -> None:
    cache = RoutingCache(ttl=60.0)
    cache.put(entry("db"), live_workers=1, now=0.0)

    cache.invalidate("db")

    assert cache.get("db", now=0.1) is None


def test_the_cache_is_bounded_and_evicts_the_oldest() -> None:
    cache = RoutingCache(ttl=60.0, max_entries=3)
    for i in range(5):
        cache.put(entry(f"db{i}"), live_workers=1, now=float(i))

    assert len(cache) == 3
    assert cache.get("db0", now=5.0) is None
    assert cache.get("db4", now=5.0) is not None


def test_a_zero_ttl_disables_caching() -> None:
    cache = RoutingCache(ttl=0.0)
    cache.put(entry("db"), live_workers=1, now=0.0)

    assert cache.get("db", now=0.0) is None


def test_an_expired_route_serves_as_stale_within_the_grace_only() -> None:
    cache = RoutingCache(ttl=1.0, stale_grace=30.0)
    cache.put(entry("db"), 2, now=100.0)
    assert cache.get("db", 101.5) is None
    stale = cache.stale("db", 120.0)
    assert stale is not None and stale.entry.service_name == "db"
    assert cache.stale("db", 200.0) is None
    cache.invalidate("db")
    assert cache.stale("db", 102.0) is None  # a registry change drops it for good
