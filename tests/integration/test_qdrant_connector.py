"""`QdrantVectorConnector` for real: Qdrant's local mode in-process, and a Qdrant server when one is given.

Every test runs in local mode (a fresh folder per test). Set `SCF_TEST_QDRANT_URL` (and
`SCF_TEST_QDRANT_API_KEY` if the server wants one) to run the same tests against a real server; there
each test uses uniquely named collections and drops them afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import AsyncQdrantClient, models

from scf.connectors.base import ServiceConnector
from scf.connectors.qdrant import QdrantVectorConnector
from scf.connectors.qdrant.catalog import Catalog
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError, PermanentError
from scf.schemas.operation import OperationRequest, OperationResult

pytestmark = pytest.mark.integration

SERVER_URL = os.environ.get("SCF_TEST_QDRANT_URL")
SERVER_KEY = os.environ.get("SCF_TEST_QDRANT_API_KEY")
PREFIX = f"scf_test_{uuid.uuid4().hex[:8]}"

MODES = [
    "local",
    pytest.param(
        "server",
        marks=pytest.mark.skipif(not SERVER_URL, reason="set SCF_TEST_QDRANT_URL to test a real server"),
    ),
]

# Unit vectors along each axis of a 4-dimensional space, and what each point is.
AXES = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
CITIES = [
    {"city": "Paris", "price": 3, "tags": ["new"]},
    {"city": "Rome", "price": 8, "tags": ["old"]},
    {"city": "Paris", "price": 12, "tags": ["old", "hot"]},
    {"city": "Oslo", "price": 1},
]


def local_connection(data_dir: Path, name: str = "vectors_db", **custom: Any) -> ServiceConnection:
    """Local mode in `<data_dir>/qdrant/<name>`: `data_dir` must be `$SCF_DATA_DIR` (see `data_dir`)."""
    assert Path(os.environ["SCF_DATA_DIR"]) == data_dir
    return ServiceConnection.model_validate(
        {"service_type": "qdrant", "service_name": name, "custom_config": custom}
    )


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Local mode always stores under `$SCF_DATA_DIR/qdrant/<service_name>`: one per test."""
    monkeypatch.setenv("SCF_DATA_DIR", str(tmp_path))
    return tmp_path


def server_connection() -> ServiceConnection:
    custom: dict[str, Any] = {"url": SERVER_URL, "metric": "cosine"}
    if SERVER_KEY:
        custom["api_key"] = SERVER_KEY
    return ServiceConnection.model_validate(
        {
            "service_type": "qdrant",
            "service_name": "vectors_server",
            "connection_timeout": 10,
            "custom_config": custom,
        }
    )


@pytest.fixture(params=MODES)
async def qdrant(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServiceConnector]:
    connection = local_connection(tmp_path) if request.param == "local" else server_connection()
    connector = QdrantVectorConnector(connection)
    try:
        yield connector
    finally:
        listed = await connector.execute_operation({"operation": "list_collections"})
        for name in (listed.result_data or {}).get("collections", []):
            if name.startswith(PREFIX):
                await connector.execute_operation(
                    {"operation": "delete_collection", "parameters": {"collection": name}}
                )
        await connector.close()


@pytest.fixture
def name() -> str:
    return f"{PREFIX}_{uuid.uuid4().hex[:8]}"


async def run(
    connector: ServiceConnector, operation: str, data: dict[str, Any] | None = None, **fields: Any
) -> OperationResult:
    body: dict[str, Any] = {"operation": operation, "data": data or {}, **fields}
    return await connector.execute_operation(body)


async def ok(
    connector: ServiceConnector, operation: str, data: dict[str, Any] | None = None, **fields: Any
) -> Any:
    result = await run(connector, operation, data, **fields)
    assert result.status == "success", result.error
    return result


async def create(connector: ServiceConnector, collection: str, dimension: int = 4, **parameters: Any) -> None:
    await ok(
        connector,
        "create_collection",
        parameters={"collection": collection, "vector_dimension": dimension, **parameters},
    )


async def seed(connector: ServiceConnector, collection: str) -> list[Any]:
    await create(connector, collection)
    result = await ok(
        connector, "insert", {"vectors": AXES, "metadata": CITIES}, parameters={"collection": collection}
    )
    ids: list[Any] = result.result_data["ids"]
    return ids


