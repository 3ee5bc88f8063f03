"""What a connector may use of other connectors without knowing the fleet: objects to read, a sink.

An ingestion connector reads a file by reference (`{"object": {"service_name", "key"}}`) through an
`ObjectReader` it looks up by name, and writes parsed records in batches to a `BatchSink`. The factory
(embedded) or the worker (fleet) binds both; a connector never sees how they are implemented.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scf.connectors.result_cache import MemoryResultCache, ResultCache
from scf.schemas.connection import SERVICE_NAME_PATTERN
from scf.schemas.errors import ConfigurationError, ErrorCode, PermanentError
from scf.schemas.validation import Strict

if TYPE_CHECKING:
    from scf.connectors.base import ServiceConnector

ConnectorLookup = Callable[[str], Awaitable["ServiceConnector"]]


@runtime_checkable
class ObjectReader(Protocol):
    """A connector that holds objects (MinIO/S3)."""

    async def read_object_bytes(self, key: str, max_bytes: int) -> bytes: ...

    def stream_object(self, key: str, max_bytes: int) -> AbstractContextManager[Iterator[bytes]]:
        """Chunks of the object, for a worker thread; refuses past `max_bytes`."""
        ...


class ObjectRef(Strict):
    """An object held by another connector (MinIO/S3): `{"service_name", "key"}`."""

    service_name: str = Field(pattern=SERVICE_NAME_PATTERN)
    key: str = Field(min_length=1, max_length=1024)


FileSource = Literal["file_data", "object", "url"]


class FileData(Strict):
    """`data` of an operation that reads a file: exactly one of `file_data` (inline), `object` (a
    reference to an object store's object) or `url` (fetched through the SSRF guard)."""

    file_data: str | None = None
    object: ObjectRef | None = None
    url: str | None = Field(default=None, max_length=8192)

    def source(self) -> FileSource | None:
        """Which source the request gives; INVALID_REQUEST when it gives several."""
        given: list[FileSource] = [
            name for name in ("file_data", "object", "url") if getattr(self, name) is not None
        ]
        if len(given) > 1:
            raise PermanentError(
                "data needs one source: file_data, object or url, not " + " and ".join(given),
                code=ErrorCode.INVALID_REQUEST,
            )
        return given[0] if given else None


@dataclass(frozen=True)
class UrlSource:
    """A connector's settings for `data.url` (its SSRF guard widening and its time limit)."""

    allowed_hosts: list[str]
    allow_private: bool
    timeout: float


async def fetch_file(data: FileData, bindings: Bindings, url: UrlSource, max_bytes: int) -> bytes | None:
    """The bytes of `data.object` or `data.url`, at most `max_bytes`; None when neither is given."""
    if data.object is None and data.url is None:
        return None
    return await read_reference(data, bindings, url, max_bytes)


async def read_reference(data: FileData, bindings: Bindings, url: UrlSource, max_bytes: int) -> bytes:
    """The one object-source path: `data.object` through the bound `ObjectReader` (the same read MinIO's
    own `ingest` makes on itself), else `data.url` only through the SSRF guard."""
    if data.object is not None:
        reader = await bindings.object_reader(data.object)
        return await reader.read_object_bytes(data.object.key, max_bytes)
    from scf.connectors.url_source import fetch_url_bytes  # the web package is heavy: load on use

    return await fetch_url_bytes(
        data.url or "",
        allowed_hosts=url.allowed_hosts,
        allow_private=url.allow_private,
        max_bytes=max_bytes,
        timeout=time_left(url.timeout),
    )


class SinkTarget(BaseModel):
    """Where parsed records go: an output connector and the table (or index) to write."""

    model_config = ConfigDict(extra="forbid")

    service_name: str = Field(pattern=SERVICE_NAME_PATTERN)
    operation: str = Field(default="insert", pattern=r"^[a-z][a-z0-9_]{0,63}$")
    table_name: str | None = Field(default=None, max_length=63)
    index: str | None = Field(default=None, max_length=255)
    batch_size: int = Field(default=1_000, ge=1, le=10_000)
    parameters: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_destination(self) -> SinkTarget:
        if (self.table_name is None) == (self.index is None):
            raise ValueError("a sink names exactly one of table_name (postgresql) or index (elasticsearch)")
        return self

    def request_body(self, records: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        """`data` and `parameters` of one batch's operation on the sink connector, in the convention:
        the target (PostgreSQL `parameters.table`, Elasticsearch `parameters.index`) in parameters,
        the records in data."""
        parameters = dict(self.parameters)
        if self.table_name is not None:
            parameters["table"] = self.table_name
            parameters.setdefault("batch_size", len(records))
            return {"records": records}, parameters
        parameters["index"] = self.index
        return {"documents": records}, parameters


class BatchSink(Protocol):
    async def write(
        self, target: SinkTarget, records: list[dict[str, Any]], idempotency_key: str, deadline: float
    ) -> int:
        """Write one batch; returns the records it affected. Raises the sink's typed error."""
        ...


@dataclass
class Bindings:
    """What the factory or worker lends a connector; unset parts refuse with a clear error."""

    lookup: ConnectorLookup | None = None
    sink: BatchSink | None = None
    cache: ResultCache = field(default_factory=MemoryResultCache)

    async def object_reader(self, ref: ObjectRef) -> ObjectReader:
        if self.lookup is None:
            raise ConfigurationError(
                "object sources need a factory or fleet that can look up connectors",
                code=ErrorCode.INVALID_CONFIG,
            )
        connector = await self.lookup(ref.service_name)
        if not isinstance(connector, ObjectReader):
            raise ConfigurationError(
                f"connector {ref.service_name!r} holds no objects (use a minio connector)",
                code=ErrorCode.INVALID_CONFIG,
            )
        return connector

    def require_sink(self) -> BatchSink:
        if self.sink is None:
            raise ConfigurationError(
                "this factory has no sink to write records to", code=ErrorCode.INVALID_CONFIG
            )
        return self.sink


#: The absolute deadline of the operation being run (set by the factory), for calls a connector makes.
DEADLINE: ContextVar[float | None] = ContextVar("scf_deadline", default=None)


@overload
def time_left(limit: float) -> float: ...


@overload
def time_left(limit: float | None = None) -> float | None: ...


def time_left(limit: float | None = None) -> float | None:
    """Seconds until the running operation's deadline (`DEADLINE`), never more than `limit`.

    Every I/O call a connector makes takes this as its timeout, so no call outlives the request (or
    the connection test) it serves. None when neither is set; never below a millisecond.
    """
    deadline = DEADLINE.get()
    if deadline is None:
        return limit
    left = max(0.001, deadline - time.time())
    return left if limit is None else min(limit, left)


#: Called with the records done so far by a long operation (set per operation by whoever runs it).
PROGRESS: ContextVar[Callable[[int], None] | None] = ContextVar("scf_progress", default=None)


#: Answers whether the caller cancelled the operation being run (`operation.cancel`).
CANCELLED: ContextVar[Callable[[], bool] | None] = ContextVar("scf_cancelled", default=None)


def report_progress(done: int) -> None:
    """Called by long operations between batches: reports progress, and stops a cancelled operation.

    Raises `permanent` CANCELLED when the caller cancelled it; what earlier batches wrote stays written.
    """
    cancelled = CANCELLED.get()
    if cancelled is not None and cancelled():
        raise PermanentError(f"the operation was cancelled after {done} record(s)", code=ErrorCode.CANCELLED)
    callback = PROGRESS.get()
    if callback is not None:
        callback(done)
