"""Every MinIO operation as one row: its models, its planner and its traits.

A row's handler builds the operation's `Store` (the connector's bucket, names and limits), lets the
planner check what the models cannot (keys under the prefix, metadata, content type) on the event loop,
then runs the plan's blocking I/O in the connector's thread pool. `ingest` reads an object and parses it
with the pure CSV or PDF parser (`ingest.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from scf.connectors.minio import buckets, objects, reads
from scf.connectors.minio.ingest import IngestParameters, handle_ingest
from scf.connectors.minio.requests import (
    CopyParameters,
    DeleteManyParameters,
    GetParameters,
    KeyParameters,
    ListParameters,
    PresignParameters,
    PutData,
    PutParameters,
)
from scf.connectors.minio.store import Planner
from scf.connectors.operation_table import (
    IDEMPOTENT_WRITE,
    PAGED_READ,
    READ,
    Call,
    NoData,
    NoParameters,
    Operation,
    Traits,
    table,
)
from scf.schemas.operation import OperationOutcome

if TYPE_CHECKING:
    from scf.connectors.minio.connector import MinIOStorageConnector


def planned(
    name: str,
    planner: Planner,
    parameters: type[BaseModel],
    traits: Traits,
    summary: str,
    data: type[BaseModel] = NoData,
) -> Operation[MinIOStorageConnector]:
    async def handler(connector: MinIOStorageConnector, call: Call[Any, Any]) -> OperationOutcome:
        return await connector.run_plan(name, planner, call)

    return Operation(name, handler, data, parameters, traits, summary)


#: A presigned PUT changes nothing itself, but hands out the right to write: declared a write.
GRANTS_WRITE = Traits(writes=True, idempotent=True)

OPERATIONS = table(
    planned("list_buckets", buckets.plan_list_buckets, NoParameters, READ, "the store's buckets"),
    planned("create_bucket", buckets.plan_create_bucket, NoParameters, IDEMPOTENT_WRITE, "create the bucket"),
    planned("list_objects", buckets.plan_list_objects, ListParameters, PAGED_READ, "a page of keys"),
    planned("put_object", objects.plan_put, PutParameters, IDEMPOTENT_WRITE, "store an object", PutData),
    planned("get_object", reads.plan_get, GetParameters, READ, "an object's body (or a range of it)"),
    planned("stat_object", objects.plan_stat, KeyParameters, READ, "an object's size, type and metadata"),
    planned("copy_object", objects.plan_copy, CopyParameters, IDEMPOTENT_WRITE, "server-side copy"),
    planned("delete_object", objects.plan_delete, KeyParameters, IDEMPOTENT_WRITE, "remove one object"),
    planned(
        "delete_objects", objects.plan_delete_many, DeleteManyParameters, IDEMPOTENT_WRITE, "remove many"
    ),
    planned("presigned_get", objects.plan_presign("GET"), PresignParameters, READ, "a time-limited GET URL"),
    planned("presigned_put", objects.plan_presign("PUT"), PresignParameters, GRANTS_WRITE, "a PUT URL"),
    Operation(
        "ingest",
        handle_ingest,
        NoData,
        IngestParameters,
        PAGED_READ,
        "parse a CSV or PDF object where it lives (pages of records)",
    ),
)