async def count(connector: ServiceConnector, collection: str, **parameters: Any) -> int:
    result = await ok(connector, "count", parameters={"collection": collection, **parameters})
    total: int = result.result_data["count"]
    return total


# --- collections -------------------------------------------------------------------------------------


async def test_spec_configuration_creates_a_collection_that_lists_and_deletes(
    qdrant: ServiceConnector, name: str
) -> None:
    spec_config = {
        "collection_name": name,
        "vector_dimension": 384,
        "index_type": "HNSW",
        "metric": "cosine",
        "replication_factor": 1,
        "hnsw_config": {"m": 16, "ef_construct": 100},
    }

    created = await ok(qdrant, "create_collection", parameters=spec_config)
    listed = await ok(qdrant, "list_collections")
    deleted = await ok(qdrant, "delete_collection", parameters={"collection": name})
    deleted_again = await ok(qdrant, "delete_collection", parameters={"collection": name})

    assert created.result_data == {
        "collection": name,
        "created": True,
        "vector_dimension": 384,
        "metric": "cosine",
    }
    assert name in listed.result_data["collections"]
    assert deleted.result_data == {"collection": name, "deleted": True}
    assert deleted_again.result_data == {"collection": name, "deleted": False}
    assert name not in (await ok(qdrant, "list_collections")).result_data["collections"]


async def test_creating_an_existing_collection_needs_if_not_exists_and_the_same_shape(
    qdrant: ServiceConnector, name: str
) -> None:
    await create(qdrant, name)

    again = await run(qdrant, "create_collection", parameters={"collection": name, "vector_dimension": 4})
    tolerated = await ok(
        qdrant,
        "create_collection",
        parameters={"collection": name, "vector_dimension": 4, "if_not_exists": True},
    )
    different = await run(
        qdrant,
        "create_collection",
        parameters={"collection": name, "vector_dimension": 8, "if_not_exists": True},
    )

    assert again.error is not None and again.error.code == "CONSTRAINT_VIOLATION"
    assert tolerated.result_data["created"] is False
    assert different.error is not None and different.error.category == "permanent"
    assert "4 dimensions" in different.error.message and "8 dimensions" in different.error.message


# --- writes ------------------------------------------------------------------------------------------


async def test_spec_vector_storage_insert_writes_in_batches_and_is_searchable(
    qdrant: ServiceConnector, name: str
) -> None:
    await create(qdrant, name, dimension=3)
    embedding_vectors = [[1.0, i / 120, 0.5] for i in range(120)]
    vector_metadata = [{"source": f"doc-{i}.pdf", "chunk": i} for i in range(120)]

    result = await ok(
        qdrant,
        "insert",
        {"vectors": embedding_vectors, "metadata": vector_metadata},
        parameters={"collection": name, "batch_size": 50},
    )
    found = await ok(
        qdrant, "search", {"vector": [1.0, 0.0, 0.5]}, parameters={"collection": name, "limit": 1}
    )

    assert (result.records_processed, result.records_affected) == (120, 120)
    assert result.result_data["batches"] == 3
    assert len(set(result.result_data["ids"])) == 120
    assert await count(qdrant, name) == 120
    assert found.result_data["points"][0]["payload"] == {"source": "doc-0.pdf", "chunk": 0}


async def test_a_redelivered_insert_with_the_same_idempotency_key_overwrites_instead_of_duplicating(
    qdrant: ServiceConnector, name: str
) -> None:
    await create(qdrant, name)
    body = {"vectors": AXES, "metadata": CITIES}

    first = await ok(qdrant, "insert", body, parameters={"collection": name}, idempotency_key="load-2024-01")
    second = await ok(qdrant, "insert", body, parameters={"collection": name}, idempotency_key="load-2024-01")
    other = await ok(qdrant, "insert", body, parameters={"collection": name}, idempotency_key="load-2024-02")

    assert first.result_data["ids"] == second.result_data["ids"]
    assert set(other.result_data["ids"]).isdisjoint(first.result_data["ids"])
    assert await count(qdrant, name) == 8


