"""Bucket-level operations: list the buckets, create the connector's bucket, list objects in pages.

`list_buckets` is the one read that sees beyond the configured bucket (names only, and the one
operation a connector without a bucket can run); `create_bucket` creates only the configured bucket, so
a connector can never make or touch another one. `probe` is the cheap call `open` and `check` use.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from minio import Minio
from minio.datatypes import Object
from minio.error import S3Error

from scf.connectors.minio.paging import (
    ListPosition,
    decode_list_token,
    encode_list_token,
    listing_scope,
)
from scf.connectors.minio.requests import ListParameters
from scf.connectors.minio.store import Plan, Store, iso
from scf.connectors.operation_table import Call, NoData, NoParameters
from scf.schemas.operation import OperationOutcome

# Listing strictly after the highest code point returns no keys: one GET whose XML error codes tell a
# missing bucket, bad credentials and a missing permission apart, for the price of an empty page (a HEAD
# request would answer all of them with a bare 403/404).
_PAST_EVERY_KEY = "\U0010fffd" * 4
#: Entries (objects and folders together) S3 returns per listing request, the SDK's fixed max-keys.
SERVER_PAGE_ENTRIES = 1000


def probe(sdk: Minio, bucket: str | None, prefix: str) -> bool:
    """Whether the bucket exists; raises for an unreachable store, bad credentials or no permission.

    Without a bucket the probe lists the buckets instead (and needs s3:ListAllMyBuckets).
    """
    if bucket is None:
        sdk.list_buckets()
        return True
    try:
        next(
            iter(sdk.list_objects(bucket, prefix=prefix or None, start_after=prefix + _PAST_EVERY_KEY)), None
        )
    except S3Error as exc:
        if exc.code == "NoSuchBucket":
            return False
        raise
    return True


def plan_list_buckets(store: Store, call: Call[NoData, NoParameters]) -> Plan:
    return lambda: list_buckets(store)


def list_buckets(store: Store) -> OperationOutcome:
    buckets = [
        {"name": bucket.name, "creation_date": iso(bucket.creation_date)}
        for bucket in store.sdk.list_buckets()
    ]
    return OperationOutcome(records_processed=len(buckets), result_data={"buckets": buckets})


def plan_create_bucket(store: Store, call: Call[NoData, NoParameters]) -> Plan:
    return lambda: create_bucket(store)


def create_bucket(store: Store) -> OperationOutcome:
    """Create the configured bucket; one that exists already is success with `created: false`.

    The existence check comes first because S3 in us-east-1 (and moto) answers a repeated create with 200.
    """
    created = not store.sdk.bucket_exists(store.bucket)
    if created:
        try:
            store.sdk.make_bucket(store.bucket, location=store.region)
        except S3Error as exc:
            if exc.code != "BucketAlreadyOwnedByYou":  # created meanwhile by another call
                raise
            created = False
    return OperationOutcome(
        records_processed=1,
        records_affected=int(created),
        result_data={"bucket": store.bucket, "created": created},
    )


def plan_list_objects(store: Store, call: Call[NoData, ListParameters]) -> Plan:
    params = call.parameters
    prefix = store.names.listing(params.prefix)
    scope = listing_scope(store.bucket, prefix, params.recursive)
    position = None
    if call.page_token is not None:
        position = decode_list_token(call.page_token, scope, store.names.relative(prefix))
    return lambda: list_objects(store, params, prefix, scope, position)


def list_objects(
    store: Store, params: ListParameters, prefix: str, scope: str, position: ListPosition | None
) -> OperationOutcome:
    """One page of keys under `prefix`, in key order; folders appear as entries when not recursive."""
    start_after = store.names.prefix + position.after if position else None
    listing = store.sdk.list_objects(
        store.bucket, prefix=prefix or None, recursive=params.recursive, start_after=start_after
    )
    # The listed folder's own marker object (consoles create one) is not an entry of it.
    listing = (entry for entry in listing if entry.object_name and entry.object_name != prefix)
    if position is not None and position.folder:
        # S3 rolls the keys after a folder's name up into that folder again: skip what was shown already
        skip = store.names.prefix + position.after
        listing = (entry for entry in listing if not (entry.object_name or "").startswith(skip))
    entries = first_entries(listing, params.size + 1, ordered=params.recursive)
    page = entries[: params.size]
    objects: list[dict[str, Any]] = [
        {
            "key": store.names.relative(entry.object_name or ""),
            "size": entry.size,
            "etag": entry.etag,
            "last_modified": iso(entry.last_modified),
            "is_dir": entry.is_dir,
        }
        for entry in page
    ]
    token = None
    if len(entries) > params.size:
        last = objects[-1]
        # only a folder of a non-recursive listing stands for the keys under it (a recursive listing
        # shows a folder-marker object, then its keys)
        folder = bool(last["is_dir"]) and not params.recursive
        token = encode_list_token(ListPosition(last["key"], folder), scope)
    return OperationOutcome(
        records_processed=len(objects),
        result_data={"bucket": store.bucket, "prefix": store.names.relative(prefix), "objects": objects},
        next_page_token=token,
    )


def first_entries(listing: Iterable[Object], count: int, *, ordered: bool) -> list[Object]:
    """The `count` smallest entries of a listing.

    The SDK yields each server page's objects and then its folders, so without `recursive` a folder
    may follow objects that sort after it. Reading on to the end of the server page the last entry came
    from (at most one page more) and sorting restores key order; later pages only hold larger names.
    """
    entries = iter(listing)
    first = list(islice(entries, count))
    if not ordered and len(first) == count:
        first.extend(islice(entries, SERVER_PAGE_ENTRIES))
    return sorted(first, key=lambda entry: entry.object_name or "")[:count]


#: Operations that need no configured bucket.
BUCKETLESS = frozenset({"list_buckets"})
