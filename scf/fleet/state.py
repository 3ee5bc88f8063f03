"""The fleet's Redis state: connector registry (secrets sealed), metrics, heartbeats and stored results.

Every Redis write of the fleet goes through `StateStore`. A Redis outage surfaces as a `transient`
`STATE_UNAVAILABLE` error, never as "connector not found".
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, WatchError

from scf.fleet import keys, latency, redis_client
from scf.fleet.crypto import SecretBox
from scf.fleet.operation_book import OperationBook
from scf.fleet.settings import Settings
from scf.fleet.state_errors import as_text, redis_errors, text_map
from scf.schemas.connection import ServiceConnection, public_request_body
from scf.schemas.control import ConnectorMetrics, ConnectorState
from scf.schemas.errors import ConfigurationError, ErrorCode, ErrorInfo, PermanentError, TransientError
from scf.schemas.validation import SURROGATE_ESCAPE, unencodable_path

log = structlog.get_logger(__name__)

#: How an entry's public view was masked. Entries written before masking followed each type's model
#: (keyword DSNs, `?password=` and unusual header names were shown in clear) have no mark: they are
#: re-masked when read, and the stored view is replaced unless the entry changed meanwhile.
PUBLIC_VIEW = "2"
_REPLACE_PUBLIC_VIEW = """
if redis.call('hget', KEYS[1], 'version') == ARGV[1] then
  redis.call('hset', KEYS[1], 'public', ARGV[2], 'view', ARGV[3])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class RegistryEntry:
    """What routing needs about a connector, read without decrypting anything."""

    service_name: str
    service_type: str
    version: int
    paused: bool


