"""The Qdrant operation table: each row's models, traits and thin handler.

A handler resolves the collection (the request's, else `custom_config.collection_name`) and checks
what the models cannot, before any I/O; it then runs one function of `operations.py` through
`QdrantVectorConnector.run`, which names the collection if Qdrant reports it missing. Old request
shapes live on as `Alias`es (CHANGELOG.md).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from scf.connectors.operation_table import (
    IDEMPOTENT_WRITE,
    PAGED_READ,
    READ,
    WRITE,
    Alias,
    Call,
    Handler,
    NoData,
    NoParameters,
    Operation,
    Strict,
    Traits,
    table,
)
from scf.connectors.qdrant import operations as ops
from scf.connectors.qdrant.catalog import collection_plan
from scf.connectors.qdrant.requests import (
    CountParameters,
    CreateCollectionParameters,
    DeleteParameters,
    RetrieveParameters,
    ScrollParameters,
    SearchParameters,
    Target,
    WriteData,
    WriteParameters,
    require_selection,
)
from scf.schemas.configs.qdrant import QdrantConfig
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome, OperationRequest

if TYPE_CHECKING:
    from scf.connectors.qdrant.connector import QdrantVectorConnector

#: Every row naming a collection still takes today's `parameters.collection_name`.
COLLECTION_NAME = Alias("parameters", "collection_name", "parameters", "collection")
#: `limit` was the page size of search and scroll.
LIMIT = Alias("parameters", "limit", "parameters", "page_size")


def collection_of(target: Target, config: QdrantConfig) -> str:
    name = target.collection or config.collection_name
    if name is None:
        raise PermanentError(
            "no collection: give parameters.collection or set custom_config.collection_name",
            code=ErrorCode.INVALID_REQUEST,
        )
    return name


def write_key(request: OperationRequest) -> str:
    """What derived point ids hang on: the idempotency key, else the operation id (same on redelivery)."""
    return request.idempotency_key or request.operation_id or uuid.uuid4().hex


async def write(conn: QdrantVectorConnector, call: Call[WriteData, WriteParameters]) -> OperationOutcome:
    """insert / upsert: Qdrant replaces a point whose id exists, so both write the same way."""
    name, key, data, params = (
        collection_of(call.parameters, conn.config),
        write_key(call.request),
        call.data,
        call.parameters,
    )
    return await conn.run(
        call, name, lambda client: ops.run_write(client, conn.catalog, name, data, params, key, conn.config)
    )


async def search(conn: QdrantVectorConnector, call: Call[NoData, SearchParameters]) -> OperationOutcome:
    if call.page_token is not None and call.parameters.offset:
        raise PermanentError(
            "offset cannot be combined with page_token: pages continue from the token",
            code=ErrorCode.INVALID_REQUEST,
        )
    name = collection_of(call.parameters, conn.config)
    return await conn.run(
        call,
        name,
        lambda client: ops.run_search(client, conn.catalog, name, call.parameters, call.page_token),
    )


async def retrieve(conn: QdrantVectorConnector, call: Call[NoData, RetrieveParameters]) -> OperationOutcome:
    name = collection_of(call.parameters, conn.config)
    return await conn.run(call, name, lambda client: ops.run_retrieve(client, name, call.parameters))


async def scroll(conn: QdrantVectorConnector, call: Call[NoData, ScrollParameters]) -> OperationOutcome:
    name = collection_of(call.parameters, conn.config)
    return await conn.run(
        call, name, lambda client: ops.run_scroll(client, name, call.parameters, call.page_token)
    )


async def count(conn: QdrantVectorConnector, call: Call[NoData, CountParameters]) -> OperationOutcome:
    name = collection_of(call.parameters, conn.config)
    return await conn.run(call, name, lambda client: ops.run_count(client, name, call.parameters))


async def delete(conn: QdrantVectorConnector, call: Call[NoData, DeleteParameters]) -> OperationOutcome:
    require_selection(call.parameters)
    name = collection_of(call.parameters, conn.config)
    return await conn.run(call, name, lambda client: ops.run_delete(client, name, call.parameters))


async def create_collection(
    conn: QdrantVectorConnector, call: Call[NoData, CreateCollectionParameters]
) -> OperationOutcome:
    params = call.parameters
    plan = collection_plan(collection_of(params, conn.config), params, conn.config)
    return await conn.run(
        call,
        plan.name,
        lambda client: ops.run_create_collection(client, conn.catalog, plan, params.if_not_exists),
    )


async def delete_collection(conn: QdrantVectorConnector, call: Call[NoData, Target]) -> OperationOutcome:
    name = collection_of(call.parameters, conn.config)
    return await conn.run(call, name, lambda client: ops.run_delete_collection(client, conn.catalog, name))


async def list_collections(conn: QdrantVectorConnector, call: Call[NoData, NoParameters]) -> OperationOutcome:
    return await conn.run(call, None, ops.run_list_collections)


def on_collection(
    name: str,
    handler: Handler[QdrantVectorConnector],
    parameters: type[Target],
    traits: Traits,
    summary: str,
    *aliases: Alias,
    data: type[Strict] = NoData,
) -> Operation[QdrantVectorConnector]:
    """A row acting on one collection: it also takes today's `parameters.collection_name`."""
    return Operation(name, handler, data, parameters, traits, summary, (COLLECTION_NAME, *aliases))


IDS = Alias("data", "ids", "parameters", "ids")
WRITE_SUMMARY = "store vectors with their metadata; ids derived from the request if not given"

OPERATION_TABLE = table(
    on_collection(
        "create_collection",
        create_collection,
        CreateCollectionParameters,
        WRITE,
        "create a collection (dimension and metric from parameters, else custom_config)",
    ),
    on_collection("insert", write, WriteParameters, IDEMPOTENT_WRITE, WRITE_SUMMARY, data=WriteData),
    on_collection(
        "upsert",
        write,
        WriteParameters,
        IDEMPOTENT_WRITE,
        WRITE_SUMMARY + " (same as insert)",
        data=WriteData,
    ),
    on_collection(
        "search",
        search,
        SearchParameters,
        PAGED_READ,
        "one page of the points nearest to parameters.vector, optionally filtered",
        LIMIT,
        Alias("data", "vector", "parameters", "vector"),
        Alias("data", "query_vector", "parameters", "vector"),
    ),
    on_collection("retrieve", retrieve, RetrieveParameters, READ, "points by id (missing ones listed)", IDS),
    on_collection("scroll", scroll, ScrollParameters, PAGED_READ, "every (or each matching) point", LIMIT),
    on_collection("count", count, CountParameters, READ, "how many points (a filter matches)"),
    on_collection("delete", delete, DeleteParameters, IDEMPOTENT_WRITE, "points by ids or by a filter", IDS),
    on_collection(
        "delete_collection",
        delete_collection,
        Target,
        IDEMPOTENT_WRITE,
        "a collection (missing: deleted false)",
    ),
    Operation("list_collections", list_collections, traits=READ, summary="the names of every collection"),
)
