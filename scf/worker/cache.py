"""One connector instance per service name in a worker, rebuilt when the registry version changes.

The dispatcher stamps every forwarded request with the registry version it resolved, so a worker
notices an updated connector on the very next request even if it missed the `connector.updated` event.
"""

from __future__ import annotations

import asyncio

import structlog

from scf.connectors.base import ServiceConnector
from scf.factory import ServiceConnectorFactory
from scf.fleet.state import StateStore

log = structlog.get_logger(__name__)


class ConnectorCache:
    def __init__(self, factory: ServiceConnectorFactory, state: StateStore) -> None:
        self.factory = factory
        self.state = state
        self._versions: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, service_name: str, version: int) -> ServiceConnector:
        """The connector at `version` or newer; loads (and decrypts) the registry entry on a miss."""
        if self._versions.get(service_name, -1) >= version:
            return self.factory.get_connector(service_name)
        async with self._locks.setdefault(service_name, asyncio.Lock()):
            if self._versions.get(service_name, -1) >= version:
                return self.factory.get_connector(service_name)
            connection, current = await self.state.load_connection(service_name)
            connector = await self.factory.create_connector(connection, connect=False)
            self._versions[service_name] = current
            log.info("connector_loaded", service_name=service_name, version=current)
            return connector

    async def latest(self, service_name: str) -> ServiceConnector:
        """The connector as registered now (loaded on first use); for connectors a request refers to."""
        if service_name in self._versions:
            return self.factory.get_connector(service_name)
        entry = await self.state.entry(service_name)
        return await self.get(service_name, entry.version)

    async def drop(self, service_name: str) -> None:
        """Forget a connector (updated or deleted elsewhere) and close its pool."""
        async with self._locks.setdefault(service_name, asyncio.Lock()):
            self._versions.pop(service_name, None)
            if await self.factory.remove_connector(service_name):
                log.info("connector_dropped", service_name=service_name)

    def loaded(self) -> list[str]:
        return sorted(self._versions)