async def test_the_same_request_redelivered_without_a_key_writes_the_same_points(
    qdrant: ServiceConnector, name: str
) -> None:
    await create(qdrant, name)
    request = OperationRequest(
        operation="upsert",
        data={"vectors": AXES},
        parameters={"collection": name},
        operation_id="op_redelivered",
    )

    first = await qdrant.execute(request)
    second = await qdrant.execute(request)

    assert first.result_data["ids"] == second.result_data["ids"]
    assert await count(qdrant, name) == 4


async def test_caller_ids_of_every_kind_round_trip(qdrant: ServiceConnector, name: str) -> None:
    await create(qdrant, name)
    given = [7, "42", "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "doc-1"]

    written = await ok(qdrant, "upsert", {"vectors": AXES, "ids": given}, parameters={"collection": name})
    fetched = await ok(
        qdrant,
        "retrieve",
        {"ids": ["doc-1", 7, 42, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "doc-404"]},
        parameters={"collection": name, "with_payload": False},
    )

    assert written.result_data["ids"] == [7, 42, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "doc-1"]
    assert [p["id"] for p in fetched.result_data["points"]] == [
        "doc-1",
        7,
        42,
        "5c56c793-69f3-4fbf-87e6-c4bf54c28c26",
    ]
    assert fetched.result_data["missing"] == ["doc-404"]


async def test_upsert_replaces_an_existing_point(qdrant: ServiceConnector, name: str) -> None:
    await create(qdrant, name)
    await ok(
        qdrant,
        "upsert",
        {"vectors": [AXES[0]], "ids": ["doc-1"], "metadata": [{"v": 1}]},
        parameters={"collection": name},
    )

    await ok(
        qdrant,
        "upsert",
        {"vectors": [AXES[1]], "ids": ["doc-1"], "metadata": [{"v": 2}]},
        parameters={"collection": name},
    )
    fetched = await ok(
        qdrant, "retrieve", {"ids": ["doc-1"]}, parameters={"collection": name, "with_vectors": True}
    )

    assert fetched.result_data["points"] == [{"id": "doc-1", "payload": {"v": 2}, "vector": AXES[1]}]
    assert await count(qdrant, name) == 1


async def test_insert_can_create_its_collection_when_asked(qdrant: ServiceConnector, name: str) -> None:
    refused = await run(qdrant, "insert", {"vectors": AXES}, parameters={"collection": name})
    created = await ok(
        qdrant,
        "insert",
        {"vectors": AXES},
        parameters={"collection": name, "create_collection_if_missing": True},
    )

    assert refused.error is not None and refused.error.category == "configuration"
    assert created.records_affected == 4
    assert await count(qdrant, name) == 4


# --- reads -------------------------------------------------------------------------------------------


async def test_search_ranks_by_similarity_with_filter_threshold_and_vectors(
    qdrant: ServiceConnector, name: str
) -> None:
    ids = await seed(qdrant, name)
    query = [0.9, 0.1, 0.8, 0.0]

    everything = await ok(qdrant, "search", {"vector": query}, parameters={"collection": name})
    in_paris = await ok(
        qdrant,
        "search",
        {"query_vector": query},
        parameters={
            "collection": name,
            "filter": {
                "must": [{"key": "city", "match": "Paris"}],
                "must_not": [{"key": "tags", "match_any": ["hot"]}],
            },
            "with_vectors": True,
        },
    )
    above = await ok(
        qdrant,
        "search",
        {"vector": query},
        parameters={"collection": name, "score_threshold": 0.5, "limit": 3},
    )

    assert [p["id"] for p in everything.result_data["points"]][:2] == [ids[0], ids[2]]
    assert [p["payload"]["city"] for p in in_paris.result_data["points"]] == ["Paris"]
    assert in_paris.result_data["points"][0]["vector"] == pytest.approx(AXES[0])
    assert [p["id"] for p in above.result_data["points"]] == [ids[0], ids[2]]
    assert all(p["score"] >= 0.5 for p in above.result_data["points"])


async def test_range_and_has_id_filters_count_and_search(qdrant: ServiceConnector, name: str) -> None:
    ids = await seed(qdrant, name)

    cheap = await count(qdrant, name, filter={"must": [{"key": "price", "range": {"gte": 1, "lt": 5}}]})
    either = await count(
        qdrant, name, filter={"should": [{"key": "city", "match": "Oslo"}, {"has_id": [ids[1]]}]}
    )

    assert (cheap, either) == (2, 2)


async def test_scroll_pages_reassemble_every_point_exactly_once(qdrant: ServiceConnector, name: str) -> None:
    await create(qdrant, name)
    vectors = [[1.0, float(i), 0.0, 0.0] for i in range(53)]
    metadata = [{"i": i, "even": i % 2 == 0} for i in range(53)]
    await ok(qdrant, "insert", {"vectors": vectors, "metadata": metadata}, parameters={"collection": name})

    async def scroll_all(parameters: dict[str, Any]) -> tuple[list[int], int]:
        seen: list[int] = []
        token, pages = None, 0
        while True:
            page = await ok(qdrant, "scroll", parameters={"collection": name, **parameters}, page_token=token)
            seen += [p["payload"]["i"] for p in page.result_data["points"]]
            pages += 1
            token = page.next_page_token
            if token is None:
                return seen, pages

    every, pages = await scroll_all({"limit": 10})
    even, _ = await scroll_all({"limit": 7, "filter": {"must": [{"key": "even", "match": True}]}})

    assert sorted(every) == list(range(53)) and pages == 6
    assert sorted(even) == list(range(0, 53, 2))


async def test_the_request_convention_search_pages_and_reads_by_parameters(
    qdrant: ServiceConnector, name: str
) -> None:
    ids = await seed(qdrant, name)
    query = {"collection": name, "vector": [0.9, 0.1, 0.8, 0.0], "page_size": 3}

    first = await ok(qdrant, "search", parameters=query)
    rest = await ok(qdrant, "search", parameters=query, page_token=first.next_page_token)
    other = await run(
        qdrant, "search", parameters={**query, "vector": AXES[3]}, page_token=first.next_page_token
    )
    fetched = await ok(qdrant, "retrieve", parameters={"collection": name, "ids": [ids[1]]})
    scrolled = await ok(qdrant, "scroll", parameters={"collection": name, "page_size": 4})

    seen = [p["id"] for p in first.result_data["points"] + rest.result_data["points"]]
    assert sorted(map(str, seen)) == sorted(map(str, ids)) and rest.next_page_token is None
    assert other.error is not None and other.error.code == "INVALID_REQUEST"
    assert fetched.result_data["points"][0]["payload"]["city"] == "Rome"
    assert len(scrolled.result_data["points"]) == 4


async def test_a_page_token_of_another_scroll_is_refused(qdrant: ServiceConnector, name: str) -> None:
    await seed(qdrant, name)
    page = await ok(qdrant, "scroll", parameters={"collection": name, "limit": 1})

    refused = await run(
        qdrant,
        "scroll",
        parameters={"collection": name, "limit": 1, "filter": {"must": [{"key": "city", "match": "Rome"}]}},
        page_token=page.next_page_token,
    )

    assert refused.error is not None and refused.error.code == "INVALID_REQUEST"


# --- deletes -----------------------------------------------------------------------------------------


async def test_delete_by_ids_and_by_filter_reports_what_it_removed(
    qdrant: ServiceConnector, name: str
) -> None:
    ids = await seed(qdrant, name)

    by_ids = await ok(qdrant, "delete", {"ids": [ids[0], "never-written"]}, parameters={"collection": name})
    by_filter = await ok(
        qdrant,
        "delete",
        parameters={"collection": name, "filter": {"must": [{"key": "city", "match": "Paris"}]}},
    )

    assert (by_ids.records_affected, by_filter.records_affected) == (1, 1)
    left = await ok(qdrant, "scroll", parameters={"collection": name})
    assert sorted(p["payload"]["city"] for p in left.result_data["points"]) == ["Oslo", "Rome"]


# --- typed errors ------------------------------------------------------------------------------------


async def test_dimension_mismatch_is_permanent_and_names_expected_and_got(
    qdrant: ServiceConnector, name: str
) -> None:
    await create(qdrant, name, dimension=4)

    write = await run(
        qdrant, "insert", {"vectors": [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]]}, parameters={"collection": name}
    )
    search = await run(qdrant, "search", {"vector": [1.0, 2.0, 3.0]}, parameters={"collection": name})

    for result, got in ((write, 2), (search, 3)):
        assert result.error is not None
        assert (result.error.category, result.error.code, result.error.retryable) == (
            "permanent",
            "INVALID_DATA",
            False,
        )
        assert f"expected 4, got {got}" in result.error.message
        assert name in result.error.message
    assert await count(qdrant, name) == 0


