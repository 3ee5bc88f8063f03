"""Hostile inputs per connector (Elasticsearch, API, CSV/PDF by URL, Qdrant): each a typed `permanent`
refusal that never moves the breaker (issue 11 item 3).

Against noida-db, local HTTP servers, a silent host and Qdrant local, with a breaker that opens on the
FIRST counted failure (`tests/support/hostile.py`); after every case the same connector must still serve
a normal request. A caller's file URL is the request's, not the connector's service: its failures must
never open the CSV/PDF connector's breaker, here and through the fleet.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from scf.fleet.client import FleetClient
from tests.support.hostile import CANARY, Case, P, S, refuse_every_case, strict_factory
from tests.support.http_servers import RunningApi, json_reply, running_api
from tests.support.hung import HungServer
from tests.support.noida import NoidaServer, noida_server

pytestmark = pytest.mark.integration

__all__ = ["noida_server"]  # a session fixture, found by name


# --- Elasticsearch (noida-db) -----------------------------------------------------------------------


def es_cases(index: str) -> list[Case]:
    target = {"index": index}
    return [
        Case("NaN in a document", "insert", {"documents": [{"n": float("nan")}]}, target),
        Case("object for a number field", "insert", {"documents": [{"n": {"b": 1}}]}, target),
        Case("id over 512 bytes", "insert", {"documents": [{"n": 1}], "ids": ["x" * 600]}, target),
        Case("surrogate id", "get", {}, target | {"id": "\ud800"}),
        Case("unknown query", "search", {}, target | {"query": {"bogus_query": {}}}),
        Case(
            "unparsable query string", "search", {}, target | {"query": {"query_string": {"query": "a:(((("}}}
        ),
        Case(
            "number range on text",
            "search",
            {},
            target | {"query": {"range": {"n": {"gte": "not-a-number"}}}},
        ),
        Case("surrogate in a query", "count", {}, target | {"query": {"term": {"a\ud800": 1}}}),
        Case("unknown aggregation", "aggregate", {}, target | {"aggs": {"x": {"nope": {}}}}),
        Case("update of nothing", "update", {"doc": {"n": 1}}, target | {"id": "missing"}),
        Case("invalid index name", "search", {}, {"index": "UPPER,*"}),
    ]


async def test_elasticsearch_refuses_hostile_inputs_without_moving_the_breaker(
    noida_server: NoidaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    factory = strict_factory()
    index = f"sec-{uuid.uuid4().hex[:8]}"
    await factory.create_connector(
        {"service_type": "elasticsearch", "service_name": "sec_es", "retry_attempts": 0}
        | {"custom_config": {"hosts": [noida_server.url], "api_key": CANARY}}
    )
    try:
        made = await factory.execute_operation(
            "sec_es",
            {
                "operation": "create_index",
                "parameters": {"index": index, "mappings": {"properties": {"n": {"type": "long"}}}},
            },
        )
        assert made.status == "success", made.error
        normal = {"operation": "count", "parameters": {"index": index}}
        assert await refuse_every_case(factory, "sec_es", es_cases(index), normal) == []
        await factory.execute_operation(
            "sec_es", {"operation": "delete_index", "parameters": {"index": index}}
        )
    finally:
        await factory.close()
    assert CANARY not in "".join(capsys.readouterr())  # the API key is in no log line


# --- API --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api() -> Iterator[RunningApi]:
    yield from running_api()


API_CASES = [
    Case(
        "header injection", "preview", {"api_endpoint": "/root-list"}, {"headers": {"X-A": "v\r\nX-Evil: 1"}}
    ),
    Case("surrogate header", "preview", {"api_endpoint": "/root-list"}, {"headers": {"X-A": "v\ud800"}}),
    Case("non-Latin-1 header", "preview", {"api_endpoint": "/root-list"}, {"headers": {"X-A": "café中"}}),
    Case("bad header name", "preview", {"api_endpoint": "/root-list"}, {"headers": {"Bad Name": "v"}}),
    Case(
        "100 KB header (431)", "preview", {"api_endpoint": "/root-list"}, {"headers": {"X-A": "v" * 100_000}}
    ),
    Case("surrogate query", "preview", {"api_endpoint": "/root-list"}, {"query": {"q": "a\ud800"}}),
    Case("200 KB query", "preview", {"api_endpoint": "/root-list"}, {"query": {"q": "x" * 200_000}}),
    Case("NUL in path", "preview", {"api_endpoint": "/root-list\x00"}),
    Case("line break in path", "preview", {"api_endpoint": "/rec ords\r\n"}),
    Case("another scheme", "preview", {"api_endpoint": "ftp://127.0.0.1/x"}, category=S),
    Case(
        "surrogate body",
        "preview",
        {"api_endpoint": "/root-list"},
        {"json": {"a": "\ud800"}, "method": "POST"},
    ),
    Case("not found", "preview", {"api_endpoint": "/missing"}),
    Case("bad request", "preview", {"api_endpoint": "/invalid"}),
    Case("not JSON", "preview", {"api_endpoint": "/not-json"}),
]


async def test_api_refuses_hostile_inputs_without_moving_the_breaker(api: RunningApi) -> None:
    factory = strict_factory()
    await factory.create_connector(
        {"service_type": "api", "service_name": "sec_api", "retry_attempts": 0}
        | {"custom_config": {"base_url": api.url, "allowed_hosts": [api.server.host_port]}}
    )
    try:
        normal = {"operation": "preview", "data": {"api_endpoint": "/root-list"}}
        assert await refuse_every_case(factory, "sec_api", API_CASES, normal) == []
    finally:
        await factory.close()


# --- CSV and PDF by URL: the caller's URL is not the connector's service -----------------------------


@pytest.fixture(scope="module")
async def hung() -> AsyncIterator[HungServer]:
    async with HungServer() as server:
        yield server


def url_cases(api: RunningApi, hung: HungServer) -> list[Case]:
    api.server.route("/throttled", lambda seen: json_reply({"error": "slow"}, 429, [("Retry-After", "1")]))
    urls = {
        "a 500 at the URL": f"{api.url}/broken",
        "a 503 at the URL": f"{api.url}/busy-no-hint",
        "a 429 at the URL": f"{api.url}/throttled",
        "a 404 at the URL": f"{api.url}/missing",
        "an unresolvable host": "http://nonexistent.invalid/x.csv",
        "a refused port": "http://127.0.0.1:1/x.csv",
        "a host that never answers": f"http://127.0.0.1:{hung.port}/x.csv",
    }
    return [Case(name, "preview", {"url": url}) for name, url in urls.items()]


CSV_FILE = {"file_data": "a,b\n1,2\n"}


@pytest.mark.parametrize("service_type", ["csv", "pdf"])
async def test_a_failing_url_is_the_requests_problem_not_the_connectors(
    api: RunningApi, hung: HungServer, service_type: str
) -> None:
    """Before the fix: transient, retried, and counted by the connector's breaker (five of them opened
    it for every caller, whatever file they sent)."""
    factory = strict_factory()
    allowed = [api.server.host_port, f"127.0.0.1:{hung.port}", "127.0.0.1:1", "nonexistent.invalid"]
    config = {"url_allowed_hosts": allowed, "url_timeout": 1}
    name = f"sec_{service_type}_url"
    await factory.create_connector(
        {"service_type": service_type, "service_name": name, "retry_attempts": 0, "custom_config": config}
    )
    if service_type == "csv":
        normal: dict[str, Any] = {"operation": "preview", "data": CSV_FILE}
    else:
        normal = {"operation": "validate", "data": {"file_data": "bm90IGEgcGRm"}}  # answered: not a PDF
    try:
        assert await refuse_every_case(factory, name, url_cases(api, hung), normal) == []
    finally:
        await factory.close()


async def test_through_the_fleet_a_dead_url_never_opens_the_csv_breaker(
    client: FleetClient, api: RunningApi
) -> None:
    """The fleet's shared breaker opens after 5 counted failures in 10 s; 8 requests naming a failing
    URL must each be a permanent refusal, and another caller's file must still be parsed."""
    name = f"sec_csv_{uuid.uuid4().hex[:6]}"
    await client.create_connector(
        {"service_type": "csv", "service_name": name, "retry_attempts": 0, "test_on_create": False}
        | {"custom_config": {"url_allowed_hosts": [api.server.host_port]}}
    )
    hostile = {"operation": "preview", "data": {"url": f"{api.url}/broken"}}
    answers = [await client.execute_operation(name, hostile, timeout=20) for _ in range(8)]
    other = await client.execute_operation(name, {"operation": "preview", "data": CSV_FILE}, timeout=20)

    assert [(a.error.category, a.error.retryable) for a in answers if a.error] == [(P, False)] * 8
    assert other.status == "success", other.error
    await client.delete_connector(name)


