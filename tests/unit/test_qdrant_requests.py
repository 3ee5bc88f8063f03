"""Qdrant requests are parsed and checked before any I/O: shapes, collections, vector spaces, results."""

from __future__ import annotations

from typing import Any

import pytest
from qdrant_client import models

from scf.connectors.qdrant import QdrantVectorConnector
from scf.connectors.qdrant.catalog import (
    VectorSpace,
    check_dimensions,
    collection_plan,
    pick_space,
    spaces_of,
)
from scf.connectors.qdrant.ids import RESERVED_ID_KEY
from scf.connectors.qdrant.operations import payload_selector, point_json
from scf.connectors.qdrant.requests import CreateCollectionParameters, ReadOptions
from scf.connectors.qdrant.table import write_key
from scf.schemas.configs.qdrant import QdrantConfig
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import PermanentError
from scf.schemas.operation import OperationRequest

CONFIG = {"collection_name": "vectors", "vector_dimension": 3}


def connector(**custom_config: Any) -> QdrantVectorConnector:
    """A local-mode connector that is never opened: requests are parsed and checked without I/O."""
    body = {"service_type": "qdrant", "service_name": "vec", "custom_config": custom_config}
    return QdrantVectorConnector(ServiceConnection.parse(body))


async def prepared(request: OperationRequest, config: dict[str, Any] = CONFIG) -> tuple[str | None, Any]:
    """The collection a request acts on and its parsed call, up to (never through) the first I/O."""
    qdrant = connector(**config)
    row = qdrant.operation_table[request.operation]
    call = row.parse(request, "qdrant")
    seen: list[str | None] = []

    async def no_io(_: Any, collection: str | None, work: Any) -> Any:
        seen.append(collection)

    qdrant.run = no_io  # type: ignore[method-assign,assignment]
    await row.handler(qdrant, call)
    assert len(seen) == 1
    return seen[0], call


async def planned(operation: str, data: dict[str, Any] | None = None, **parameters: Any) -> str | None:
    request = OperationRequest(operation=operation, data=data or {}, parameters=parameters)
    return (await prepared(request))[0]


async def refused(operation: str, data: dict[str, Any] | None = None, **parameters: Any) -> PermanentError:
    with pytest.raises(PermanentError) as caught:
        await planned(operation, data, **parameters)
    assert caught.value.code == "INVALID_REQUEST"
    return caught.value


def test_every_operation_of_the_issue_is_served() -> None:
    assert QdrantVectorConnector.read_operations == {
        "search",
        "retrieve",
        "scroll",
        "count",
        "list_collections",
    }
    assert {
        "create_collection",
        "insert",
        "upsert",
        "search",
        "retrieve",
        "delete",
        "count",
        "scroll",
        "list_collections",
        "delete_collection",
    } == QdrantVectorConnector.operations


async def test_the_spec_vector_storage_request_plans_against_its_collection() -> None:
    data = {"vectors": [[0.1, 0.2, 0.3]], "metadata": [{"source": "doc.pdf"}]}

    assert await planned("insert", data, collection="embeddings", batch_size=50) == "embeddings"


async def test_collection_falls_back_to_custom_config_and_accepts_collection_name() -> None:
    assert await planned("count") == "vectors"
    assert await planned("count", collection_name="other") == "other"
    assert await planned("list_collections") is None


async def test_search_takes_its_vector_and_filter_in_parameters() -> None:
    request = OperationRequest(
        operation="search",
        parameters={"collection": "c", "vector": [1.0, 0.0, 0.0], "page_size": 3, "filter": {"must": []}},
    )
    collection, call = await prepared(request)

    assert (collection, call.parameters.vector, call.parameters.limit) == ("c", [1.0, 0.0, 0.0], 3)


@pytest.mark.parametrize("old", ["vector", "query_vector"])
async def test_old_search_shapes_are_moved_to_the_convention(old: str) -> None:
    request = OperationRequest(operation="search", data={old: [1.0, 2.0, 3.0]}, parameters={"limit": 4})
    _, call = await prepared(request)

    assert (call.parameters.vector, call.parameters.limit) == ([1.0, 2.0, 3.0], 4)


