"""The client's routing cache (the fast path's only source of routes): pure, no network."""

from __future__ import annotations

from scf.fleet.routes import RouteCache, nests_deeper_than
from scf.schemas import topology


def fill(cache: RouteCache, name: str = "db", *, now: float = 0.0, **overrides: object) -> bool:
    values: dict[str, object] = {
        "paused": False,
        "live_workers": 1,
        "generation": cache.generation,
        "now": now,
    }
    values.update(overrides)
    return cache.put(name, "postgresql", 3, **values)  # type: ignore[arg-type]


def test_a_learned_route_is_used_until_its_ttl_then_forgotten() -> None:
    cache = RouteCache(ttl=5.0)
    assert fill(cache, now=100.0)
    route = cache.get("db", now=104.9)
    assert route is not None
    assert (route.service_type, route.version) == ("postgresql", 3)
    assert route.refresh_at == 102.5  # refreshed ahead of expiry, so a busy name stays on the fast path
    assert cache.get("db", now=105.0) is None
    assert len(cache) == 0


def test_paused_connectors_and_types_without_a_live_worker_are_never_cached() -> None:
    cache = RouteCache()
    assert not fill(cache, paused=True)
    assert not fill(cache, live_workers=0)
    assert cache.get("db", now=0.0) is None


def test_a_fill_that_began_before_a_drop_is_refused() -> None:
    """A control-plane answer read before an update must not bring back the old version's route."""
    cache = RouteCache()
    began = cache.generation
    cache.invalidate("db")  # e.g. this client's update was acknowledged meanwhile
    assert not fill(cache, generation=began)
    assert cache.get("db", now=0.0) is None
    assert fill(cache, generation=cache.generation)
    assert cache.get("db", now=0.0) is not None


def test_an_event_or_a_reconnection_drops_routes() -> None:
    cache = RouteCache()
    fill(cache, "a")
    fill(cache, "b")
    cache.invalidate(topology.connector_of_event("connector.paused.a"))
    assert cache.get("a", now=0.0) is None
    assert cache.get("b", now=0.0) is not None
    cache.clear()
    assert len(cache) == 0


def test_the_cache_is_bounded_and_forgets_the_oldest_first() -> None:
    cache = RouteCache(max_entries=3)
    for name in ("a", "b", "c", "d"):
        assert fill(cache, name)
    assert len(cache) == 3
    assert cache.get("a", now=0.0) is None
    assert cache.get("d", now=0.0) is not None


def test_a_zero_ttl_turns_the_fast_path_off() -> None:
    cache = RouteCache(ttl=0.0)
    assert not fill(cache)


def test_connector_event_keys_name_their_action_and_connector() -> None:
    assert topology.connector_action_of_event("connector.paused.my.db") == ("paused", "my.db")
    assert topology.connector_action_of_event("operation.cancel.x") == ("", "")
    assert topology.connector_action_of_event("connector") == ("", "")


def test_depth_is_counted_as_the_dispatcher_counts_it() -> None:
    """A scalar is one level; a non-empty container is one more than its deepest child."""
    assert not nests_deeper_than("x", 1)
    assert not nests_deeper_than([], 1)
    assert nests_deeper_than([1], 1)
    assert not nests_deeper_than({"a": [1, 2]}, 3)
    assert nests_deeper_than({"a": [[1]]}, 3)
    deep: object = 1
    for _ in range(10_000):  # iterative: a hostile body cannot exhaust the stack
        deep = [deep]
    assert nests_deeper_than(deep, 63)
    assert not nests_deeper_than([[1]] * 1000, 3)
