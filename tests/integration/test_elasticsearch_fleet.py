"""Elasticsearch through the fleet: every operation via FleetClient, dispatcher and worker processes.

The same connector as in test_elasticsearch_connector.py, reached over RabbitMQ the way other services
reach it; each operation runs at least once here, and errors arrive as typed replies.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from scf.fleet.client import FleetClient
from scf.schemas.operation import OperationResult
from tests.support.noida import EsTarget, es_target, noida_server, noida_target

__all__ = ["es_target", "noida_server", "noida_target"]  # session fixtures shared with other modules

pytestmark = pytest.mark.integration

API_KEY_CANARY = "fleet-es-api-key-canary-2c94"
DOCS = [
    {"sku": "p1", "name": "red apple", "kind": "fruit", "price": 1.0},
    {"sku": "p2", "name": "green apple", "kind": "fruit", "price": 1.5},
    {"sku": "p3", "name": "carrot", "kind": "vegetable", "price": 0.5},
    {"sku": "p4", "name": "apple pie", "kind": "bakery", "price": 6.0},
    {"sku": "p5", "name": "leek", "kind": "vegetable", "price": 2.0},
]
MAPPINGS = {"properties": {"name": {"type": "text"}, "kind": {"type": "keyword"}, "price": {"type": "float"}}}


@pytest.fixture(scope="module")
async def service(client: FleetClient, es_target: EsTarget) -> AsyncIterator[str]:
    name = f"fleet_es_{es_target.name.replace('-', '_')}"
    created = await client.create_connector(es_target.body(name))
    assert created.created.connector_info.connection_status == "connected", created.created
    yield name
    await client.delete_connector(name)


@pytest.fixture
def index(es_target: EsTarget) -> Iterator[str]:
    name = es_target.unique_index("scf-fleet")
    yield name
    with es_target.admin() as admin:
        admin.indices.delete(index=name, ignore_unavailable=True)


async def call(client: FleetClient, service: str, operation: str, **request: Any) -> OperationResult:
    return await client.execute_operation(service, {"operation": operation, **request})


async def ok(client: FleetClient, service: str, operation: str, **request: Any) -> OperationResult:
    result = await call(client, service, operation, **request)
    assert result.status == "success", result.error
    return result


async def seed(client: FleetClient, service: str, index: str) -> OperationResult:
    await ok(client, service, "create_index", parameters={"index": index, "mappings": MAPPINGS})
    return await ok(
        client,
        service,
        "insert",
        data={"documents": DOCS},
        parameters={"index": index, "id_field": "sku", "refresh": True},
    )


async def test_the_connection_test_reports_a_healthy_cluster(client: FleetClient, service: str) -> None:
    tested = await client.test_connection(service)

    assert tested.status == "success", tested.error
    assert tested.test_results["connection_test"] == "passed"


async def test_index_lifecycle_through_the_fleet(client: FleetClient, service: str, index: str) -> None:
    created = await ok(client, service, "create_index", parameters={"index": index, "mappings": MAPPINGS})
    listed = await ok(client, service, "list_indices", parameters={"pattern": index})
    deleted = await ok(client, service, "delete_index", parameters={"index": index})
    after = await call(client, service, "delete_index", parameters={"index": index})

    assert created.result_data["created"] is True
    assert [row["index"] for row in listed.result_data["indices"]] == [index]
    assert deleted.result_data["deleted"] is True
    assert after.error is not None and (after.error.category, after.error.code) == ("permanent", "NOT_FOUND")


async def test_a_repeated_insert_with_one_idempotency_key_writes_each_document_once(
    client: FleetClient, service: str, index: str
) -> None:
    request = {
        "idempotency_key": f"{index}-load-1",
        "data": {"records": DOCS},
        "parameters": {"index": index, "refresh": True, "batch_size": 2},
    }

    first = await ok(client, service, "insert", **request)
    second = await ok(client, service, "insert", **request)
    counted = await ok(client, service, "count", parameters={"index": index})

    assert (first.records_processed, first.records_affected) == (5, 5)
    # Either the fleet replays the stored result, or the connector overwrites the same five documents.
    assert second.replayed or (second.result_data["created"], second.result_data["updated"]) == (0, 5)
    assert counted.result_data == {"count": 5}


async def test_a_partial_bulk_failure_reaches_the_caller_item_by_item(
    client: FleetClient, service: str, index: str
) -> None:
    await ok(client, service, "create_index", parameters={"index": index, "mappings": MAPPINGS})

    result = await ok(
        client,
        service,
        "insert",
        data={"documents": [DOCS[0], {**DOCS[1], "price": "free"}], "ids": ["a", "b"]},
        parameters={"index": index},
    )

    assert result.records_affected == 1
    assert [(f["position"], f["id"], f["status"]) for f in result.result_data["failed"]] == [(1, "b", 400)]


async def test_search_pages_aggregates_and_counts_through_the_fleet(
    client: FleetClient, service: str, index: str
) -> None:
    await seed(client, service, index)
    parameters = {"index": index, "sort": [{"price": "desc"}], "size": 2, "paginate": True}

    pages: list[list[str]] = []
    token: str | None = None
    while True:
        page = await ok(client, service, "search", parameters=parameters, page_token=token)
        pages.append([hit["_id"] for hit in page.result_data["hits"]])
        token = page.next_page_token
        if token is None:
            break
    apples = await ok(
        client, service, "search", parameters={"index": index, "query": {"match": {"name": "apple"}}}
    )
    kinds = await ok(
        client,
        service,
        "aggregate",
        parameters={"index": index, "aggs": {"kinds": {"terms": {"field": "kind"}}}},
    )
    fruit = await ok(
        client, service, "count", parameters={"index": index, "query": {"term": {"kind": "fruit"}}}
    )

    assert pages == [["p4", "p5"], ["p2", "p1"], ["p3"]]
    assert {hit["_id"] for hit in apples.result_data["hits"]} == {"p1", "p2", "p4"}
    assert {b["key"]: b["doc_count"] for b in kinds.result_data["aggregations"]["kinds"]["buckets"]} == {
        "fruit": 2,
        "vegetable": 2,
        "bakery": 1,
    }
    assert fruit.result_data == {"count": 2}


async def test_get_update_and_delete_through_the_fleet(client: FleetClient, service: str, index: str) -> None:
    await seed(client, service, index)

    updated = await ok(
        client, service, "update", data={"doc": {"price": 0.75}}, parameters={"index": index, "id": "p3"}
    )
    fetched = await ok(client, service, "get", parameters={"index": index, "id": "p3"})
    removed = await ok(client, service, "delete", parameters={"index": index, "id": "p3", "refresh": True})
    by_query = await ok(
        client,
        service,
        "delete",
        parameters={"index": index, "query": {"term": {"kind": "fruit"}}, "refresh": True},
    )
    gone = await call(client, service, "get", parameters={"index": index, "id": "p3"})
    left = await ok(client, service, "count", parameters={"index": index})

    assert updated.result_data["result"] == "updated"
    assert fetched.result_data["_source"]["price"] == 0.75
    assert removed.records_affected == 1
    assert by_query.result_data["deleted"] == 2
    assert gone.error is not None and gone.error.code == "NOT_FOUND"
    assert left.result_data == {"count": 2}


async def test_errors_arrive_as_typed_replies(client: FleetClient, service: str, index: str) -> None:
    missing = await call(client, service, "search", parameters={"index": index})
    bad_name = await call(client, service, "create_index", parameters={"index": "Bad Name"})
    unknown = await call(client, service, "reindex", parameters={"index": index})

    assert missing.error is not None
    assert (missing.error.category, missing.error.code) == ("configuration", "NOT_FOUND")
    assert bad_name.error is not None
    assert (bad_name.error.category, bad_name.error.code) == ("permanent", "INVALID_IDENTIFIER")
    assert unknown.error is not None and unknown.error.code == "UNKNOWN_OPERATION"


async def test_an_unreachable_cluster_reports_a_failed_connection(client: FleetClient) -> None:
    created = await client.create_connector(
        {
            "service_type": "elasticsearch",
            "service_name": "fleet_es_nowhere",
            "connection_timeout": 2,
            "retry_attempts": 0,
            "custom_config": {"hosts": ["http://127.0.0.1:1"]},
        }
    )
    try:
        result = await client.execute_operation(
            "fleet_es_nowhere", {"operation": "count", "parameters": {"index": "x"}}
        )
    finally:
        await client.delete_connector("fleet_es_nowhere")

    info = created.created.connector_info
    assert info.connection_status == "failed"
    assert info.test_error is not None and info.test_error.category == "transient"
    assert result.error is not None and result.error.retryable


async def test_the_api_key_is_never_returned(client: FleetClient, noida_target: EsTarget) -> None:
    body = noida_target.body("fleet_es_secret", api_key=API_KEY_CANARY)  # noida-db ignores the key itself
    created = await client.create_connector(body)
    try:
        fetched = await client.get_connector("fleet_es_secret")
        listed = await client.list_connectors("elasticsearch")
        counted = await client.execute_operation(
            "fleet_es_secret", {"operation": "list_indices", "parameters": {"pattern": "no-such-*"}}
        )
    finally:
        await client.delete_connector("fleet_es_secret")

    assert created.created.connector_info.connection_status == "connected"
    assert counted.status == "success", counted.error
    shown = (
        fetched.model_dump_json() + json.dumps([c.model_dump() for c in listed]) + counted.model_dump_json()
    )
    assert API_KEY_CANARY not in shown
    assert fetched.config["custom_config"]["api_key"] == "**********"