@pytest.mark.parametrize("operation", ["retrieve", "delete"])
async def test_ids_to_act_on_are_parameters_and_data_ids_still_work(operation: str) -> None:
    new = OperationRequest(operation=operation, parameters={"ids": [1, "a"]})
    old = OperationRequest(operation=operation, data={"ids": [1, "a"]})

    assert (await prepared(new))[1].parameters.ids == (await prepared(old))[1].parameters.ids == [1, "a"]


async def test_search_offset_cannot_be_combined_with_a_page_token() -> None:
    request = OperationRequest(operation="search", parameters={"vector": [1.0], "offset": 5}, page_token="t")

    with pytest.raises(PermanentError, match="page_token"):
        await prepared(request)


async def test_without_any_collection_the_request_is_refused() -> None:
    request = OperationRequest(operation="count")

    with pytest.raises(PermanentError) as caught:
        await prepared(request, {})

    assert "parameters.collection" in caught.value.message


@pytest.mark.parametrize(
    ("operation", "data", "parameters", "fragment"),
    [
        ("insert", {"vectors": []}, {}, "invalid data: vectors"),
        ("insert", {"vectors": [[1, "2", 3]]}, {}, "invalid data: vectors.0.1"),
        ("insert", {"vectors": [[1, 2, float("nan")]]}, {}, "finite"),
        (
            "insert",
            {"vectors": [[1, 2, 3]], "metadata": [{}, {}]},
            {},
            "metadata has 2 entries for 1 vectors",
        ),
        ("insert", {"vectors": [[1, 2, 3]], "ids": [1, 2]}, {}, "ids has 2 entries"),
        ("insert", {"vectors": [[1], [2]], "ids": [1, "1"]}, {}, "unique"),
        ("insert", {"vectors": [[1]], "metadata": [{RESERVED_ID_KEY: "x"}]}, {}, "reserved key"),
        ("insert", {"vectors": [[1]]}, {"batch_size": 0}, "invalid parameters: batch_size"),
        ("insert", {"vectors": [[1]]}, {"batchsize": 10}, "batchsize: Extra inputs"),
        ("search", {}, {}, "invalid parameters: vector"),
        ("search", {"vector": [1], "query_vector": [1]}, {}, "same field"),
        ("search", {"vector": [1]}, {"limit": 1001}, "invalid parameters: page_size"),
        ("search", {}, {"vector": [1], "page_size": 1001}, "invalid parameters: page_size"),
        ("search", {"vector": [1]}, {"vector": [1]}, "same field"),
        ("search", {"vector": [1], "filter": {}}, {}, "invalid data: filter"),
        ("search", {"vector": [1]}, {"filter": {"must": [{"key": "a"}]}}, "invalid parameters: filter"),
        ("retrieve", {"ids": []}, {}, "invalid parameters: ids"),
        ("retrieve", {}, {"ids": [1.5]}, "invalid parameters: ids"),
        ("delete", {}, {}, "exactly one of parameters.ids or a non-empty parameters.filter"),
        ("delete", {}, {"filter": {}}, "non-empty parameters.filter"),
        ("delete", {"ids": [1]}, {"filter": {"must": [{"key": "a", "match": 1}]}}, "exactly one"),
        ("scroll", {}, {"limit": 0}, "invalid parameters: page_size"),
        ("insert", {"vectors": [[1]]}, {"collection": "a", "collection_name": "a"}, "same field"),
        ("count", {"filter": {}}, {}, "invalid data: filter"),
        ("create_collection", {}, {"metric": "hamming"}, "invalid parameters: metric"),
        ("create_collection", {}, {"collection": "a/b"}, "invalid parameters: collection"),
        ("list_collections", {}, {"collection": "x"}, "collection: Extra inputs"),
    ],
)
async def test_malformed_requests_are_refused_naming_the_field(
    operation: str, data: dict[str, Any], parameters: dict[str, Any], fragment: str
) -> None:
    assert fragment in (await refused(operation, data, **parameters)).message


