"""A short-lived cache of routing facts (registry entry + live-worker count) per connector name.

Routing needs both facts for every request; fetching them from Redis each time costs the dispatcher a
round trip per message. Entries live `ttl` seconds and are dropped at once on a registry change this
dispatcher makes or hears about on `scf.events`, so another dispatcher's change is seen within `ttl`.
Only routable answers are cached: "not found" and "no live worker" are always asked again.
While Redis cannot be reached, an expired entry younger than `stale_grace` still routes (`stale`): the
registry rarely changes, and a Redis restart should not turn every request into an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from scf.fleet.state import RegistryEntry


@dataclass(frozen=True)
class Route:
    entry: RegistryEntry
    live_workers: int
    expires: float


class RoutingCache:
    def __init__(self, ttl: float = 1.0, max_entries: int = 10_000, stale_grace: float = 60.0) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.stale_grace = stale_grace
        self._routes: dict[str, Route] = {}

    def get(self, name: str, now: float) -> Route | None:
        route = self._routes.get(name)
        if route is None or route.expires <= now:
            return None
        return route

    def stale(self, name: str, now: float) -> Route | None:
        """An expired route still within `stale_grace` (for when Redis cannot be asked)."""
        route = self._routes.get(name)
        if route is None or now - route.expires > self.stale_grace:
            return None
        return route

    def put(self, entry: RegistryEntry, live_workers: int, now: float) -> None:
        if live_workers <= 0 or entry.paused or self.ttl <= 0:
            self._routes.pop(entry.service_name, None)
            return
        self._routes.pop(entry.service_name, None)
        while len(self._routes) >= self.max_entries:
            self._routes.pop(next(iter(self._routes)))  # the oldest insertion
        self._routes[entry.service_name] = Route(entry, live_workers, now + self.ttl)

    def invalidate(self, name: str) -> None:
        self._routes.pop(name, None)

    def __len__(self) -> int:
        return len(self._routes)
