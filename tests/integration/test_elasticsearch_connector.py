"""The Elasticsearch connector on a real server: noida-db always, and a real cluster when one is configured.

Every test runs once per target (`es_target`): noida-db, plus SCF_TEST_ELASTICSEARCH_URL when set. What
noida-db lacks is skipped only there, with the reason. TLS and authentication, which noida-db does not
enforce, are exercised through `SecureGateway`, a real HTTPS proxy in front of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from scf.connectors.elasticsearch import ElasticsearchConnector
from scf.schemas.connection import ServiceConnection
from scf.schemas.operation import OperationResult
from tests.support.noida import (
    Credentials,
    EsTarget,
    SecureGateway,
    TlsFiles,
    es_target,
    make_tls_files,
    noida_server,
    noida_target,
    skip_on_noida,
)

__all__ = ["es_target", "noida_server", "noida_target"]  # session fixtures shared with other modules

pytestmark = pytest.mark.integration

BOOKS: list[tuple[str, str, str, int, float]] = [
    ("b01", "The Quick Brown Fox", "fable", 1990, 5.5),
    ("b02", "Lazy Dog Sleeps", "fable", 2001, 7.0),
    ("b03", "Fox Hunting Guide", "guide", 2010, 20.0),
    ("b04", "A Guide to Dogs", "guide", 1995, 12.5),
    ("b05", "Foxes of the North", "nature", 2015, 30.0),
    ("b06", "Night Owls", "nature", 1988, 9.0),
    ("b07", "Red Fox Tales", "fable", 2005, 6.0),
    ("b08", "Cats and Dogs", "fable", 1999, 8.0),
    ("b09", "Mountain Guide", "guide", 2020, 25.0),
    ("b10", "River Life", "nature", 1975, 15.0),
    ("b11", "Silver Fox", "novel", 2018, 11.0),
    ("b12", "Dog Days", "novel", 2012, 10.0),
]
BY_YEAR = [b[0] for b in sorted(BOOKS, key=lambda b: b[3])]
MAPPINGS = {
    "properties": {
        "title": {"type": "text"},
        "genre": {"type": "keyword"},
        "year": {"type": "integer"},
        "price": {"type": "float"},
    }
}
PARSE_ERRORS = {"document_parsing_exception", "mapper_parsing_exception"}


def book(row: tuple[str, str, str, int, float]) -> dict[str, Any]:
    return {"title": row[1], "genre": row[2], "year": row[3], "price": row[4]}


@pytest.fixture(scope="module")
def books(es_target: EsTarget) -> Iterator[str]:
    """A read-only index of BOOKS, seeded with a separate client (not the code under test)."""
    name = es_target.unique_index("scf-books")
    with es_target.admin() as admin:
        admin.indices.create(index=name, mappings=MAPPINGS, settings={"number_of_shards": 2})
        operations: list[dict[str, Any]] = []
        for row in BOOKS:
            operations += [{"index": {"_index": name, "_id": row[0]}}, book(row)]
        admin.bulk(operations=operations, refresh=True)
        yield name
        admin.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture
def index(es_target: EsTarget) -> Iterator[str]:
    """A fresh index name for a test that writes; whatever it created is deleted afterwards."""
    name = es_target.unique_index()
    yield name
    with es_target.admin() as admin:
        # One by one: a real cluster refuses wildcard deletes (action.destructive_requires_name).
        for created in admin.indices.get(index=f"{name}*", allow_no_indices=True).body:
            admin.indices.delete(index=created, ignore_unavailable=True)


@pytest.fixture
async def connector(es_target: EsTarget) -> AsyncIterator[ElasticsearchConnector]:
    built = ElasticsearchConnector(es_target.connection("es_it"))
    yield built
    await built.close()


async def run(connector: ElasticsearchConnector, operation: str, **request: Any) -> OperationResult:
    return await connector.execute_operation({"operation": operation, **request})


async def ok(connector: ElasticsearchConnector, operation: str, **request: Any) -> OperationResult:
    result = await run(connector, operation, **request)
    assert result.status == "success", result.error
    return result


async def fails(connector: ElasticsearchConnector, operation: str, **request: Any) -> tuple[str, str, str]:
    result = await run(connector, operation, **request)
    assert result.status == "failed" and result.error is not None, result.result_data
    return result.error.category.value, result.error.code, result.error.message


def ids_of(result: OperationResult) -> list[str]:
    return [hit["_id"] for hit in result.result_data["hits"]]


# --- connection ------------------------------------------------------------------------------------


async def test_check_reports_a_healthy_cluster(connector: ElasticsearchConnector) -> None:
    result = await connector.check()

    assert result.status == "success", result.error
    assert result.test_results["connection_test"] == "passed"


async def test_check_with_a_default_index_tests_access_to_it(es_target: EsTarget, books: str) -> None:
    connector = ElasticsearchConnector(es_target.connection("es_default", index=books))
    try:
        result = await connector.check()
    finally:
        await connector.close()

    assert result.test_results == {
        "connection_test": "passed",
        "authentication_test": "passed",
        "permissions_test": "passed",
    }


async def test_a_dead_node_among_several_fails_over(es_target: EsTarget, books: str) -> None:
    connection = es_target.connection("es_failover", hosts=["http://127.0.0.1:1", es_target.url])
    connector = ElasticsearchConnector(connection)
    try:
        results = [await run(connector, "count", parameters={"index": books}) for _ in range(4)]
    finally:
        await connector.close()

    assert [r.result_data for r in results] == [{"count": len(BOOKS)}] * 4


# --- indices -------------------------------------------------------------------------------------------


async def test_create_index_applies_mappings_and_settings(
    connector: ElasticsearchConnector, es_target: EsTarget, index: str
) -> None:
    result = await ok(
        connector,
        "create_index",
        parameters={"index": index, "mappings": MAPPINGS, "settings": {"number_of_shards": 2}},
    )

    assert result.result_data["created"] is True
    with es_target.admin() as admin:
        mapping = admin.indices.get_mapping(index=index).body[index]["mappings"]
        settings = admin.indices.get_settings(index=index).body[index]["settings"]
    assert mapping["properties"]["genre"] == {"type": "keyword"}
    assert str(settings["index"]["number_of_shards"]) == "2"


async def test_creating_an_existing_index_is_refused_unless_if_not_exists(
    connector: ElasticsearchConnector, index: str
) -> None:
    await ok(connector, "create_index", parameters={"index": index})

    category, code, message = await fails(connector, "create_index", parameters={"index": index})
    again = await ok(connector, "create_index", parameters={"index": index, "if_not_exists": True})

    assert (category, code) == ("permanent", "CONSTRAINT_VIOLATION")
    assert "already exists" in message
    assert again.result_data["created"] is False


async def test_list_indices_reports_each_index_with_counts(
    connector: ElasticsearchConnector, books: str
) -> None:
    result = await ok(connector, "list_indices", parameters={"pattern": "scf-books-*"})

    rows = {r["index"]: r for r in result.result_data["indices"]}
    assert rows[books]["docs_count"] == len(BOOKS)
    assert rows[books]["status"] == "open"
    assert rows[books]["health"] in ("green", "yellow")
    assert rows[books]["primaries"] == 2


async def test_delete_index_removes_exactly_the_named_index(
    connector: ElasticsearchConnector, es_target: EsTarget, index: str
) -> None:
    await ok(connector, "create_index", parameters={"index": f"{index}-a"})
    await ok(connector, "create_index", parameters={"index": f"{index}-b"})

    wildcard = await fails(connector, "delete_index", parameters={"index": f"{index}-*"})
    deleted = await ok(connector, "delete_index", parameters={"index": f"{index}-a"})
    missing = await fails(connector, "delete_index", parameters={"index": f"{index}-a"})
    tolerated = await ok(connector, "delete_index", parameters={"index": f"{index}-a", "if_exists": True})

    assert wildcard[:2] == ("permanent", "INVALID_IDENTIFIER")
    assert deleted.result_data["deleted"] is True
    assert missing[:2] == ("permanent", "NOT_FOUND")
    assert tolerated.result_data["deleted"] is False
    with es_target.admin() as admin:
        assert not admin.indices.exists(index=f"{index}-a")
        assert admin.indices.exists(index=f"{index}-b")


# --- insert ----------------------------------------------------------------------------------------


async def test_a_redelivered_insert_overwrites_instead_of_duplicating(
    connector: ElasticsearchConnector, index: str
) -> None:
    request = {
        "idempotency_key": "batch-2024-01-01",
        "data": {"documents": [book(b) for b in BOOKS[:3]]},
        "parameters": {"index": index, "refresh": True},
    }

    first = await ok(connector, "insert", **request)
    again = await ok(connector, "insert", **request)
    count = await ok(connector, "count", parameters={"index": index})

    assert (first.result_data["created"], first.result_data["updated"]) == (3, 0)
    assert (again.result_data["created"], again.result_data["updated"]) == (0, 3)
    assert first.result_data["ids"] == again.result_data["ids"]
    assert count.result_data == {"count": 3}


async def test_insert_in_batches_with_refresh_is_searchable_at_once(
    connector: ElasticsearchConnector, index: str
) -> None:
    result = await ok(
        connector,
        "insert",
        data={"records": [book(b) for b in BOOKS[:5]]},
        parameters={"index": index, "batch_size": 2, "refresh": "wait_for"},
    )
    count = await ok(connector, "count", parameters={"index": index})

    assert (result.records_processed, result.records_affected) == (5, 5)
    assert result.result_data["failed"] == []
    assert count.result_data == {"count": 5}


async def test_insert_takes_ids_from_a_field_or_from_data_ids(
    connector: ElasticsearchConnector, index: str
) -> None:
    by_field = await ok(
        connector,
        "insert",
        data={"documents": [{"sku": "a-1", "n": 1}, {"sku": "b-2", "n": 2}]},
        parameters={"index": index, "id_field": "sku", "refresh": True},
    )
    given = await ok(
        connector,
        "insert",
        data={"documents": [{"n": 3}], "ids": ["given-3"]},
        parameters={"index": index, "refresh": True},
    )
    fetched = await ok(connector, "get", parameters={"index": index, "id": "b-2"})

    assert by_field.result_data["ids"] == ["a-1", "b-2"]
    assert given.result_data["ids"] == ["given-3"]
    assert fetched.result_data["_source"] == {"sku": "b-2", "n": 2}


async def test_a_partial_bulk_failure_is_reported_per_item(
    connector: ElasticsearchConnector, index: str
) -> None:
    await ok(connector, "create_index", parameters={"index": index, "mappings": MAPPINGS})
    documents = [book(BOOKS[0]), {**book(BOOKS[1]), "year": "not a year"}, book(BOOKS[2])]

    result = await ok(
        connector,
        "insert",
        data={"documents": documents, "ids": ["ok-1", "bad-2", "ok-3"]},
        parameters={"index": index, "refresh": True},
    )
    missing = await fails(connector, "get", parameters={"index": index, "id": "bad-2"})

    assert (result.records_processed, result.records_affected) == (3, 2)
    assert result.result_data["indexed"] == 2
    [failure] = result.result_data["failed"]
    assert (failure["position"], failure["id"], failure["status"]) == (1, "bad-2", 400)
    assert failure["error_type"] in PARSE_ERRORS
    assert "not a year" not in failure["reason"]  # document values stay out of replies
    assert missing[:2] == ("permanent", "NOT_FOUND")


async def test_an_insert_where_every_document_fails_is_a_permanent_error(
    connector: ElasticsearchConnector, index: str
) -> None:
    await ok(connector, "create_index", parameters={"index": index, "mappings": MAPPINGS})

    category, code, message = await fails(
        connector,
        "insert",
        data={"documents": [{"year": "x"}, {"year": "y"}]},
        parameters={"index": index},
    )

    assert (category, code) == ("permanent", "INVALID_DATA")
    assert message.startswith("2 of 2 documents failed: position 0")


async def test_the_default_index_is_used_when_parameters_omit_it(es_target: EsTarget, index: str) -> None:
    connector = ElasticsearchConnector(es_target.connection("es_default_idx", index=index))
    try:
        await ok(connector, "insert", data={"documents": [{"n": 1}]}, parameters={"refresh": True})
        count = await ok(connector, "count")
    finally:
        await connector.close()

    assert count.result_data == {"count": 1}


# --- search, aggregate, count ----------------------------------------------------------------------


async def test_search_returns_the_matching_hit_set(connector: ElasticsearchConnector, books: str) -> None:
    result = await ok(connector, "search", parameters={"index": books, "query": {"match": {"title": "fox"}}})

    assert set(ids_of(result)) == {"b01", "b03", "b07", "b11"}
    assert result.result_data["total"] == 4
    assert result.result_data["total_relation"] == "eq"
    assert result.records_processed == 4
    assert result.next_page_token is None


async def test_search_sorts_windows_and_filters_source(connector: ElasticsearchConnector, books: str) -> None:
    result = await ok(
        connector,
        "search",
        parameters={
            "index": books,
            "sort": [{"year": "desc"}],
            "from": 2,
            "size": 3,
            "_source": {"includes": ["title", "year"]},
        },
    )

    assert ids_of(result) == list(reversed(BY_YEAR))[2:5]
    assert all(set(hit["_source"]) == {"title", "year"} for hit in result.result_data["hits"])
    assert result.result_data["total"] == len(BOOKS)


async def test_search_highlights_the_matches(connector: ElasticsearchConnector, books: str) -> None:
    result = await ok(
        connector,
        "search",
        parameters={
            "index": books,
            "query": {"match": {"title": "guide"}},
            "highlight": {"fields": {"title": {}}},
            "_source": False,
        },
    )

    hits = {hit["_id"]: hit for hit in result.result_data["hits"]}
    assert set(hits) == {"b03", "b04", "b09"}
    assert all("<em>" in hit["highlight"]["title"][0].lower() for hit in hits.values())
    assert all("_source" not in hit for hit in hits.values())


async def test_search_reads_several_indices_by_pattern(connector: ElasticsearchConnector, books: str) -> None:
    result = await ok(connector, "count", parameters={"index": ["scf-books-*", books]})

    assert result.result_data["count"] >= len(BOOKS)


@pytest.mark.parametrize("page_size", ["page_size", "size"])  # `size`: the deprecated alias
async def test_page_tokens_visit_every_hit_once_in_sort_order(
    connector: ElasticsearchConnector, books: str, page_size: str
) -> None:
    parameters = {"index": books, "sort": [{"year": "asc"}], page_size: 5, "paginate": True}
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        result = await ok(connector, "search", parameters=parameters, page_token=token)
        pages.append(ids_of(result))
        token = result.next_page_token
        if token is None:
            break

    assert [len(p) for p in pages] == [5, 5, 2]
    assert [i for page in pages for i in page] == BY_YEAR


async def test_paging_on_a_sort_with_ties_neither_skips_nor_repeats(
    connector: ElasticsearchConnector, books: str
) -> None:
    parameters = {"index": books, "sort": [{"genre": "asc"}], "size": 3, "paginate": True}
    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        result = await ok(connector, "search", parameters=parameters, page_token=token)
        seen += ids_of(result)
        token = result.next_page_token
        if token is None:
            break

    assert sorted(seen) == sorted(b[0] for b in BOOKS)
    genres = {b[0]: b[2] for b in BOOKS}
    assert [genres[i] for i in seen] == sorted(genres[i] for i in seen)


async def test_paging_by_relevance_visits_every_match_once(
    connector: ElasticsearchConnector, es_target: EsTarget, books: str
) -> None:
    skip_on_noida(es_target, "skips hits when search_after continues from a fractional _score")
    parameters = {"index": books, "query": {"match": {"title": "fox dog guide"}}, "size": 2, "paginate": True}
    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        result = await ok(connector, "search", parameters=parameters, page_token=token)
        seen += ids_of(result)
        token = result.next_page_token
        if token is None:
            break
    everything = await ok(connector, "search", parameters={**parameters, "paginate": False, "size": 100})

    assert len(seen) == len(set(seen))
    assert set(seen) == set(ids_of(everything))


async def test_a_page_token_of_another_search_is_refused(
    connector: ElasticsearchConnector, books: str
) -> None:
    first = await ok(
        connector,
        "search",
        parameters={"index": books, "sort": [{"year": "asc"}], "size": 2, "paginate": True},
    )

    category, code, _ = await fails(
        connector,
        "search",
        parameters={"index": books, "sort": [{"price": "asc"}], "size": 2},
        page_token=first.next_page_token,
    )

    assert (category, code) == ("permanent", "INVALID_REQUEST")


async def test_a_token_reused_after_its_search_ended_is_not_found(
    connector: ElasticsearchConnector, books: str
) -> None:
    parameters = {"index": books, "sort": [{"year": "asc"}], "size": 8, "paginate": True}
    first = await ok(connector, "search", parameters=parameters)
    last = await ok(connector, "search", parameters=parameters, page_token=first.next_page_token)

    category, code, message = await fails(
        connector, "search", parameters=parameters, page_token=first.next_page_token
    )

    assert last.next_page_token is None  # the last page released the point in time
    assert (category, code) == ("permanent", "NOT_FOUND")
    assert "without page_token" in message


async def test_aggregate_returns_aggregations_only(connector: ElasticsearchConnector, books: str) -> None:
    result = await ok(
        connector,
        "aggregate",
        parameters={
            "index": books,
            "query": {"range": {"year": {"gte": 1990}}},
            "aggs": {"genres": {"terms": {"field": "genre"}}, "price": {"avg": {"field": "price"}}},
        },
    )

    buckets = {b["key"]: b["doc_count"] for b in result.result_data["aggregations"]["genres"]["buckets"]}
    recent = [b for b in BOOKS if b[3] >= 1990]
    assert buckets == {g: sum(1 for b in recent if b[2] == g) for g in {b[2] for b in recent}}
    assert result.result_data["aggregations"]["price"]["value"] == pytest.approx(
        sum(b[4] for b in recent) / len(recent)
    )
    assert result.result_data["total"] == len(recent)
    assert "hits" not in result.result_data


async def test_count_counts_all_or_the_matches(connector: ElasticsearchConnector, books: str) -> None:
    everything = await ok(connector, "count", parameters={"index": books})
    fables = await ok(connector, "count", parameters={"index": books, "query": {"term": {"genre": "fable"}}})

    assert everything.result_data == {"count": len(BOOKS)}
    assert fables.result_data == {"count": 4}


# --- get, update, delete -------------------------------------------------------------------------------


async def test_get_returns_the_document_and_a_missing_one_is_not_found(
    connector: ElasticsearchConnector, books: str
) -> None:
    found = await ok(connector, "get", parameters={"index": books, "id": "b05"})
    missing = await fails(connector, "get", parameters={"index": books, "id": "b99"})

    assert found.result_data["_source"] == book(BOOKS[4])
    assert found.result_data["_id"] == "b05"
    assert missing[:2] == ("permanent", "NOT_FOUND")


async def test_update_merges_a_partial_document(connector: ElasticsearchConnector, index: str) -> None:
    await ok(
        connector, "insert", data={"documents": [book(BOOKS[0])], "ids": ["u1"]}, parameters={"index": index}
    )

    updated = await ok(
        connector, "update", data={"doc": {"price": 4.25}}, parameters={"index": index, "id": "u1"}
    )
    unchanged = await ok(
        connector, "update", data={"doc": {"price": 4.25}}, parameters={"index": index, "id": "u1"}
    )
    fetched = await ok(connector, "get", parameters={"index": index, "id": "u1"})

    assert (updated.result_data["result"], updated.records_affected) == ("updated", 1)
    assert (unchanged.result_data["result"], unchanged.records_affected) == ("noop", 0)
    assert fetched.result_data["_source"] == {**book(BOOKS[0]), "price": 4.25}


async def test_update_of_a_missing_document_is_not_found_unless_upsert(
    connector: ElasticsearchConnector, index: str
) -> None:
    await ok(connector, "create_index", parameters={"index": index})

    missing = await fails(
        connector, "update", data={"doc": {"n": 1}}, parameters={"index": index, "id": "nope"}
    )
    created = await ok(
        connector, "update", data={"doc": {"n": 1}}, parameters={"index": index, "id": "nope", "upsert": True}
    )

    assert missing[:2] == ("permanent", "NOT_FOUND")
    assert created.result_data["result"] == "created"


async def test_delete_by_id_can_be_repeated(connector: ElasticsearchConnector, index: str) -> None:
    await ok(connector, "insert", data={"documents": [{"n": 1}], "ids": ["d1"]}, parameters={"index": index})

    first = await ok(connector, "delete", parameters={"index": index, "id": "d1", "refresh": True})
    second = await ok(connector, "delete", parameters={"index": index, "id": "d1"})

    assert (first.result_data["result"], first.records_affected) == ("deleted", 1)
    assert (second.result_data["result"], second.records_affected) == ("not_found", 0)


async def test_delete_by_query_removes_exactly_the_matches(
    connector: ElasticsearchConnector, index: str
) -> None:
    await ok(
        connector,
        "insert",
        data={"documents": [book(b) for b in BOOKS], "ids": [b[0] for b in BOOKS]},
        parameters={"index": index, "refresh": True},
    )

    result = await ok(
        connector,
        "delete",
        parameters={"index": index, "query": {"term": {"genre": "fable"}}, "refresh": True},
    )
    left = await ok(connector, "search", parameters={"index": index, "size": 100})

    assert (result.result_data["deleted"], result.records_affected) == (4, 4)
    assert result.result_data["failures"] == []
    assert set(ids_of(left)) == {b[0] for b in BOOKS if b[2] != "fable"}


# --- errors ----------------------------------------------------------------------------------------


async def test_a_missing_index_is_a_configuration_error(
    connector: ElasticsearchConnector, index: str
) -> None:
    category, code, message = await fails(connector, "search", parameters={"index": index})

    assert (category, code) == ("configuration", "NOT_FOUND")
    assert index in message


async def test_bad_query_dsl_is_a_permanent_error_with_the_clusters_reason(
    connector: ElasticsearchConnector, books: str
) -> None:
    category, code, message = await fails(
        connector, "search", parameters={"index": books, "query": {"no_such_query": {}}}
    )

    assert (category, code) == ("permanent", "QUERY_FAILED")
    assert "no_such_query" in message


async def test_writes_refuse_patterns_before_reaching_the_cluster(
    connector: ElasticsearchConnector, books: str
) -> None:
    category, code, _ = await fails(
        connector, "delete", parameters={"index": "scf-books-*", "query": {"match_all": {}}}
    )
    count = await ok(connector, "count", parameters={"index": books})

    assert (category, code) == ("permanent", "INVALID_IDENTIFIER")
    assert count.result_data == {"count": len(BOOKS)}


# --- TLS and authentication, through a real HTTPS gateway in front of noida-db ------------------------

USERS = {"elastic": "right-password", "reader": "reader-password"}
API_KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
BEARER = "bearer-token-5f1e"
WRONG_PASSWORD = "wrong-password-canary-77aa"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
async def gateway(noida_target: EsTarget, tls: TlsFiles) -> AsyncIterator[SecureGateway]:
    credentials = Credentials(users=USERS, api_keys={API_KEY}, bearer_tokens={BEARER}, readers={"reader"})
    proxy = SecureGateway(noida_target.url, credentials, tls)
    await proxy.start()
    yield proxy
    await proxy.stop()


def through(gateway: SecureGateway, ca: Path | None, **body: Any) -> ServiceConnection:
    config: dict[str, Any] = {"hosts": [gateway.url], **body.pop("custom_config", {})}
    if ca is not None:
        config["ca_certs"] = str(ca)
    return ServiceConnection.model_validate(
        {
            "service_type": "elasticsearch",
            "service_name": "es_gateway",
            "connection_timeout": 5,
            "retry_attempts": 0,
            "custom_config": config,
            **body,
        }
    )


async def check_and_count(connection: ServiceConnection) -> tuple[str, OperationResult]:
    connector = ElasticsearchConnector(connection)
    try:
        checked = await connector.check()
        listed = await run(connector, "list_indices")
    finally:
        await connector.close()
    return checked.status, listed


@pytest.mark.parametrize(
    ("auth", "scheme"),
    [
        ({"username": "elastic", "password": USERS["elastic"]}, "Basic"),
        ({"custom_config": {"api_key": API_KEY}}, "ApiKey"),
        ({"custom_config": {"bearer_token": BEARER}}, "Bearer"),
    ],
)
async def test_tls_with_a_ca_and_each_authentication_method(
    gateway: SecureGateway, tls: TlsFiles, auth: dict[str, Any], scheme: str
) -> None:
    gateway.seen_authorization.clear()

    status, listed = await check_and_count(through(gateway, tls.ca_certs, **auth))

    assert status == "success"
    assert listed.status == "success", listed.error
    assert set(gateway.seen_authorization) == {scheme}


async def test_verify_certs_false_accepts_an_unknown_certificate(gateway: SecureGateway) -> None:
    connection = through(
        gateway, None, username="elastic", password=USERS["elastic"], custom_config={"verify_certs": False}
    )

    status, _ = await check_and_count(connection)

    assert status == "success"


async def test_an_untrusted_certificate_is_a_configuration_error(gateway: SecureGateway) -> None:
    connector = ElasticsearchConnector(through(gateway, None, username="elastic", password=USERS["elastic"]))
    try:
        result = await connector.check()
    finally:
        await connector.close()

    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.category, result.error.code) == ("configuration", "INVALID_CONFIG")


async def test_a_wrong_password_is_a_security_error_without_the_secret(
    gateway: SecureGateway, tls: TlsFiles
) -> None:
    connector = ElasticsearchConnector(
        through(gateway, tls.ca_certs, username="elastic", password=WRONG_PASSWORD)
    )
    try:
        checked = await connector.check()
        result = await run(connector, "count", parameters={"index": "anything"})
    finally:
        await connector.close()

    assert checked.test_results == {
        "connection_test": "passed",
        "authentication_test": "failed",
        "permissions_test": "skipped",
    }
    assert result.error is not None
    assert (result.error.category, result.error.code) == ("security", "AUTHENTICATION_FAILED")
    assert result.error.retryable is False
    assert WRONG_PASSWORD not in checked.model_dump_json() + result.model_dump_json()


async def test_a_user_without_privileges_fails_the_permissions_verdict(
    gateway: SecureGateway, tls: TlsFiles
) -> None:
    connection = through(gateway, tls.ca_certs, username="reader", password=USERS["reader"])

    status, listed = await check_and_count(connection)

    assert status == "failed"
    assert listed.error is not None
    assert (listed.error.category, listed.error.code) == ("security", "PERMISSION_DENIED")
    assert listed.error.message == "access denied"
