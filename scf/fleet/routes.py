"""The client's routing cache: which service type (at which registry version) serves a connector name.

`FleetClient` publishes `operation.execute` straight to `scf.ops` for a name found here (the fast path)
and through the dispatcher otherwise. A route is learned from the control plane after a call went
through the dispatcher, lives a short `ttl` (a missed event or a dead worker pool costs at most that),
and is dropped at once on any `connector.*.<name>` event on `scf.events` (`RegistryWatch`) and whenever
this client changes the connector itself. A fill that began before any drop is refused (`generation`),
so a slow answer can never bring back a route older than the change that dropped it. Paused
connectors and types without a live worker are never cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from scf.schemas import topology

log = structlog.get_logger(__name__)

#: How deep a request body may nest: the dispatcher refuses deeper ones (LIMIT_EXCEEDED), so the
#: client sends those through the dispatcher, where the caller gets exactly that refusal.
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class Route:
    service_type: str
    version: int
    expires: float  # monotonic time after which the route is not used
    refresh_at: float  # monotonic time after which using it asks the control plane again (ahead of expiry)


class RouteCache:
    """Bounded `name -> Route`, pure (the caller passes the monotonic time); unit-tested without I/O."""

    def __init__(self, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._routes: dict[str, Route] = {}
        self._generation = 0

    @property
    def generation(self) -> int:
        """Bumped by every drop; a fill must present the generation it started under (see `put`)."""
        return self._generation

    def get(self, name: str, now: float) -> Route | None:
        route = self._routes.get(name)
        if route is None:
            return None
        if route.expires <= now:
            del self._routes[name]
            return None
        return route

    def put(
        self,
        name: str,
        service_type: str,
        version: int,
        *,
        paused: bool,
        live_workers: int,
        generation: int,
        now: float,
    ) -> bool:
        """Remember a route read from the registry; refused (False) when anything was dropped since the
        read began, when the connector is paused or when no worker serves its type."""
        if generation != self._generation or paused or live_workers <= 0 or self.ttl <= 0:
            self._routes.pop(name, None)
            return False
        self._routes.pop(name, None)
        while len(self._routes) >= self.max_entries:
            self._routes.pop(next(iter(self._routes)))  # the oldest insertion
        self._routes[name] = Route(service_type, version, now + self.ttl, now + self.ttl / 2)
        return True

    def invalidate(self, name: str) -> None:
        self._generation += 1
        self._routes.pop(name, None)

    def clear(self) -> None:
        self._generation += 1
        self._routes.clear()

    def __len__(self) -> int:
        return len(self._routes)


def nests_deeper_than(value: Any, limit: int) -> bool:
    """True when `value` nests more than `limit` levels (a scalar is one level); iterative, so a hostile
    body cannot exhaust the stack, and it stops at the first branch past the limit."""
    if limit < 1 or not isinstance(value, dict | list):
        return limit < 1
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
            elif depth + 1 > limit:
                return True
    return False


class RegistryWatch:
    """Drops a route on every `connector.<action>.<name>` event, on a channel of the client's connection.

    Routes may only be used while the watch is `active`; a reconnection clears them all (events may
    have been missed while the connection was down).
    """

    def __init__(self, connection: AbstractRobustConnection, routes: RouteCache) -> None:
        self._connection = connection
        self._routes = routes
        self._channel: AbstractChannel | None = None

    @property
    def active(self) -> bool:
        channel = self._channel
        return channel is not None and not channel.is_closed and not self._connection.is_closed

    async def start(self) -> None:
        channel = await self._connection.channel()
        try:
            events = await channel.get_exchange(topology.EVENTS_EXCHANGE, ensure=True)
            queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
            await queue.bind(events, "connector.#")
            await queue.consume(self._on_event, no_ack=True)
        except BaseException:
            if not channel.is_closed:
                await channel.close()
            raise
        self._connection.reconnect_callbacks.add(self._on_reconnect)
        self._routes.clear()  # anything learned before the subscription may have missed an event
        self._channel = channel

    async def close(self) -> None:
        self._connection.reconnect_callbacks.discard(self._on_reconnect)
        channel, self._channel = self._channel, None
        if channel is not None and not channel.is_closed:
            await channel.close()

    def _on_reconnect(self, *_: Any) -> None:
        log.info("routes_cleared", reason="reconnected")
        self._routes.clear()

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        name = topology.connector_of_event(message.routing_key or "")
        if name:
            self._routes.invalidate(name)
