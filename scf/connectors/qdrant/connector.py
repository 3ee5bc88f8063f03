"""`QdrantVectorConnector`: one `AsyncQdrantClient` per connector, remote or embedded (local mode).

This module owns the client's life (open, check, close, stats) and `run`, through which the handlers of
`table.py` reach the client; the operations, filters, ids, page tokens and the error table live in their
own modules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import structlog
from qdrant_client import AsyncQdrantClient

from scf.connectors.base import ErrorRule, PoolStats, ServiceConnector
from scf.connectors.operation_table import Call
from scf.connectors.qdrant import local_store
from scf.connectors.qdrant.catalog import Catalog
from scf.connectors.qdrant.errors import QDRANT_ERROR_RULES, missing_collection, refine
from scf.connectors.qdrant.settings import client_settings, data_dir
from scf.connectors.qdrant.table import OPERATION_TABLE
from scf.schemas.configs.qdrant import QdrantConfig
from scf.schemas.connection import ServiceConnection, ServiceType
from scf.schemas.errors import ConfigurationError, ConnectorError, ErrorCode, TransientError
from scf.schemas.operation import OperationOutcome, TestVerdict

log = structlog.get_logger(__name__)


class QdrantVectorConnector(ServiceConnector):
    """Qdrant vectors: collections, insert/upsert, search, retrieve, scroll, count and delete.

    Without a host or `custom_config.url` it runs Qdrant's local mode in its own folder,
    `<SCF_DATA_DIR>/qdrant/<service_name>`: vector search with no server. That folder is checked (symlinks
    resolved) before it is opened and removed when the connector is deleted (`discard`). Local mode keeps a
    lock on its folder, so one worker process owns it; serve a local-mode connector from a single worker,
    or run a Qdrant server.

    Raises `transient` (unreachable server, timeouts, 5xx), `resource` (429), `permanent` (bad
    requests, dimension mismatches), `configuration` (missing collection, bad settings, a local path held
    by another process) and `security` (401/403) errors.
    """

    service_type: ClassVar[ServiceType] = ServiceType.QDRANT
    operation_table = OPERATION_TABLE
    error_rules: ClassVar[tuple[ErrorRule, ...]] = QDRANT_ERROR_RULES

    def __init__(self, connection: ServiceConnection) -> None:
        super().__init__(connection)
        self.config: QdrantConfig = self.config_of(QdrantConfig)
        self._settings = client_settings(connection, self.config, data_dir())
        self._client: AsyncQdrantClient | None = None
        self.catalog = Catalog()
        self._opened_total = 0

    @property
    def is_local(self) -> bool:
        return self._settings.local

    def translate(self, exc: BaseException) -> ConnectorError:
        return refine(super().translate(exc), exc)

    def pool_stats(self) -> PoolStats:
        size = int(self._client is not None)
        return PoolStats(size=size, in_use=0, opened_total=self._opened_total)

    # --- life cycle ---------------------------------------------------------------------------------

    async def _open(self) -> None:
        kwargs = self._settings.kwargs
        root = self._settings.root
        if root is not None:  # local mode on disk: open only the confined, resolved folder
            path = await asyncio.to_thread(local_store.prepare, root, Path(kwargs["path"]))
            kwargs = {**kwargs, "path": str(path)}
        try:
            self._client = AsyncQdrantClient(**kwargs)
        except ValueError as exc:  # the client's own checks of url/host/port, or an unreadable local store
            raise ConfigurationError(
                "invalid Qdrant connection settings", code=ErrorCode.INVALID_CONFIG, detail=str(exc)[:500]
            ) from exc
        self._opened_total += 1
        if not self.is_local:
            # The client connects lazily: one cheap call makes an unreachable server or a refused key
            # fail here, at open, rather than on the first operation.
            await self._client.get_collections()
        log.info("qdrant_client_opened", service_name=self.service_name, where=self._settings.where)

    async def _check(self) -> dict[str, TestVerdict]:
        await self._require_client().get_collections()
        return {"connection_test": "passed", "authentication_test": "passed", "permissions_test": "passed"}

    async def _close(self) -> None:
        client, self._client = self._client, None
        self.catalog.clear()
        if client is not None:
            await client.close()

    async def discard(self) -> None:
        """Deleted from the registry: close, then remove the local folder (a server's data is left alone)."""
        await self.close()
        root, folder = self._settings.root, self._settings.folder
        if root is None or folder is None:
            return
        if await asyncio.to_thread(local_store.discard, root, folder):
            log.info("qdrant_local_folder_discarded", service_name=self.service_name)

    def _require_client(self) -> AsyncQdrantClient:
        if self._client is None:
            raise TransientError("the connector is closed", code=ErrorCode.CONNECTION_FAILED)
        return self._client

    # --- operations ---------------------------------------------------------------------------------

    async def run(
        self,
        call: Call[Any, Any],
        collection: str | None,
        work: Callable[[AsyncQdrantClient], Awaitable[OperationOutcome]],
    ) -> OperationOutcome:
        """Run one operation's I/O within the time its request has left; name a missing collection."""
        client = self._require_client()
        try:
            async with asyncio.timeout(self.time_left(call.request.timeout)):
                return await work(client)
        except Exception as exc:
            if collection is None:
                raise
            self.catalog.forget(collection)  # it may have been dropped or recreated elsewhere
            if missing_collection(exc):
                raise ConfigurationError(
                    f"collection {collection!r} does not exist",
                    code=ErrorCode.NOT_FOUND,
                    detail=f"{type(exc).__name__}: {str(exc)[:500]}",
                ) from exc
            raise
