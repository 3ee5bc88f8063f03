"""Qdrant through the fleet: spec bodies over real RabbitMQ and Redis to a worker running local mode.

The session's one worker process owns the connector's local folder (local mode allows one owner per
path), so every operation below runs in that subprocess; the test only speaks AMQP to it.
"""

from __future__ import annotations

from typing import Any

import pytest

from scf.fleet.client import FleetClient
from scf.schemas.operation import OperationResult

pytestmark = pytest.mark.integration

SERVICE = "vector_store"
COLLECTION = "embeddings"
QUERY = [1.0, 0.0, 0.2]


@pytest.fixture(scope="module")
async def vector_store(client: FleetClient) -> str:
    # local mode: the worker's own <SCF_DATA_DIR>/qdrant/vector_store (tests/support/fleet.py)
    created = await client.create_connector(
        {
            "service_type": "qdrant",
            "service_name": SERVICE,
            "custom_config": {
                "collection_name": COLLECTION,
                "vector_dimension": 3,
                "index_type": "HNSW",
                "metric": "cosine",
                "replication_factor": 1,
            },
        }
    )
    assert created.created.connector_info.connection_status == "connected", created.created
    return SERVICE


async def call(
    client: FleetClient, operation: str, data: dict[str, Any] | None = None, **fields: Any
) -> OperationResult:
    return await client.execute_operation(SERVICE, {"operation": operation, "data": data or {}, **fields})


async def ok(
    client: FleetClient, operation: str, data: dict[str, Any] | None = None, **fields: Any
) -> OperationResult:
    result = await call(client, operation, data, **fields)
    assert result.status == "success", result.error
    return result


async def test_qdrant_connector_registers_and_passes_its_connection_test(
    client: FleetClient, vector_store: str
) -> None:
    tested = await client.test_connection(vector_store)

    assert tested.status == "success", tested.error
    assert tested.test_results == {
        "connection_test": "passed",
        "authentication_test": "passed",
        "permissions_test": "passed",
    }


async def test_every_qdrant_operation_through_the_fleet(client: FleetClient, vector_store: str) -> None:
    created = await ok(client, "create_collection", parameters={"if_not_exists": True})
    embedding_vectors = [[1.0, i / 60, 0.2] for i in range(60)]
    sources = [f"doc-{i}.pdf" for i in range(60)]
    vector_metadata = [{"source": source, "page": i % 3} for i, source in enumerate(sources)]

    # the spec's Vector Storage example, sent twice with one idempotency key: the second overwrites
    spec_insert = {
        "operation": "insert",
        "data": {"vectors": embedding_vectors, "metadata": vector_metadata},
        "parameters": {"collection": COLLECTION, "batch_size": 50},
        "idempotency_key": "embeddings-load-1",
    }
    inserted = await client.execute_operation(vector_store, spec_insert)
    reinserted = await client.execute_operation(vector_store, spec_insert)
    upserted = await ok(
        client,
        "upsert",
        {"vectors": [[0.0, 1.0, 0.0]], "ids": ["manual-1"], "metadata": [{"source": "hand"}]},
    )
    counted = await ok(client, "count")

    searched = await ok(
        client,
        "search",
        {"vector": QUERY},
        parameters={"limit": 5, "filter": {"must": [{"key": "page", "match": 0}]}, "score_threshold": 0.5},
    )
    retrieved = await ok(client, "retrieve", {"ids": ["manual-1"]}, parameters={"with_vectors": True})

    pages: list[OperationResult] = [await ok(client, "scroll", parameters={"limit": 25})]
    while pages[-1].next_page_token is not None:
        pages.append(
            await ok(client, "scroll", parameters={"limit": 25}, page_token=pages[-1].next_page_token)
        )
    scrolled = [p["payload"]["source"] for page in pages for p in page.result_data["points"]]

    deleted = await ok(client, "delete", parameters={"filter": {"must": [{"key": "page", "match": 2}]}})
    listed = await ok(client, "list_collections")
    dropped = await ok(client, "delete_collection", parameters={"collection": COLLECTION})

    assert created.result_data["collection"] == COLLECTION
    assert inserted.status == "success" and inserted.result_data["batches"] == 2
    assert reinserted.result_data["ids"] == inserted.result_data["ids"]
    assert upserted.result_data["ids"] == ["manual-1"]
    assert counted.result_data["count"] == 61
    assert searched.records_processed == 5
    assert searched.result_data["points"][0]["payload"] == {"source": "doc-0.pdf", "page": 0}
    assert all(p["payload"]["page"] == 0 and p["score"] >= 0.5 for p in searched.result_data["points"])
    assert retrieved.result_data["points"] == [
        {"id": "manual-1", "payload": {"source": "hand"}, "vector": [0.0, 1.0, 0.0]}
    ]
    assert len(pages) == 3 and sorted(scrolled) == sorted([*sources, "hand"])
    assert deleted.records_affected == 20
    assert COLLECTION in listed.result_data["collections"]
    assert dropped.result_data == {"collection": COLLECTION, "deleted": True}


async def test_typed_errors_cross_the_fleet(client: FleetClient, vector_store: str) -> None:
    await ok(client, "create_collection", parameters={"collection": "small", "vector_dimension": 2})

    mismatch = await call(
        client, "insert", {"vectors": [[1.0, 2.0, 3.0]]}, parameters={"collection": "small"}
    )
    missing = await call(client, "search", {"vector": QUERY}, parameters={"collection": "nowhere"})
    unknown = await call(client, "teleport")
    await ok(client, "delete_collection", parameters={"collection": "small"})

    assert mismatch.error is not None
    assert (mismatch.error.category, mismatch.error.code) == ("permanent", "INVALID_DATA")
    assert "expected 2, got 3" in mismatch.error.message
    assert missing.error is not None
    assert (missing.error.category, missing.error.code) == ("configuration", "NOT_FOUND")
    assert "'nowhere'" in missing.error.message
    assert unknown.error is not None and unknown.error.code == "UNKNOWN_OPERATION"
