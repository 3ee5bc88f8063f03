"""Cached read results in the fleet's Redis, shared by every worker (`scf:cache:<name>:<digest>`).

Redis trouble makes a lookup a miss and a store a no-op, logged: a cache must never fail the read it
was meant to speed up.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import structlog
from redis.exceptions import RedisError

from scf.connectors.result_cache import MAX_CACHED_BYTES
from scf.fleet import keys

if TYPE_CHECKING:
    from scf.fleet.state import StateStore

log = structlog.get_logger(__name__)


class RedisResultCache:
    def __init__(self, state: StateStore) -> None:
        self.redis = state.redis  # the StateStore's one connection: stores never open their own

    async def get(self, service_name: str, key: str) -> dict[str, Any] | None:
        try:
            raw = await self.redis.get(keys.cached_result(service_name, key))
        except RedisError as exc:
            log.warning("result_cache_unavailable", service_name=service_name, detail=type(exc).__name__)
            return None
        if raw is None:
            return None
        value = json.loads(raw)
        return value if isinstance(value, dict) else None

    async def put(self, service_name: str, key: str, value: dict[str, Any], ttl: int) -> None:
        text = json.dumps(value, separators=(",", ":"))
        if len(text) > MAX_CACHED_BYTES:
            return
        try:
            await self.redis.set(keys.cached_result(service_name, key), text, ex=ttl)
        except RedisError as exc:
            log.warning("result_cache_unavailable", service_name=service_name, detail=type(exc).__name__)
