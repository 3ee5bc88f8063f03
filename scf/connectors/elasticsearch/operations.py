"""The Elasticsearch operation table: each row's models, traits and thin handler.

A handler resolves and checks the index names (before any I/O), then runs one of the I/O functions of
`indices.py`, `documents.py` or `search.py` through `ElasticsearchConnector.run`, which supplies the
client with the request's timeout. Old request shapes live on as `Alias`es (CHANGELOG.md).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from scf.connectors.elasticsearch.documents import run_delete, run_get, run_insert, run_update
from scf.connectors.elasticsearch.indices import run_create_index, run_delete_index, run_list_indices
from scf.connectors.elasticsearch.names import check_index, check_index_target
from scf.connectors.elasticsearch.requests import (
    AggregateParameters,
    CountParameters,
    CreateIndexParameters,
    DeleteIndexParameters,
    DeleteParameters,
    GetParameters,
    InsertData,
    InsertParameters,
    ListIndicesParameters,
    SearchParameters,
    UpdateData,
    UpdateParameters,
)
from scf.connectors.elasticsearch.search import run_aggregate, run_count, run_search
from scf.connectors.operation_table import (
    IDEMPOTENT_WRITE,
    PAGED_READ,
    READ,
    WRITE,
    Alias,
    Call,
    NoData,
    Operation,
    table,
)
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

if TYPE_CHECKING:
    from scf.connectors.elasticsearch.connector import ElasticsearchConnector


async def create_index(
    conn: ElasticsearchConnector, call: Call[NoData, CreateIndexParameters]
) -> OperationOutcome:
    index = conn.index(call.parameters.index)
    return await conn.run(call, lambda es: run_create_index(es, index, call.parameters))


async def delete_index(
    conn: ElasticsearchConnector, call: Call[NoData, DeleteIndexParameters]
) -> OperationOutcome:
    index = check_index(call.parameters.index)  # never the default index: deleting one is always explicit
    return await conn.run(call, lambda es: run_delete_index(es, index, call.parameters))


async def list_indices(
    conn: ElasticsearchConnector, call: Call[NoData, ListIndicesParameters]
) -> OperationOutcome:
    pattern = check_index_target(call.parameters.pattern, "parameters.pattern")
    return await conn.run(call, lambda es: run_list_indices(es, pattern, call.parameters))


async def insert(conn: ElasticsearchConnector, call: Call[InsertData, InsertParameters]) -> OperationOutcome:
    index = conn.index(call.parameters.index)
    key = call.request.idempotency_key or call.request.operation_id or uuid.uuid4().hex
    return await conn.run(call, lambda es: run_insert(es, index, call.data, call.parameters, key))


async def get(conn: ElasticsearchConnector, call: Call[NoData, GetParameters]) -> OperationOutcome:
    index = conn.index(call.parameters.index)
    return await conn.run(call, lambda es: run_get(es, index, call.parameters))


async def update(conn: ElasticsearchConnector, call: Call[UpdateData, UpdateParameters]) -> OperationOutcome:
    index = conn.index(call.parameters.index)
    return await conn.run(call, lambda es: run_update(es, index, call.data, call.parameters))


async def delete(conn: ElasticsearchConnector, call: Call[NoData, DeleteParameters]) -> OperationOutcome:
    index = conn.index(call.parameters.index)
    return await conn.run(call, lambda es: run_delete(es, index, call.parameters))


async def search(conn: ElasticsearchConnector, call: Call[NoData, SearchParameters]) -> OperationOutcome:
    if call.page_token is not None and call.parameters.from_:
        raise PermanentError(
            "from cannot be combined with page_token: pages continue from the token",
            code=ErrorCode.INVALID_REQUEST,
        )
    target = conn.target(call.parameters.index)
    return await conn.run(call, lambda es: run_search(es, target, call.parameters, call.page_token))


async def aggregate(
    conn: ElasticsearchConnector, call: Call[NoData, AggregateParameters]
) -> OperationOutcome:
    target = conn.target(call.parameters.index)
    return await conn.run(call, lambda es: run_aggregate(es, target, call.parameters))


async def count(conn: ElasticsearchConnector, call: Call[NoData, CountParameters]) -> OperationOutcome:
    target = conn.target(call.parameters.index)
    return await conn.run(call, lambda es: run_count(es, target, call.parameters))


OPERATION_TABLE = table(
    Operation(
        "create_index",
        create_index,
        parameters=CreateIndexParameters,
        traits=WRITE,
        summary="create one index with mappings, settings, aliases (if_not_exists: accept an existing one)",
    ),
    Operation(
        "delete_index",
        delete_index,
        parameters=DeleteIndexParameters,
        traits=WRITE,
        summary="delete one named index (if_exists: accept a missing one)",
    ),
    Operation(
        "list_indices",
        list_indices,
        parameters=ListIndicesParameters,
        traits=READ,
        summary="indices matching a pattern, with health, status, document count and size",
    ),
    Operation(
        "insert",
        insert,
        data=InsertData,
        parameters=InsertParameters,
        traits=IDEMPOTENT_WRITE,
        summary="bulk-index documents in batches under deterministic ids (a retry overwrites its own)",
        aliases=(Alias("data", "records", "data", "documents"),),
    ),
    Operation("get", get, parameters=GetParameters, traits=READ, summary="one document by id"),
    Operation(
        "update",
        update,
        data=UpdateData,
        parameters=UpdateParameters,
        traits=IDEMPOTENT_WRITE,
        summary="merge a partial document into one document (upsert: create it if missing)",
    ),
    Operation(
        "delete",
        delete,
        parameters=DeleteParameters,
        traits=IDEMPOTENT_WRITE,
        summary="delete one document by id, or every document a query matches",
    ),
    Operation(
        "search",
        search,
        parameters=SearchParameters,
        traits=PAGED_READ,
        summary="one page of hits; paginate (or a page_token) pages with search_after in a point in time",
        aliases=(Alias("parameters", "size", "parameters", "page_size"),),
    ),
    Operation(
        "aggregate",
        aggregate,
        parameters=AggregateParameters,
        traits=READ,
        summary="aggregations over the documents a query matches (no hits)",
        aliases=(Alias("parameters", "aggregations", "parameters", "aggs", deprecated=False),),
    ),
    Operation(
        "count", count, parameters=CountParameters, traits=READ, summary="how many documents a query matches"
    ),
)