# --- Qdrant (local mode) ----------------------------------------------------------------------------

QDRANT_CASES = [
    Case("wrong dimension", "insert", {"vectors": [[1, 2]]}),
    Case("NaN in a vector", "insert", {"vectors": [[float("nan"), 2, 3]]}),
    Case("Infinity in a vector", "insert", {"vectors": [[1e309, 2, 3]]}),
    Case("surrogate id", "insert", {"vectors": [[1, 2, 3]], "ids": ["\ud800"]}),
    Case("id past 64 bits", "insert", {"vectors": [[1, 2, 3]], "ids": [2**80]}),
    Case("negative id", "insert", {"vectors": [[1, 2, 3]], "ids": [-1]}),
    Case("wrong dimension in a search", "search", {"vector": [1, 2]}),
    Case("unknown filter clause", "search", {"vector": [1, 2, 3]}, {"filter": {"bogus": 1}}),
    Case("surrogate payload path", "search", {"vector": [1, 2, 3]}, {"with_payload": ["\ud800"]}),
    Case(
        "surrogate filter key",
        "search",
        {"vector": [1, 2, 3]},
        {"filter": {"must": [{"key": "a\ud800", "match": {"value": 1}}]}},
    ),
    Case("delete past 64 bits", "delete", {"ids": [2**80]}),
]


async def test_qdrant_refuses_hostile_inputs_without_moving_the_breaker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCF_DATA_DIR", str(tmp_path))  # local mode stores under <data dir>/qdrant/<name>
    factory = strict_factory()
    config = {"collection_name": "sec", "vector_dimension": 3}
    await factory.create_connector(
        {"service_type": "qdrant", "service_name": "sec_qdrant", "retry_attempts": 0, "custom_config": config}
    )
    try:
        made = await factory.execute_operation("sec_qdrant", {"operation": "create_collection"})
        assert made.status == "success", made.error
        normal = {"operation": "insert", "data": {"vectors": [[1, 2, 3]]}}
        assert await refuse_every_case(factory, "sec_qdrant", QDRANT_CASES, normal) == []
    finally:
        await factory.close()


def test_the_corpus_sizes() -> None:
    """Kept in the report: how many hostile inputs each surface is held to."""
    sizes = {"elasticsearch": len(es_cases("i")), "api": len(API_CASES), "qdrant": len(QDRANT_CASES)}
    assert all(size >= 10 for size in sizes.values()), sizes
