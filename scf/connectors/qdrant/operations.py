"""The operations as thin I/O around the pure parts: check dimensions, map ids, translate filters, call.

Writes wait for Qdrant to apply them (`wait=True`), so a success reply means the points are searchable.
An insert's batches are not atomic, but their ids are deterministic: a retried or redelivered insert
rewrites the same points, which makes a partial first attempt harmless.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from qdrant_client import AsyncQdrantClient, models

from scf.connectors.qdrant.catalog import (
    UNNAMED,
    Catalog,
    CollectionPlan,
    VectorSpace,
    collection_plan,
    create_collection,
)
from scf.connectors.qdrant.errors import collection_exists
from scf.connectors.qdrant.filters import to_qdrant
from scf.connectors.qdrant.ids import (
    RESERVED_ID_KEY,
    ResolvedId,
    derive_id,
    plain_id,
    public_id,
    resolve_id,
)
from scf.connectors.qdrant.paging import decode_page_token, encode_page_token, query_fingerprint
from scf.connectors.qdrant.requests import (
    MAX_OFFSET,
    CountParameters,
    CreateCollectionParameters,
    DeleteParameters,
    ReadOptions,
    RetrieveParameters,
    ScrollParameters,
    SearchParameters,
    WriteData,
    WriteParameters,
)
from scf.schemas.configs.qdrant import QdrantConfig
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

Selector = bool | list[str]


def payload_selector(with_payload: Selector) -> Selector:
    """Always fetch the reserved id key, so results can show the caller's own ids."""
    if with_payload is True:
        return True
    return [*(with_payload or ()), RESERVED_ID_KEY]


def point_json(point: models.Record | models.ScoredPoint, options: ReadOptions) -> dict[str, Any]:
    """One point as the caller sees it: their id, score (searches), payload and vector when asked."""
    payload = dict(point.payload or {})
    body: dict[str, Any] = {"id": public_id(point.id, payload)}
    if isinstance(point, models.ScoredPoint):
        body["score"] = point.score
    if options.with_payload is not False:
        payload.pop(RESERVED_ID_KEY, None)
        body["payload"] = payload
    if options.with_vectors:
        body["vector"] = _jsonable(point.vector)
    return body


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# --- points -----------------------------------------------------------------------------------------


async def run_write(
    client: AsyncQdrantClient,
    catalog: Catalog,
    collection: str,
    data: WriteData,
    params: WriteParameters,
    key: str,
    config: QdrantConfig,
) -> OperationOutcome:
    """insert / upsert: Qdrant replaces a point whose id exists, so both write the same way."""
    if params.create_collection_if_missing and not await client.collection_exists(collection):
        plan = collection_plan(collection, CreateCollectionParameters(), config, len(data.vectors[0]))
        try:
            await create_collection(client, plan)
        except Exception as exc:
            if not collection_exists(exc):
                raise  # created meanwhile by another request is fine: it is checked just below
    name = await catalog.vector_for(client, collection, params.vector_name, data.vectors)
    count = len(data.vectors)
    if data.ids is not None:
        resolved = [resolve_id(i) for i in data.ids]
    else:
        resolved = [ResolvedId(derive_id(key, index)) for index in range(count)]
    metadata = data.metadata or [{}] * count
    points = [
        models.PointStruct(
            id=rid.point_id,
            vector=vector if name is None else {name: vector},
            payload={**meta, RESERVED_ID_KEY: rid.original} if rid.original is not None else meta,
        )
        for rid, vector, meta in zip(resolved, data.vectors, metadata, strict=True)
    ]
    for start in range(0, count, params.batch_size):
        await client.upsert(collection, points=points[start : start + params.batch_size], wait=True)
    return OperationOutcome(
        records_processed=count,
        records_affected=count,
        result_data={
            "collection": collection,
            "ids": [rid.public for rid in resolved],
            "batches": math.ceil(count / params.batch_size),
        },
    )


async def run_search(
    client: AsyncQdrantClient,
    catalog: Catalog,
    collection: str,
    params: SearchParameters,
    page_token: str | None,
) -> OperationOutcome:
    """One page of the nearest points; the token carries the next page's offset, bound to the query."""
    name = await catalog.vector_for(client, collection, params.vector_name, [params.vector])
    query_filter = to_qdrant(params.filter)
    fingerprint = _fingerprint(
        collection, query_filter, params.vector, params.score_threshold, params.vector_name
    )
    offset = _search_offset(decode_page_token(page_token, fingerprint)) if page_token else params.offset
    response = await client.query_points(
        collection,
        query=params.vector,
        using=name,
        query_filter=query_filter,
        limit=params.limit,
        offset=offset or None,
        score_threshold=params.score_threshold,
        with_payload=payload_selector(params.with_payload),
        with_vectors=params.with_vectors,
    )
    points = [point_json(p, params) for p in response.points]
    following = offset + params.limit
    more = len(points) == params.limit and following <= MAX_OFFSET
    return OperationOutcome(
        records_processed=len(points),
        result_data={"collection": collection, "points": points},
        next_page_token=encode_page_token(following, fingerprint) if more else None,
    )


