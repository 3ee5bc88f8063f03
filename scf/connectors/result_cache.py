"""Where a connector may keep the result of a read for a while (the spec's query caching).

A connector asks for a cache by key and TTL and never learns where it lives: embedded, the factory
lends `MemoryResultCache` (bounded, per process); in the fleet, the worker lends one backed by the
fleet's Redis so every worker shares the entry. A cache that fails is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

#: Results larger than this (as JSON) are served but not cached.
MAX_CACHED_BYTES = 1 << 20


class ResultCache(Protocol):
    async def get(self, service_name: str, key: str) -> dict[str, Any] | None: ...

    async def put(self, service_name: str, key: str, value: dict[str, Any], ttl: int) -> None: ...


def cache_key(*parts: Any) -> str:
    """A stable digest of what makes two reads the same (statement, parameters, paging)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class MemoryResultCache:
    """An LRU of at most `capacity` entries, each expiring after its own TTL."""

    def __init__(self, capacity: int = 256, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, dict[str, Any]]] = OrderedDict()

    async def get(self, service_name: str, key: str) -> dict[str, Any] | None:
        entry = self._entries.get((service_name, key))
        if entry is None:
            return None
        expires, value = entry
        if expires <= self.clock():
            del self._entries[(service_name, key)]
            return None
        self._entries.move_to_end((service_name, key))
        return value

    async def put(self, service_name: str, key: str, value: dict[str, Any], ttl: int) -> None:
        self._entries[(service_name, key)] = (self.clock() + ttl, value)
        self._entries.move_to_end((service_name, key))
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