async def test_creating_a_collection_needs_a_dimension_from_somewhere() -> None:
    request = OperationRequest(operation="create_collection", parameters={"collection": "c"})

    with pytest.raises(PermanentError) as caught:
        await prepared(request, {})

    assert "vector_dimension" in caught.value.message


def test_collection_plan_prefers_parameters_then_config_then_fallback() -> None:
    config = QdrantConfig(vector_dimension=384, metric="dot", replication_factor=2)
    params = CreateCollectionParameters(vector_dimension=8, metric="euclid", hnsw_config={"m": 32})

    from_params = collection_plan("c", params, config)
    from_config = collection_plan("c", CreateCollectionParameters(), config)
    from_fallback = collection_plan("c", CreateCollectionParameters(), QdrantConfig(), fallback_size=5)

    assert (from_params.space, from_params.replication_factor) == (VectorSpace(8, "Euclid"), 2)
    assert from_params.hnsw_config() == models.HnswConfigDiff(m=32)
    assert from_config.space == VectorSpace(384, "Dot")
    assert from_fallback.space == VectorSpace(5, "Cosine")
    assert from_fallback.hnsw_config() is None


def test_write_key_is_the_idempotency_key_else_the_operation_id() -> None:
    keyed = OperationRequest(operation="insert", idempotency_key="k-1", operation_id="op_1")
    unkeyed = OperationRequest(operation="insert", operation_id="op_1")

    assert (write_key(keyed), write_key(unkeyed)) == ("k-1", "op_1")


def test_vector_spaces_unnamed_and_named() -> None:
    unnamed = models.CollectionParams(vectors=models.VectorParams(size=3, distance=models.Distance.COSINE))
    named = models.CollectionParams(
        vectors={
            "text": models.VectorParams(size=4, distance=models.Distance.DOT),
            "image": models.VectorParams(size=2, distance=models.Distance.EUCLID),
        }
    )

    assert pick_space(spaces_of(unnamed), "c", None) == (None, VectorSpace(3, "Cosine"))
    assert pick_space(spaces_of(named), "c", "image") == ("image", VectorSpace(2, "Euclid"))
    with pytest.raises(PermanentError, match=r"say which with parameters\.vector_name"):
        pick_space(spaces_of(named), "c", None)
    with pytest.raises(PermanentError, match="no vector named 'audio'; it has image, text"):
        pick_space(spaces_of(named), "c", "audio")


def test_dimension_mismatch_names_collection_expected_and_got() -> None:
    with pytest.raises(PermanentError) as caught:
        check_dimensions([[1.0, 2.0, 3.0], [1.0, 2.0]], VectorSpace(3, "Cosine"), "vectors")

    assert caught.value.code == "INVALID_DATA"
    assert caught.value.message == (
        "vector dimension mismatch for collection 'vectors': expected 3, got 2 (vector 1)"
    )


def test_results_show_the_callers_id_and_only_what_was_asked() -> None:
    point = models.ScoredPoint(
        id="9b0a0000-0000-5000-8000-000000000000",
        version=1,
        score=0.5,
        payload={RESERVED_ID_KEY: "doc-1", "city": "Paris"},
        vector=[0.1, 0.2],
    )

    full = point_json(point, ReadOptions(with_vectors=True))
    bare = point_json(point, ReadOptions(with_payload=False))

    assert full == {"id": "doc-1", "score": 0.5, "payload": {"city": "Paris"}, "vector": [0.1, 0.2]}
    assert bare == {"id": "doc-1", "score": 0.5}


def test_payload_selector_always_fetches_the_reserved_id() -> None:
    assert payload_selector(True) is True
    assert payload_selector(False) == [RESERVED_ID_KEY]
    assert payload_selector(["city"]) == ["city", RESERVED_ID_KEY]