def _fingerprint(collection: str, query_filter: models.Filter | None, *extra: Any) -> str:
    shown = query_filter.model_dump(mode="json") if query_filter else None
    return query_fingerprint(collection, [shown, *extra] if extra else shown)


def _search_offset(offset: object) -> int:
    if not isinstance(offset, int) or offset > MAX_OFFSET:
        raise PermanentError("page_token is not a token of this search", code=ErrorCode.INVALID_REQUEST)
    return offset


async def run_retrieve(
    client: AsyncQdrantClient, collection: str, params: RetrieveParameters
) -> OperationOutcome:
    resolved = [resolve_id(i) for i in params.ids]
    records = await client.retrieve(
        collection,
        ids=[r.point_id for r in resolved],
        with_payload=payload_selector(params.with_payload),
        with_vectors=params.with_vectors,
    )
    by_id = {str(record.id): record for record in records}
    found = [by_id[str(r.point_id)] for r in resolved if str(r.point_id) in by_id]
    missing = [r.public for r in resolved if str(r.point_id) not in by_id]
    points = [point_json(record, params) for record in found]
    return OperationOutcome(
        records_processed=len(points),
        result_data={"collection": collection, "points": points, "missing": missing},
    )


async def run_scroll(
    client: AsyncQdrantClient, collection: str, params: ScrollParameters, page_token: str | None
) -> OperationOutcome:
    query_filter = to_qdrant(params.filter)
    fingerprint = _fingerprint(collection, query_filter)
    offset = decode_page_token(page_token, fingerprint) if page_token else None
    records, next_offset = await client.scroll(
        collection,
        scroll_filter=query_filter,
        limit=params.limit,
        offset=offset,
        with_payload=payload_selector(params.with_payload),
        with_vectors=params.with_vectors,
    )
    points = [point_json(record, params) for record in records]
    return OperationOutcome(
        records_processed=len(points),
        result_data={"collection": collection, "points": points},
        next_page_token=None
        if next_offset is None
        else encode_page_token(plain_id(next_offset), fingerprint),
    )


async def run_count(client: AsyncQdrantClient, collection: str, params: CountParameters) -> OperationOutcome:
    result = await client.count(collection, count_filter=to_qdrant(params.filter), exact=params.exact)
    return OperationOutcome(
        result_data={"collection": collection, "count": result.count, "exact": params.exact}
    )


async def run_delete(
    client: AsyncQdrantClient, collection: str, params: DeleteParameters
) -> OperationOutcome:
    """Delete by ids or by filter; `records_affected` is how many points matched just before."""
    if params.ids is not None:
        ids = [resolve_id(i).point_id for i in params.ids]
        selection = models.Filter(must=[models.HasIdCondition(has_id=ids)])
        selector: models.PointIdsList | models.FilterSelector = models.PointIdsList(points=ids)
    else:
        query_filter = to_qdrant(params.filter)
        assert query_filter is not None  # require_selection refused an empty filter
        selection, selector = query_filter, models.FilterSelector(filter=query_filter)
    matched = (await client.count(collection, count_filter=selection, exact=True)).count
    await client.delete(collection, points_selector=selector, wait=True)
    return OperationOutcome(
        records_processed=matched,
        records_affected=matched,
        result_data={"collection": collection, "deleted": matched},
    )


# --- collections ------------------------------------------------------------------------------------


async def run_create_collection(
    client: AsyncQdrantClient, catalog: Catalog, plan: CollectionPlan, if_not_exists: bool
) -> OperationOutcome:
    name = plan.name
    catalog.forget(name)
    created = not await client.collection_exists(name)
    if created:
        await create_collection(client, plan)
    elif not if_not_exists:
        raise PermanentError(
            f"collection {name!r} already exists (set parameters.if_not_exists to accept an existing one)",
            code=ErrorCode.CONSTRAINT_VIOLATION,
        )
    else:
        existing = (await catalog.spaces(client, name)).get(UNNAMED)
        if existing != plan.space:
            raise PermanentError(
                f"collection {name!r} exists with other vectors ({_describe(existing)}) than requested "
                f"({_describe(plan.space)})",
                code=ErrorCode.INVALID_REQUEST,
            )
    return OperationOutcome(
        records_affected=int(created),
        result_data={
            "collection": name,
            "created": created,
            "vector_dimension": plan.space.size,
            "metric": plan.space.distance.lower(),
        },
    )


def _describe(space: VectorSpace | None) -> str:
    return "named vectors" if space is None else f"{space.size} dimensions, {space.distance.lower()}"


async def run_list_collections(client: AsyncQdrantClient) -> OperationOutcome:
    names = sorted(c.name for c in (await client.get_collections()).collections)
    return OperationOutcome(records_processed=len(names), result_data={"collections": names})


async def run_delete_collection(
    client: AsyncQdrantClient, catalog: Catalog, collection: str
) -> OperationOutcome:
    """Deleting a missing collection succeeds with `deleted: false`, so a redelivered delete is harmless."""
    catalog.forget(collection)
    deleted = await client.collection_exists(collection)
    if deleted:
        await client.delete_collection(collection)
    return OperationOutcome(
        records_affected=int(deleted), result_data={"collection": collection, "deleted": deleted}
    )