class StateStore(OperationBook):
    """The one way the fleet reaches Redis: registry, metrics, workers, and (inherited) operations."""

    def __init__(self, client: aioredis.Redis, box: SecretBox) -> None:
        self.redis = client
        self._box = box

    @classmethod
    def from_url(cls, url: str, box: SecretBox) -> StateStore:
        return cls(redis_client.connect(url), box)

    @classmethod
    def from_settings(cls, settings: Settings, box: SecretBox) -> StateStore:
        """The fleet's state on `SCF_REDIS_URL`, or on the primary `SCF_REDIS_SENTINELS` name."""
        password = settings.scf_redis_sentinel_password
        client = redis_client.connect(
            settings.redis_url,
            sentinels=settings.scf_redis_sentinels,
            service=settings.scf_redis_sentinel_service,
            sentinel_password=password.get_secret_value() if password else None,
        )
        return cls(client, box)

    @property
    def box(self) -> SecretBox:
        """The fleet's sealing key (for other stores that keep secrets at rest, e.g. dead letters)."""
        return self._box

    def script(self, source: str) -> AsyncScript:
        """A Lua script on this connection (loaded on first call, then run by its digest)."""
        return self.redis.register_script(source)

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except RedisError:
            return False

    # --- registry ------------------------------------------------------------------------------------

    async def save_connector(self, connection: ServiceConnection, *, create: bool) -> int:
        """Create (refusing an existing name) or update (refusing a missing one); returns the new version."""
        key = keys.connector(connection.service_name)
        async with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            for _ in range(10):
                try:
                    await pipe.watch(key)
                    current = await pipe.hget(key, "version")
                    if create and current is not None:
                        raise PermanentError(
                            f"connector {connection.service_name!r} already exists; update it instead",
                            code=ErrorCode.CONNECTOR_EXISTS,
                        )
                    if not create and current is None:
                        raise _not_found(connection.service_name)
                    version = int(current or 0) + 1
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(
                        key,
                        mapping={
                            "service_type": connection.service_type,
                            "version": version,
                            "paused": "0",
                            "public": json.dumps(connection.public_view()),
                            "view": PUBLIC_VIEW,
                            "sealed": self._box.seal(connection.sealed_payload()),
                            "updated_at": time.time(),
                        },
                    )
                    pipe.sadd(keys.CONNECTORS_INDEX, connection.service_name)
                    await pipe.execute()
                    return version
                except WatchError:
                    continue
        raise TransientError(
            "concurrent updates of the connector; try again", code=ErrorCode.STATE_UNAVAILABLE
        )

    async def entry(self, name: str) -> RegistryEntry:
        async with redis_errors():
            raw = await self.redis.hmget(keys.connector(name), ["service_type", "version", "paused"])
        return _entry_of(name, raw)

    async def routing_entry(self, name: str, type_hint: str | None = None) -> tuple[RegistryEntry, int]:
        """The registry entry and the number of live workers for its type, in one round trip."""
        now = time.time()
        async with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.connector(name), ["service_type", "version", "paused"])
            if type_hint is not None:
                pipe.zcount(keys.workers_of_type(type_hint), now, "+inf")
            replies = await pipe.execute()
        entry = _entry_of(name, replies[0])
        if type_hint == entry.service_type:
            return entry, int(replies[1])
        return entry, await self.live_workers(entry.service_type)

    async def load_connection(self, name: str) -> tuple[ServiceConnection, int]:
        """The full configuration with secrets, for a worker about to connect."""
        async with redis_errors():
            sealed, version = await self.redis.hmget(keys.connector(name), ["sealed", "version"])
        if sealed is None:
            raise _not_found(name)
        return ServiceConnection.model_validate(self._box.open(as_text(sealed))), int(as_text(version))

    async def connector_state(self, name: str) -> ConnectorState:
        async with redis_errors():
            raw = await self.redis.hgetall(keys.connector(name))
        if not raw:
            raise _not_found(name)
        return _listed_state_of(name, await self._current_view(name, text_map(raw)))

    async def list_connectors(self, service_type: str | None = None) -> list[ConnectorState]:
        async with redis_errors():
            names = sorted(as_text(n) for n in await self.redis.smembers(keys.CONNECTORS_INDEX))
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(keys.connector(name))
                rows = await pipe.execute()
        states = [
            _listed_state_of(n, await self._current_view(n, text_map(raw)))
            for n, raw in zip(names, rows, strict=True)
            if raw
        ]
        return [s for s in states if service_type is None or s.service_type == service_type]

    async def _current_view(self, name: str, raw: dict[str, str]) -> dict[str, str]:
        """`raw` with a public view masked as today's models mask it (an older entry is re-masked)."""
        if raw.get("view") == PUBLIC_VIEW or "public" not in raw:
            return raw
        try:
            public = json.dumps(public_request_body(json.loads(raw["public"])))
        except (ValueError, TypeError, RecursionError):
            return raw  # unreadable: `_listed_state_of` shows it as such
        async with redis_errors():
            await self.redis.eval(
                _REPLACE_PUBLIC_VIEW, 1, keys.connector(name), raw.get("version", ""), public, PUBLIC_VIEW
            )
        log.info("registry_view_remasked", service_name=_shown_name(name))
        return {**raw, "public": public, "view": PUBLIC_VIEW}

    async def delete_connector(self, name: str) -> None:
        async with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.connector(name), keys.metrics(name), keys.pool(name), keys.health(name))
            pipe.srem(keys.CONNECTORS_INDEX, name)
            deleted, *_ = await pipe.execute()
        if not deleted:
            raise _not_found(name)

    async def set_paused(self, name: str, paused: bool) -> None:
        await self.entry(name)
        async with redis_errors():
            await self.redis.hset(keys.connector(name), "paused", "1" if paused else "0")

    # --- metrics ---------------------------------------------------------------------------------------

    async def report_pools(self, worker_id: str, pools: dict[str, dict[str, int]], ttl: float) -> None:
        async with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            for name, stats in pools.items():
                pipe.hset(keys.pool(name), worker_id, json.dumps({**stats, "expires": time.time() + ttl}))
            await pipe.execute()

    async def metrics(self, name: str) -> ConnectorMetrics:
        await self.entry(name)
        now = time.time()
        async with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.metrics(name))
            pipe.hgetall(keys.health(name))
            pipe.hgetall(keys.pool(name))
            for window in latency.minute_windows(now):
                pipe.hgetall(keys.latency(name, window))
            counters, health, pools, *windows = await pipe.execute()
        last_minute = latency.merge(windows)
        total = int(counters.get("total_operations", 0))
        failed = int(counters.get("failed_operations", 0))
        live_pools = [p for p in (json.loads(v) for v in pools.values()) if p.get("expires", 0) > now]
        tests_total = int(health.get("tests_total", 0))
        return ConnectorMetrics(
            service_name=name,
            total_connections=sum(int(p.get("opened_total", 0)) for p in live_pools),
            active_connections=sum(int(p.get("in_use", 0)) for p in live_pools),
            total_operations=total,
            successful_operations=int(counters.get("successful_operations", 0)),
            failed_operations=failed,
            average_response_time=round(float(counters.get("response_time_sum", 0.0)) / total, 6)
            if total
            else 0.0,
            uptime_percentage=(
                round(100.0 * int(health.get("tests_passed", 0)) / tests_total, 2) if tests_total else None
            ),
            error_count=failed,
            p50_response_time=latency.percentile(last_minute, 0.50),
            p95_response_time=latency.percentile(last_minute, 0.95),
            operations_per_second=latency.rate(last_minute, now),
            error_rate=round(failed / total, 4) if total else 0.0,
        )

    async def last_error(self, name: str) -> tuple[ErrorInfo | None, float | None]:
        async with redis_errors():
            raw, at = await self.redis.hmget(keys.metrics(name), ["last_error", "last_error_at"])
        if raw is None:
            return None, None
        return ErrorInfo.model_validate_json(as_text(raw)), float(as_text(at)) if at else None

    # --- workers -------------------------------------------------------------------------------------

    async def heartbeat(
        self, worker_id: str, service_types: Iterable[str], ttl: float, info: dict[str, Any]
    ) -> None:
        now = time.time()
        types = sorted(service_types)
        async with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            pipe.set(
                keys.worker(worker_id), json.dumps({**info, "types": types, "seen": now}), ex=max(1, int(ttl))
            )
            for t in types:
                pipe.zadd(keys.workers_of_type(t), {worker_id: now + ttl})
                pipe.zremrangebyscore(keys.workers_of_type(t), "-inf", now)
            await pipe.execute()

    async def retire_worker(self, worker_id: str, service_types: Iterable[str]) -> None:
        async with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(keys.worker(worker_id))
            for t in service_types:
                pipe.zrem(keys.workers_of_type(t), worker_id)
            await pipe.execute()

    async def live_workers(self, service_type: str) -> int:
        async with redis_errors():
            return int(await self.redis.zcount(keys.workers_of_type(service_type), time.time(), "+inf"))


