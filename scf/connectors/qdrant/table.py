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
    NoData,
    NoParameters,
    Operation,
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


def _write_row(name: str, summary: str) -> Operation[QdrantVectorConnector]:
    return Operation(
        name,
        write,
        data=WriteData,
        parameters=WriteParameters,
        traits=IDEMPOTENT_WRITE,
        summary=summary,
        aliases=(COLLECTION_NAME,),
    )


OPERATION_TABLE = table(
    Operation(
        "create_collection",
        create_collection,
        parameters=CreateCollectionParameters,
        traits=WRITE,
        summary="create a collection (dimension and metric from parameters, else custom_config)",
        aliases=(COLLECTION_NAME,),
    ),
    _write_row("insert", "store vectors with their metadata (ids derived from the request if not given)"),
    _write_row("upsert", "store vectors, replacing points whose ids exist (the same write as insert)"),
    Operation(
        "search",
        search,
        parameters=SearchParameters,
        traits=PAGED_READ,
        summary="one page of the points nearest to parameters.vector, optionally filtered",
        aliases=(
            COLLECTION_NAME,
            LIMIT,
            Alias("data", "vector", "parameters", "vector"),
            Alias("data", "query_vector", "parameters", "vector"),
        ),
    ),
    Operation(
        "retrieve",
        retrieve,
        parameters=RetrieveParameters,
        traits=READ,
        summary="points by id (missing ids are listed, not an error)",
        aliases=(COLLECTION_NAME, Alias("data", "ids", "parameters", "ids")),
    ),
    Operation(
        "scroll",
        scroll,
        parameters=ScrollParameters,
        traits=PAGED_READ,
        summary="every point (or those a filter matches), page by page",
        aliases=(COLLECTION_NAME, LIMIT),
    ),
    Operation(
        "count",
        count,
        parameters=CountParameters,
        traits=READ,
        summary="how many points (a filter matches)",
        aliases=(COLLECTION_NAME,),
    ),
    Operation(
        "delete",
        delete,
        parameters=DeleteParameters,
        traits=IDEMPOTENT_WRITE,
        summary="delete points by ids or by a non-empty filter",
        aliases=(COLLECTION_NAME, Alias("data", "ids", "parameters", "ids")),
    ),
    Operation("list_collections", list_collections, traits=READ, summary="the names of every collection"),
    Operation(
        "delete_collection",
        delete_collection,
        parameters=Target,
        traits=IDEMPOTENT_WRITE,
        summary="delete a collection and its points (a missing one: deleted false)",
        aliases=(COLLECTION_NAME,),
    ),
)
