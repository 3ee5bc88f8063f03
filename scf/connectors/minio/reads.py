"""Object reads: `get_object` (whole or a byte range) and the whole-object read behind `ingest`.

Bodies travel inside reply messages, so every read is capped: the declared size is checked before a byte
is read, and the stream is cut off as soon as it passes the cap (a store may omit or misstate the size).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from minio.time import from_http_header
from urllib3 import BaseHTTPResponse

from scf.connectors.minio.bodies import encode_reply, user_metadata
from scf.connectors.minio.requests import GetParameters
from scf.connectors.minio.store import Plan, Store, iso
from scf.connectors.operation_table import Call, NoData
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

_READ_CHUNK = 256 * 1024


def plan_get(store: Store, call: Call[NoData, GetParameters]) -> Plan:
    params = call.parameters
    name = store.names.full(params.key)
    cap = store.max_object_bytes
    if params.length is not None and params.length > cap:
        raise PermanentError(
            f"parameters.length {params.length} exceeds custom_config.max_object_bytes ({cap})",
            code=ErrorCode.LIMIT_EXCEEDED,
        )
    return lambda: get_object(store, name, params)


def get_object(store: Store, name: str, params: GetParameters) -> OperationOutcome:
    """The object, or a byte range of it; a whole object over the cap is refused, an open range capped."""
    cap = store.max_object_bytes
    ranged = params.offset is not None or params.length is not None
    offset = params.offset or 0
    length = params.length or (cap if ranged else 0)
    with _opened(store.sdk.get_object(store.bucket, name, offset=offset, length=length)) as response:
        total = object_size(response)
        if not ranged and total is not None and total > cap:
            raise _over_cap(total, cap, "max_object_bytes", "ask for a byte range (offset, length)")
        content = read_capped(response, cap, "max_object_bytes", "ask for a byte range (offset, length)")
        headers = response.headers
    end = offset + len(content)
    result: dict[str, Any] = {
        "bucket": store.bucket,
        "key": store.names.relative(name),
        "encoding": params.encoding,
        "data": encode_reply(content, params.encoding),
        "offset": offset,
        "length": len(content),
        "size": total,
        "truncated": total is not None and end < total,
        "next_offset": end if total is not None and end < total else None,
        "content_type": headers.get("Content-Type"),
        "etag": (headers.get("ETag") or "").strip('"') or None,
        "last_modified": http_date_iso(headers.get("Last-Modified")),
        "metadata": user_metadata(headers),
    }
    return OperationOutcome(records_processed=1, result_data=result)


def read_object(store: Store, name: str, cap: int, limit_name: str) -> tuple[bytes, dict[str, Any]]:
    """The whole object (refused over `cap` before reading it) and the facts ingest reports about it."""
    with _opened(store.sdk.get_object(store.bucket, name)) as response:
        total = object_size(response)
        if total is not None and total > cap:
            raise _over_cap(total, cap, limit_name, "raise the limit or split the object")
        content = read_capped(response, cap, limit_name, "raise the limit or split the object")
        etag = (response.headers.get("ETag") or "").strip('"') or None
    return content, {
        "bucket": store.bucket,
        "key": store.names.relative(name),
        "size": len(content),
        "etag": etag,
    }


@contextmanager
def _opened(response: BaseHTTPResponse) -> Iterator[BaseHTTPResponse]:
    try:
        yield response
    finally:
        response.close()
        response.release_conn()


def http_date_iso(value: str | None) -> str | None:
    try:
        return iso(from_http_header(value)) if value else None
    except ValueError:
        return None  # a store's odd date is not worth failing a read for


def object_size(response: BaseHTTPResponse) -> int | None:
    """The whole object's size: after the '/' of Content-Range for a range, else Content-Length."""
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length is not None and length.isdigit() else None


def read_capped(response: BaseHTTPResponse, cap: int, limit_name: str, hint: str) -> bytes:
    """Read the body, refusing as soon as it passes `cap` (a store may omit or misstate the length)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.stream(_READ_CHUNK):
        size += len(chunk)
        if size > cap:
            raise _over_cap(size, cap, limit_name, hint)
        chunks.append(chunk)
    return b"".join(chunks)


def _over_cap(size: int, cap: int, limit_name: str, hint: str) -> PermanentError:
    return PermanentError(
        f"the object holds {size} bytes or more, over custom_config.{limit_name} ({cap}); {hint}",
        code=ErrorCode.LIMIT_EXCEEDED,
    )