@pytest.mark.parametrize(
    ("operation", "data", "parameters"),
    [
        ("insert", {"vectors": AXES}, {}),
        ("search", {"vector": AXES[0]}, {}),
        ("retrieve", {"ids": [1]}, {}),
        ("scroll", {}, {}),
        ("count", {}, {}),
        ("delete", {"ids": [1]}, {}),
    ],
)
async def test_a_missing_collection_is_a_configuration_error_naming_it(
    qdrant: ServiceConnector, name: str, operation: str, data: dict[str, Any], parameters: dict[str, Any]
) -> None:
    result = await run(qdrant, operation, data, parameters={"collection": name, **parameters})

    assert result.error is not None
    assert (result.error.category, result.error.code, result.error.retryable) == (
        "configuration",
        "NOT_FOUND",
        False,
    )
    assert result.error.message == f"collection {name!r} does not exist"


async def test_a_collection_recreated_by_another_client_is_noticed_despite_the_cache() -> None:
    client = AsyncQdrantClient(location=":memory:")
    catalog = Catalog()
    try:
        await client.create_collection("c", vectors_config=models.VectorParams(size=4, distance="Cosine"))
        assert await catalog.vector_for(client, "c", None, AXES) is None  # cached: 4 dimensions
        await client.delete_collection("c")
        await client.create_collection("c", vectors_config=models.VectorParams(size=2, distance="Dot"))

        assert await catalog.vector_for(client, "c", None, [[1.0, 0.0]]) is None
        with pytest.raises(PermanentError, match="expected 2, got 4"):
            await catalog.vector_for(client, "c", None, AXES)
    finally:
        await client.close()


