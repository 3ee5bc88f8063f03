"""From a request to a plan: parse `data` and `parameters`, resolve the collection, bind the operation.

Everything here happens before any I/O, so a malformed request never reaches Qdrant. The plan names its
collection so that the connector can say which one is missing when Qdrant reports it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from qdrant_client import AsyncQdrantClient

from scf.connectors.qdrant import operations as ops
from scf.connectors.qdrant.catalog import Catalog, collection_plan
from scf.connectors.qdrant.requests import (
    CountParameters,
    CreateCollectionParameters,
    DeleteData,
    DeleteParameters,
    IdsData,
    NoData,
    NoParameters,
    ReadOptions,
    ScrollParameters,
    SearchData,
    SearchParameters,
    Target,
    WriteData,
    WriteParameters,
    parse,
    require_selection,
)
from scf.schemas.configs.qdrant import QdrantConfig
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome, OperationRequest

Run = Callable[[AsyncQdrantClient], Awaitable[OperationOutcome]]


@dataclass(frozen=True)
class Plan:
    collection: str | None
    run: Run


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


def _write(request: OperationRequest, config: QdrantConfig, catalog: Catalog) -> Plan:
    data = parse(WriteData, request.data, "data")
    params = parse(WriteParameters, request.parameters, "parameters")
    name, key = collection_of(params, config), write_key(request)
    return Plan(name, lambda client: ops.run_write(client, catalog, name, data, params, key, config))


def _search(request: OperationRequest, config: QdrantConfig, catalog: Catalog) -> Plan:
    data = parse(SearchData, request.data, "data")
    params = parse(SearchParameters, request.parameters, "parameters")
    name = collection_of(params, config)
    return Plan(name, lambda client: ops.run_search(client, catalog, name, data, params))


def _retrieve(request: OperationRequest, config: QdrantConfig, catalog: Catalog) -> Plan:
    data = parse(IdsData, request.data, "data")
    params = parse(ReadOptions, request.parameters, "parameters")
    name = collection_of(params, config)
    return Plan(name, lambda client: ops.run_retrieve(client, name, data, params))


def _scroll(request: OperationRequest, config: QdrantConfig, catalog: Catalog) -> Plan:
    parse(NoData, request.data, "data")
    params = parse(ScrollParameters, request.parameters, "parameters")
    name, token = collection_of(params, config), request.page_token
    return Plan(name, lambda client: ops.run_scroll(client, name, params, token))


def _count(request: OperationRequest, config: QdrantConfig, catalog: Catalog) -> Plan:
    parse(NoData, request.data, "data")
    params = parse(CountParameters, request.parameters, "parameters")
    name = collection_of(params, config)
    return Plan(name, lambda client: ops.run_count(client, name, params))


def _delete(request: OperationRequest, config: QdrantConfig, catalog: Catalog) -> Plan:
    data = parse(DeleteData, request.data, "data")
    params = parse(DeleteParameters, request.parameters, "parameters")
    require_selection(data, params)
    name = collection_of(params, config)
    return Plan(name, lambda client: ops.run_delete(client, name, data, params))


def _create_collection(request: OperationRequest, config: QdrantConfig, catalog: Catalog) -> Plan:
    parse(NoData, request.data, "data")
    params = parse(CreateCollectionParameters, request.parameters, "parameters")
    plan = collection_plan(collection_of(params, config), params, config)
    return Plan(
        plan.name, lambda client: ops.run_create_collection(client, catalog, plan, params.if_not_exists)
    )


def _delete_collection(request: OperationRequest, config: QdrantConfig, catalog: Catalog) -> Plan:
    parse(NoData, request.data, "data")
    name = collection_of(parse(Target, request.parameters, "parameters"), config)
    return Plan(name, lambda client: ops.run_delete_collection(client, catalog, name))


def _list_collections(request: OperationRequest, config: QdrantConfig, catalog: Catalog) -> Plan:
    parse(NoData, request.data, "data")
    parse(NoParameters, request.parameters, "parameters")
    return Plan(None, ops.run_list_collections)


_PLANNERS: dict[str, Callable[[OperationRequest, QdrantConfig, Catalog], Plan]] = {
    "create_collection": _create_collection,
    "insert": _write,
    "upsert": _write,
    "search": _search,
    "retrieve": _retrieve,
    "scroll": _scroll,
    "count": _count,
    "delete": _delete,
    "list_collections": _list_collections,
    "delete_collection": _delete_collection,
}

OPERATIONS = frozenset(_PLANNERS)


def plan(request: OperationRequest, config: QdrantConfig, catalog: Catalog) -> Plan:
    """Parse and bind one request; the base class has already refused operations not listed here."""
    return _PLANNERS[request.operation](request, config, catalog)
