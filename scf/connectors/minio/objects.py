"""Object writes and facts: put, stat, copy, delete (one or many) and presigned URLs.

Each `plan_*` checks its request on the event loop (keys, metadata, content type) and returns the
blocking call that does the I/O. Every object name comes from `ObjectNames.full`, so every call stays
inside the connector's bucket and prefix. Reads live in `reads.py`.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from minio.commonconfig import REPLACE, CopySource
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from scf.connectors.minio.bodies import (
    Body,
    base64_body,
    check_content_type,
    json_body,
    metadata_headers,
    text_body,
    user_metadata,
)
from scf.connectors.minio.requests import (
    CopyParameters,
    DeleteManyParameters,
    KeyParameters,
    PresignParameters,
    PutData,
    PutParameters,
)
from scf.connectors.minio.store import Plan, Planner, Store, iso
from scf.connectors.operation_table import Call, NoData
from scf.schemas.operation import OperationOutcome

# --- put ----------------------------------------------------------------------------------------------


def plan_put(store: Store, call: Call[PutData, PutParameters]) -> Plan:
    params, data = call.parameters, call.data
    name = store.names.full(params.key)
    headers = metadata_headers(params.metadata)
    content_type = check_content_type(params.content_type) if params.content_type else None
    return lambda: put_object(store, name, data, content_type, headers)


def put_body(data: PutData, limit: int) -> Body:
    if data.text is not None:
        return text_body(data.text, limit)
    if data.base64 is not None:
        return base64_body(data.base64, limit)
    return json_body(data.json_, limit)


def put_object(
    store: Store, name: str, data: PutData, content_type: str | None, headers: dict[str, str]
) -> OperationOutcome:
    """Store the body; over `part_size` the SDK uploads it in parts (and aborts the upload on failure)."""
    body = put_body(data, store.max_object_bytes)  # decoding a large body is CPU work: done in the thread
    content_type = content_type or body.default_content_type
    written = store.sdk.put_object(
        store.bucket,
        name,
        io.BytesIO(body.content),
        len(body.content),
        content_type=content_type,
        metadata=dict(headers),
        part_size=store.part_size,
        num_parallel_uploads=1,  # parts go one after another in this thread: the pool stays the bound
    )
    return OperationOutcome(
        records_processed=1,
        records_affected=1,
        result_data={
            "bucket": store.bucket,
            "key": store.names.relative(name),
            "size": len(body.content),
            "content_type": content_type,
            "etag": written.etag,
            "version_id": written.version_id,
            "multipart": len(body.content) > store.part_size,
        },
    )


# --- stat, copy, delete -----------------------------------------------------------------------------


def plan_stat(store: Store, call: Call[NoData, KeyParameters]) -> Plan:
    name = store.names.full(call.parameters.key)
    return lambda: stat_object(store, name)


def stat_object(store: Store, name: str) -> OperationOutcome:
    try:
        info = store.sdk.stat_object(store.bucket, name)
    except S3Error as exc:
        # A HEAD answer has no body: the SDK calls every 404 NoSuchKey. Tell a missing bucket apart.
        if exc.code == "NoSuchKey" and not store.sdk.bucket_exists(store.bucket):
            raise exc.copy("NoSuchBucket", "The specified bucket does not exist") from None
        raise
    result = {
        "bucket": store.bucket,
        "key": store.names.relative(name),
        "size": info.size,
        "etag": info.etag,
        "content_type": info.content_type,
        "last_modified": iso(info.last_modified),
        "version_id": info.version_id,
        "metadata": user_metadata(info.metadata or {}),
    }
    return OperationOutcome(records_processed=1, result_data=result)


def plan_copy(store: Store, call: Call[NoData, CopyParameters]) -> Plan:
    params = call.parameters
    source = store.names.full(params.source_key, "parameters.source_key")
    target = store.names.full(params.key)
    replace: dict[str, str] | None = None
    if params.metadata is not None or params.content_type is not None:
        replace = metadata_headers(params.metadata or {})
        if params.content_type is not None:
            replace["Content-Type"] = check_content_type(params.content_type)
    return lambda: copy_object(store, source, target, replace)


def copy_object(store: Store, source: str, target: str, replace: dict[str, str] | None) -> OperationOutcome:
    """Server-side copy inside the bucket; `replace` (headers) swaps the metadata for new ones."""
    written = store.sdk.copy_object(
        store.bucket,
        target,
        CopySource(store.bucket, source),
        metadata=dict(replace) if replace is not None else None,
        metadata_directive=REPLACE if replace is not None else None,
    )
    result = {
        "bucket": store.bucket,
        "key": store.names.relative(target),
        "source_key": store.names.relative(source),
        "etag": written.etag,
        "version_id": written.version_id,
    }
    return OperationOutcome(records_processed=1, records_affected=1, result_data=result)


def plan_delete(store: Store, call: Call[NoData, KeyParameters]) -> Plan:
    name = store.names.full(call.parameters.key)
    return lambda: delete_object(store, name)


def delete_object(store: Store, name: str) -> OperationOutcome:
    """Remove one object. Like S3, removing a key that does not exist succeeds (retries are harmless)."""
    store.sdk.remove_object(store.bucket, name)
    result = {"bucket": store.bucket, "key": store.names.relative(name), "deleted": True}
    return OperationOutcome(records_processed=1, records_affected=1, result_data=result)


def plan_delete_many(store: Store, call: Call[NoData, DeleteManyParameters]) -> Plan:
    params = call.parameters
    names = [store.names.full(key, f"parameters.keys[{i}]") for i, key in enumerate(params.keys)]
    unique = list(dict.fromkeys(names))
    return lambda: delete_objects(store, unique)


def delete_objects(store: Store, names: list[str]) -> OperationOutcome:
    """Remove many objects in one request (1000 at most); per-key failures are reported, not raised."""
    failures = list(store.sdk.remove_objects(store.bucket, [DeleteObject(name) for name in names]))
    failed = {error.name for error in failures}
    errors = [
        {
            "key": store.names.relative(error.name) if error.name else None,
            "code": error.code,
            "message": error.message,
        }
        for error in failures
    ]
    deleted = [store.names.relative(name) for name in names if name not in failed]
    return OperationOutcome(
        records_processed=len(names),
        records_affected=len(deleted),
        result_data={"bucket": store.bucket, "deleted": deleted, "errors": errors},
    )


# --- presigned URLs ---------------------------------------------------------------------------------


def plan_presign(method: str) -> Planner:
    def plan(store: Store, call: Call[NoData, PresignParameters]) -> Plan:
        params = call.parameters
        name = store.names.full(params.key)
        return lambda: presign(store, method, name, params.expires)

    return plan


def presign(store: Store, method: str, name: str, seconds: int) -> OperationOutcome:
    """A URL anyone holding it may use until it expires: it is the credential, so it is never logged."""
    expires = timedelta(seconds=seconds)
    issued = datetime.now(UTC)
    url = store.sdk.get_presigned_url(method, store.bucket, name, expires=expires, request_date=issued)
    result = {
        "bucket": store.bucket,
        "key": store.names.relative(name),
        "method": method,
        "url": url,
        "expires_in": seconds,
        "expires_at": (issued + expires).isoformat(),
    }
    return OperationOutcome(records_processed=1, result_data=result)