# --- local mode only ---------------------------------------------------------------------------------


async def test_local_mode_keeps_data_across_close_and_reopen(tmp_path: Path) -> None:
    first = QdrantVectorConnector(local_connection(tmp_path, collection_name="kept", vector_dimension=4))
    try:
        await ok(first, "create_collection")
        await ok(first, "insert", {"vectors": AXES, "metadata": CITIES})
    finally:
        await first.close()

    second = QdrantVectorConnector(local_connection(tmp_path, collection_name="kept"))
    try:
        assert await count(second, "kept") == 4
    finally:
        await second.close()


async def test_a_second_owner_of_a_local_path_gets_a_configuration_error(tmp_path: Path) -> None:
    owner = QdrantVectorConnector(local_connection(tmp_path))
    intruder = QdrantVectorConnector(local_connection(tmp_path))  # same name: same folder
    try:
        await owner.open()
        with pytest.raises(ConfigurationError) as caught:
            await intruder.open()
        checked = await intruder.check()
    finally:
        await intruder.close()
        await owner.close()

    assert caught.value.code == "INVALID_CONFIG"
    assert "one process owns a local path" in caught.value.message
    assert checked.status == "failed"


async def test_without_a_path_local_mode_lives_under_the_fleet_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCF_DATA_DIR", str(tmp_path))
    connector = QdrantVectorConnector(
        ServiceConnection.model_validate({"service_type": "qdrant", "service_name": "embedded_db"})
    )
    try:
        checked = await connector.check()
    finally:
        await connector.close()

    assert checked.status == "success", checked.error
    assert (tmp_path / "qdrant" / "embedded_db").is_dir()


async def test_in_memory_local_mode_needs_no_folder() -> None:
    connector = QdrantVectorConnector(
        ServiceConnection.model_validate(
            {"service_type": "qdrant", "service_name": "scratch", "custom_config": {"path": ":memory:"}}
        )
    )
    try:
        await create(connector, "scratch")
        await ok(connector, "insert", {"vectors": AXES}, parameters={"collection": "scratch"})
        assert await count(connector, "scratch") == 4
    finally:
        await connector.close()
