"""One connector instance per service name in a worker, rebuilt when the registry version changes.

A request arrives stamped with a registry version, by the dispatcher or by a client on the fast path
that routed it from its own cache, so the worker makes every registry check itself: the connector
exists (CONNECTOR_NOT_FOUND), is not paused (CONNECTOR_PAUSED), and runs at the stamped version or
newer (a newer stamp reloads; an older one runs with the newest config the worker has). Registry events
(`connector.<action>.<name>`) drop or re-check an entry at once; every entry is also re-checked against
Redis after `recheck_after` seconds, so a missed event costs at most that long.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog

from scf.connectors.base import ServiceConnector
from scf.factory import ServiceConnectorFactory
from scf.fleet.state import RegistryEntry, StateStore
from scf.schemas.errors import ConfigurationError, ConnectorError, ErrorCode

log = structlog.get_logger(__name__)

#: How long a loaded entry is trusted without asking Redis (one HMGET per connector per period).
RECHECK_SECONDS = 5.0
#: Registry actions after which the loaded connector is rebuilt on its next use.
RELOAD_ACTIONS = frozenset({"updated", "deleted"})
#: ... and after which only its entry (paused flag, version) is read again on its next use. (`created`
#: does not drop: the connection test a create asks for may be running on the connector just loaded.)
RECHECK_ACTIONS = frozenset({"created", "paused", "resumed"})
#: Loads are serialised per name through a fixed set of locks, so hostile names cannot grow a lock table.
LOCK_STRIPES = 64


@dataclass(frozen=True)
class Loaded:
    version: int
    paused: bool
    checked: float  # monotonic time of the last registry read


class ConnectorCache:
    def __init__(
        self, factory: ServiceConnectorFactory, state: StateStore, recheck_after: float = RECHECK_SECONDS
    ) -> None:
        self.factory = factory
        self.state = state
        self.recheck_after = recheck_after
        self._loaded: dict[str, Loaded] = {}
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]

    async def get(self, service_name: str, version: int, *, allow_paused: bool = False) -> ServiceConnector:
        """The connector at `version` or newer, loading (and decrypting) the registry entry when needed.

        Raises `configuration` CONNECTOR_NOT_FOUND, CONNECTOR_PAUSED (unless `allow_paused`, e.g. for a
        connection test), `transient` STATE_UNAVAILABLE (Redis away and nothing loaded yet).
        """
        loaded = await self._current(service_name, version)
        if loaded.paused and not allow_paused:
            raise ConfigurationError(f"connector {service_name!r} is paused", code=ErrorCode.CONNECTOR_PAUSED)
        return self.factory.get_connector(service_name)

    async def latest(self, service_name: str) -> ServiceConnector:
        """The connector as registered now (loaded on first use); for connectors a request refers to."""
        if service_name in self._loaded:
            await self._current(service_name, 0)
        else:
            await self._current(service_name, (await self.state.entry(service_name)).version)
        return self.factory.get_connector(service_name)

    async def _current(self, service_name: str, version: int) -> Loaded:
        loaded = self._loaded.get(service_name)
        if loaded is not None and self._fresh(loaded, version, time.monotonic()):
            return loaded
        async with self._lock(service_name):
            loaded = self._loaded.get(service_name)
            if loaded is not None and self._fresh(loaded, version, time.monotonic()):
                return loaded
            return await self._load(service_name, loaded)

    def _fresh(self, loaded: Loaded, version: int, now: float) -> bool:
        return loaded.version >= version and now - loaded.checked < self.recheck_after

    async def _load(self, service_name: str, loaded: Loaded | None) -> Loaded:
        now = time.monotonic()
        try:
            entry = await self.state.entry(service_name)
        except ConnectorError as exc:
            if exc.code != ErrorCode.STATE_UNAVAILABLE or loaded is None:
                if exc.code == ErrorCode.CONNECTOR_NOT_FOUND:
                    await self._forget(service_name)
                raise
            # Redis is away: keep running as last seen (a Redis restart must not fail every request).
            log.info("registry_recheck_skipped", service_name=service_name, code=exc.code)
            kept = Loaded(loaded.version, loaded.paused, now)
            self._loaded[service_name] = kept
            return kept
        if loaded is not None and entry.version == loaded.version:
            # Same config: only the paused flag may have changed. A stamp newer than the registry (a
            # connector deleted and created again restarts at version 1) runs with the registry's config.
            fresh = Loaded(entry.version, entry.paused, now)
        else:
            fresh = await self._build(service_name, entry, now)
        self._loaded[service_name] = fresh
        return fresh

    async def _build(self, service_name: str, entry: RegistryEntry, now: float) -> Loaded:
        connection, current = await self.state.load_connection(service_name)
        paused = entry.paused
        if current != entry.version:  # changed between the two reads: the flag must be the new entry's
            paused = (await self.state.entry(service_name)).paused
        await self.factory.create_connector(connection, connect=False)
        log.info("connector_loaded", service_name=service_name, version=current, paused=paused)
        return Loaded(current, paused, now)

    async def on_event(self, action: str, service_name: str) -> None:
        """A registry change heard on `scf.events`: rebuild on next use, or re-read the entry.

        `deleted` also discards what the loaded connector kept on this host (`ServiceConnector.discard`).
        """
        if action == "deleted":
            await self.discard(service_name)
        elif action in RELOAD_ACTIONS:
            await self.drop(service_name)
        elif action in RECHECK_ACTIONS:
            loaded = self._loaded.get(service_name)
            if loaded is not None:
                # Never trusted from the event itself (events from two dispatchers may cross): the next
                # request reads the entry from Redis, which was written before the event was sent.
                self._loaded[service_name] = Loaded(loaded.version, loaded.paused, float("-inf"))

    async def drop(self, service_name: str) -> None:
        """Forget a connector (updated or deleted elsewhere) and close its pool."""
        async with self._lock(service_name):
            await self._forget(service_name)

    async def discard(self, service_name: str) -> None:
        """Forget a deleted connector and let it remove its local data; a failure is logged, not raised.

        Local data is only discarded when the registry confirms the name is gone: an event is not proof
        (a forged or late `connector.deleted` must not wipe a live connector's store).
        """
        async with self._lock(service_name):
            try:
                connector: ServiceConnector | None = self.factory.get_connector(service_name)
            except ConnectorError:
                connector = None
            await self._forget(service_name)
            if connector is None:
                return
            if not await self._gone(service_name):
                log.warning("connector_discard_skipped", service_name=service_name, reason="still registered")
                return
            try:
                await connector.discard()
            except Exception as exc:  # the event loop must go on; the folder is retried by nobody
                log.warning("connector_discard_failed", service_name=service_name, error=type(exc).__name__)

    async def _gone(self, service_name: str) -> bool:
        try:
            await self.state.entry(service_name)
        except ConnectorError as exc:
            return exc.code == ErrorCode.CONNECTOR_NOT_FOUND
        return False

    async def _forget(self, service_name: str) -> None:
        self._loaded.pop(service_name, None)
        if await self.factory.remove_connector(service_name):
            log.info("connector_dropped", service_name=service_name)

    def _lock(self, service_name: str) -> asyncio.Lock:
        return self._locks[hash(service_name) % LOCK_STRIPES]

    def loaded(self) -> list[str]:
        return sorted(self._loaded)