def _entry_of(name: str, raw: list[bytes | str | None]) -> RegistryEntry:
    if raw[0] is None:
        raise _not_found(name)
    return RegistryEntry(name, as_text(raw[0]), int(as_text(raw[1])), as_text(raw[2]) == "1")


def _not_found(name: str) -> ConfigurationError:
    return ConfigurationError(f"no connector named {name!r}", code=ErrorCode.CONNECTOR_NOT_FOUND)


def _listed_state_of(name: str, raw: dict[str, str]) -> ConnectorState:
    """One entry of a listing: an unreadable entry is shown as such, never a failure of the whole list.

    (An entry stored before the edges refused unencodable text, or written by hand, must not break
    `connector.list` for every caller.)
    """
    try:
        state = _state_of(name, raw)
        if SURROGATE_ESCAPE.search(raw["public"].encode()) and unencodable_path(state.config) is not None:
            raise ValueError("unencodable text in the public view")
        return state
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        log.warning("registry_entry_unreadable", service_name=_shown_name(name), error=type(exc).__name__)
        return ConnectorState(
            service_name=_shown_name(name),
            service_type=raw.get("service_type", "unknown").encode("utf-8", "replace").decode(),
            version=int(raw["version"]) if raw.get("version", "").isdigit() else 0,
            paused=raw.get("paused") == "1",
            config={"unreadable": True},
        )


def _shown_name(name: str) -> str:
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _state_of(name: str, raw: dict[str, str]) -> ConnectorState:
    return ConnectorState(
        service_name=name,
        service_type=raw["service_type"],
        version=int(raw["version"]),
        paused=raw.get("paused") == "1",
        config=json.loads(raw["public"]),
    )
