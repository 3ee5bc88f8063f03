"""`MinIOStorageConnector`: MinIO / S3 through the minio SDK, run in a bounded thread pool.

This module owns the client's life (open, check, close, stats) and routes each operation to its planner
(`objects.py`, `reads.py`, `buckets.py`, `ingest.py`); key rules, bodies, page tokens and the error table
live in their own pure modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, ClassVar

import structlog

from scf.connectors.base import ErrorRule, PoolStats, ServiceConnector
from scf.connectors.minio.buckets import BUCKETLESS, probe
from scf.connectors.minio.client import StoreClient
from scf.connectors.minio.errors import MINIO_ERROR_RULES, classify_store_answer, unwrap
from scf.connectors.minio.names import ObjectNames
from scf.connectors.minio.reads import read_object
from scf.connectors.minio.settings import client_settings
from scf.connectors.minio.store import Planner, Store
from scf.connectors.minio.table import OPERATIONS
from scf.connectors.operation_table import Call
from scf.schemas.configs.minio import MinioConfig
from scf.schemas.connection import ServiceConnection, ServiceType
from scf.schemas.errors import (
    ConfigurationError,
    ConnectorError,
    ErrorCode,
    PermanentError,
    TransientError,
)
from scf.schemas.operation import OperationOutcome, TestVerdict

log = structlog.get_logger(__name__)


class MinIOStorageConnector(ServiceConnector):
    """One bucket (and optional key prefix) of a MinIO or S3 store.

    Operations: list_buckets, create_bucket, put_object, get_object, stat_object, list_objects,
    copy_object, delete_object, delete_objects, presigned_get, presigned_put and ingest (CSV objects
    parsed in the worker). Every key is relative to `custom_config.prefix` and checked by `check_key`.

    Raises `transient` (unreachable store, timeouts, 5xx), `resource` (SlowDown, 429, storage full),
    `permanent` (bad requests or keys, missing objects, size limits), `configuration` (missing bucket,
    wrong region, TLS mismatch) and `security` (bad credentials or tokens, access denied) errors.
    """

    service_type: ClassVar[ServiceType] = ServiceType.MINIO
    operation_table = OPERATIONS
    error_rules: ClassVar[tuple[ErrorRule, ...]] = MINIO_ERROR_RULES

    def __init__(self, connection: ServiceConnection) -> None:
        super().__init__(connection)
        self.config: MinioConfig = self.config_of(MinioConfig)
        self._settings = client_settings(connection, self.config)
        self._names = ObjectNames(self.config.prefix)
        self._client: StoreClient | None = None
        self._opened_total = 0

    def translate(self, exc: BaseException) -> ConnectorError:
        if isinstance(exc, ConnectorError):
            return exc
        cause = unwrap(exc)
        return classify_store_answer(cause) or super().translate(cause)

    def pool_stats(self) -> PoolStats:
        client = self._client
        if client is None:
            return PoolStats(opened_total=self._opened_total)
        return PoolStats(size=client.threads, in_use=client.in_flight, opened_total=self._opened_total)

    # --- life cycle ---------------------------------------------------------------------------------

    async def _open(self) -> None:
        """Build the client and make one cheap call, so an unreachable store or bad key fails here.

        A missing bucket does not fail open (create_bucket must be able to run); check reports it.
        Without a configured bucket the call lists the buckets.
        """
        self._client = client = StoreClient(self._settings, self.service_name)
        self._opened_total += 1
        if not await client.run(partial(probe, client.sdk, self.config.bucket_name, self.config.prefix)):
            log.info("minio_bucket_missing", service_name=self.service_name, bucket=self.config.bucket_name)

    async def _check(self) -> dict[str, TestVerdict]:
        client = self._require_client()
        if not await client.run(partial(probe, client.sdk, self.config.bucket_name, self.config.prefix)):
            raise ConfigurationError(
                f"bucket {self.config.bucket_name!r} does not exist (create_bucket creates it)",
                code=ErrorCode.INVALID_CONFIG,
            )
        return {"connection_test": "passed", "authentication_test": "passed", "permissions_test": "passed"}

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _require_client(self) -> StoreClient:
        if self._client is None:
            raise TransientError("the connector is closed", code=ErrorCode.CONNECTION_FAILED)
        return self._client

    # --- operations ---------------------------------------------------------------------------------

    async def run_plan(self, operation: str, planner: Planner, call: Call[Any, Any]) -> OperationOutcome:
        """Check the parsed request against the bucket and prefix, then run its I/O in the pool."""
        client = self._require_client()
        plan = planner(self._store(client, operation), call)  # refuses bad keys before any I/O
        return await client.run(plan)

    # --- objects for other connectors (CSV and PDF sources by reference) ----------------------------

    async def read_object_bytes(self, key: str, max_bytes: int) -> bytes:
        """The whole object under `key`, refused over `max_bytes` (and the ingest cap)."""
        await self.open()
        client = self._require_client()
        store = self._store(client, "get_object")
        name = store.names.full(key, "object.key")
        cap = min(max_bytes, self.config.max_ingest_bytes)
        try:
            content, _ = await client.run(partial(read_object, store, name, cap, "max_ingest_bytes"))
        except Exception as exc:
            raise self.translate(exc) from exc
        return content

    @contextmanager
    def stream_object(self, key: str, max_bytes: int) -> Iterator[Iterator[bytes]]:
        """Chunks of the object, read in the calling (worker) thread; refuses past `max_bytes`."""
        client = self._require_client()
        store = self._store(client, "get_object")
        name = store.names.full(key, "object.key")
        try:
            response = store.sdk.get_object(store.bucket, name)
        except Exception as exc:
            raise self.translate(exc) from exc
        try:
            yield _capped_chunks(response.stream(STREAM_CHUNK), max_bytes, self.translate)
        finally:
            response.close()
            response.release_conn()

    def _store(self, client: StoreClient, operation: str) -> Store:
        config = self.config
        if config.bucket_name is None and operation not in BUCKETLESS:
            raise ConfigurationError(
                f"{operation} needs custom_config.bucket_name; this connector names no bucket",
                code=ErrorCode.INVALID_CONFIG,
            )
        return Store(
            sdk=client.sdk,
            bucket=config.bucket_name or "",  # '' only for BUCKETLESS operations, which never use it
            names=self._names,
            region=config.region,
            max_object_bytes=config.max_object_bytes,
            max_ingest_bytes=config.max_ingest_bytes,
            part_size=config.part_size,
        )


STREAM_CHUNK = 256 * 1024


def _capped_chunks(
    chunks: Iterator[bytes], max_bytes: int, translate: Callable[[BaseException], ConnectorError]
) -> Iterator[bytes]:
    size = 0
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise PermanentError(
                    f"the object is larger than the source limit of {max_bytes} bytes",
                    code=ErrorCode.LIMIT_EXCEEDED,
                )
            yield chunk
    except ConnectorError:
        raise
    except Exception as exc:
        raise translate(exc) from exc
