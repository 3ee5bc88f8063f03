"""Hostile inputs per connector: each is a typed `permanent` refusal that never moves the breaker.

Issue 11 item 3: a client-caused error classified `transient` is retried and counted by the fleet-wide
breaker, so a trickle of bad requests opens it for every caller. Every connector here runs against its
real server or stand-in (Redis, RabbitMQ, moto S3, noida-db, local HTTP servers, Qdrant local) with a
breaker that opens on the FIRST counted failure: a case that counted would show as an open breaker (and
the next case as CIRCUIT_OPEN). After every case the same connector must still serve a normal request,
and no reply may carry the connector's secret canary.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from scf.connectors.breaker import BreakerPolicy, LocalBreakerBoard
from scf.factory import ServiceConnectorFactory
from scf.fleet.client import FleetClient
from scf.schemas.errors import ErrorCategory
from tests.support.http_servers import RunningApi, json_reply, running_api
from tests.support.hung import HungServer
from tests.support.noida import NoidaServer, noida_server
from tests.support.s3 import S3Server, moto_server
from tests.support.services import Vhost, create_vhost, delete_vhost

pytestmark = pytest.mark.integration

__all__ = ["noida_server"]  # a session fixture, found by name

#: Opens on the first failure that counts, and stays open: one miscounted case is enough to see.
STRICT = BreakerPolicy(window=600.0, min_failures=1, failure_rate=0.0, cooldown=600.0)
CANARY = f"canary-{uuid.uuid4().hex[:12]}"
P, S = ErrorCategory.PERMANENT, ErrorCategory.SECURITY


@dataclass(frozen=True)
class Case:
    id: str
    operation: str
    data: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    category: ErrorCategory = P


def strict_factory() -> ServiceConnectorFactory:
    return ServiceConnectorFactory(breakers=LocalBreakerBoard(STRICT), retry_delay=0.01)


def body(case: Case) -> dict[str, Any]:
    return {"operation": case.operation, "data": case.data, "parameters": case.parameters, "timeout": 10}


async def refuse_every_case(
    factory: ServiceConnectorFactory, name: str, cases: list[Case], normal: dict[str, Any]
) -> list[str]:
    """Run each case, then a normal request; returns what went wrong (empty when all is well)."""
    wrong: list[str] = []
    for case in cases:
        result = await factory.execute_operation(name, body(case))
        error = result.error
        if error is None:
            wrong.append(f"{case.id}: succeeded")
        elif error.category is not case.category or error.retryable:
            wrong.append(f"{case.id}: {error.category.value} {error.code} {error.message[:80]!r}")
        if factory.breakers.state(name) != "closed":
            wrong.append(f"{case.id}: the breaker opened")
            return wrong
        if CANARY in result.model_dump_json():
            wrong.append(f"{case.id}: the secret canary is in the reply")
        after = await factory.execute_operation(name, normal)
        if after.status != "success":
            wrong.append(f"{case.id}: the next normal request failed: {after.error}")
    return wrong


# --- Redis ------------------------------------------------------------------------------------------

REDIS_CASES = [
    Case("surrogate key", "set", {"key": "k\ud800", "value": "v"}),
    Case("surrogate value", "set", {"key": "k", "value": "v\ud800"}),
    Case("NUL in key", "get", {"key": "a\x00b"}),
    Case("surrogate key in a batch", "mset", {"values": {"k\ud800": "v"}}),
    Case("surrogate hash field", "hset", {"key": "h", "mapping": {"f\ud800": "v"}}),
    Case("increment past 64 bits", "incr", {"key": "n", "amount": 2**80}),
    Case("ttl past any clock", "expire", {"key": "k", "ttl": 2**62}),
    Case("not a stream id", "xadd", {"key": "s", "fields": {"a": "b"}, "id": "not-an-id"}),
    Case("not a stream range", "xrange", {"key": "s", "start": "zzz"}),
    Case("NaN score", "zadd", {"key": "z", "members": {"m": float("nan")}}),
    Case("surrogate channel", "publish", {"channel": "c\ud800", "message": "m"}),
    Case("wrong type", "hget", {"key": "taken", "field": "f"}),
    Case("not a number", "incr", {"key": "taken"}),
]


async def test_redis_refuses_hostile_inputs_without_moving_the_breaker(redis_url: str) -> None:
    factory = strict_factory()
    db = int(urlsplit(redis_url).path.lstrip("/") or 0)
    prefix = f"sec-{uuid.uuid4().hex[:8]}:"
    config = {"db": db, "key_prefix": prefix}
    await factory.create_connector(
        {"service_type": "redis", "service_name": "sec_redis", "host": "127.0.0.1", "port": 6379}
        | {"retry_attempts": 0, "custom_config": config}
    )
    try:
        setup = await factory.execute_operation(
            "sec_redis", {"operation": "set", "data": {"key": "taken", "value": "text"}}
        )
        assert setup.status == "success", setup.error
        normal = {"operation": "get", "data": {"key": "taken"}}
        assert await refuse_every_case(factory, "sec_redis", REDIS_CASES, normal) == []
        await factory.execute_operation("sec_redis", {"operation": "delete", "data": {"keys": ["taken"]}})
    finally:
        await factory.close()


# --- RabbitMQ ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mq_vhost() -> Iterator[Vhost]:
    created = create_vhost()
    yield created
    delete_vhost(created)


def rabbit_cases(queue: str) -> list[Case]:
    to_queue = {"exchange": "", "routing_key": queue}
    return [
        # before the fix: FRAME_ERROR, the connection closed, transient CONNECTION_FAILED
        Case(
            "headers larger than a frame",
            "publish",
            {"message": 1},
            to_queue | {"headers": {"a": "x" * 200_000}},
        ),
        # before the fix: the broker answered INTERNAL_ERROR and closed the connection: transient
        Case("Infinity in a header", "publish", {"message": 1}, to_queue | {"headers": {"a": float("inf")}}),
        Case(
            "NaN deep in a header",
            "publish",
            {"message": 1},
            to_queue | {"headers": {"a": [{"b": float("nan")}]}},
        ),
        Case(
            "header key pamqp would cut",
            "publish",
            {"message": 1},
            to_queue | {"headers": {"a": {"k" * 200: 1}}},
        ),
        Case("surrogate in a header", "publish", {"message": 1}, to_queue | {"headers": {"a": "v\ud800"}}),
        Case(
            "correlation id over 255 bytes",
            "publish",
            {"message": 1},
            to_queue | {"correlation_id": "é" * 200},
        ),
        Case("NaN body", "publish", {"message": float("nan")}, to_queue),
        Case("unroutable", "publish", {"message": 1}, {"exchange": "", "routing_key": f"nobody-{queue}"}),
        Case(
            "no such exchange", "publish", {"message": 1}, {"exchange": f"nope-{queue}", "routing_key": "x"}
        ),
        Case("no such queue", "queue_stats", {}, {"queue": f"nope-{queue}"}),
        Case(
            "bad x-match",
            "bind",
            {},
            {"queue": queue, "exchange": "amq.headers", "arguments": {"x-match": "bogus"}},
        ),
        Case(
            "exclusive quorum queue",
            "declare_queue",
            {},
            {"queue": f"{queue}-q", "exclusive": True, "arguments": {"x-queue-type": "quorum"}},
        ),
        Case(
            "inequivalent redeclare", "declare_queue", {}, {"queue": queue, "arguments": {"x-max-length": 5}}
        ),
    ]


async def test_rabbitmq_refuses_hostile_inputs_without_moving_the_breaker(mq_vhost: Vhost) -> None:
    factory = strict_factory()
    queue = f"sec-{uuid.uuid4().hex[:8]}"
    await factory.create_connector(
        {"service_type": "rabbitmq", "service_name": "sec_mq", "host": "127.0.0.1", "port": 5672}
        | {"username": "guest", "password": "guest", "retry_attempts": 0}
        | {"custom_config": {"vhost": mq_vhost.name}}
    )
    try:
        made = await factory.execute_operation(
            "sec_mq", {"operation": "declare_queue", "parameters": {"queue": queue}}
        )
        assert made.status == "success", made.error
        normal = {
            "operation": "publish",
            "data": {"message": {"ok": True}},
            "parameters": {"exchange": "", "routing_key": queue},
        }
        assert await refuse_every_case(factory, "sec_mq", rabbit_cases(queue), normal) == []
    finally:
        await factory.close()


async def test_through_the_fleet_oversized_headers_never_open_the_rabbitmq_breaker(
    client: FleetClient, mq_vhost: Vhost
) -> None:
    """Before the fix each of these closed the connector's connection (FRAME_ERROR) as `transient`:
    retried, and after five the fleet-wide breaker refused every caller's publishes."""
    name = f"sec_mq_{uuid.uuid4().hex[:6]}"
    queue = f"sec-{uuid.uuid4().hex[:8]}"
    await client.create_connector(
        {"service_type": "rabbitmq", "service_name": name, "host": "127.0.0.1", "port": 5672}
        | {"username": "guest", "password": "guest", "test_on_create": False}
        | {"custom_config": {"vhost": mq_vhost.name}}
    )
    made = await client.execute_operation(
        name, {"operation": "declare_queue", "parameters": {"queue": queue}}
    )
    to_queue = {"exchange": "", "routing_key": queue}
    hostile = {"operation": "publish", "data": {"message": 1}}
    answers = [
        await client.execute_operation(
            name, hostile | {"parameters": to_queue | {"headers": {"a": "x" * 200_000}}}
        )
        for _ in range(7)
    ]
    normal = {"operation": "publish", "data": {"message": {"ok": True}}, "parameters": to_queue}
    other = await client.execute_operation(name, normal)
    await client.delete_connector(name)

    assert made.status == "success", made.error
    assert [(a.error.category, a.error.retryable) for a in answers if a.error] == [(P, False)] * 7
    assert other.status == "success", other.error


# --- MinIO / S3 -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


MINIO_CASES = [
    Case("surrogate key", "put_object", {"text": "x"}, {"key": "k\ud800"}),
    Case("NUL in key", "put_object", {"text": "x"}, {"key": "a\x00b"}),
    Case("line break in key", "get_object", {}, {"key": "a\r\nb"}),
    Case(
        "header injection in metadata",
        "put_object",
        {"text": "x"},
        {"key": "a", "metadata": {"m": "v\r\nX-Evil: 1"}},
    ),
    Case("non-ASCII metadata", "put_object", {"text": "x"}, {"key": "a", "metadata": {"m": "café中"}}),
    Case("metadata over 2 KiB", "put_object", {"text": "x"}, {"key": "a", "metadata": {"m": "v" * 10_000}}),
    Case(
        "content type injection",
        "put_object",
        {"text": "x"},
        {"key": "a", "content_type": "text/plain\r\nX: y"},
    ),
    Case("surrogate text", "put_object", {"text": "x\ud800"}, {"key": "a"}),
    Case("not base64", "put_object", {"base64": "!!!"}, {"key": "a"}),
    Case("no such key", "get_object", {}, {"key": "missing"}),
    Case("range outside the object", "get_object", {}, {"key": "present.txt", "offset": 10**6}),
    Case("copy of nothing", "copy_object", {}, {"key": "b", "source_key": "missing"}),
    Case("surrogate in a batch delete", "delete_objects", {}, {"keys": ["\ud800"]}),
]


async def test_minio_refuses_hostile_inputs_without_moving_the_breaker(
    s3: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    factory = strict_factory()
    bucket = s3.new_bucket()
    body = s3.connection("sec_s3", bucket, retry_attempts=0).model_dump(mode="json")
    body["custom_config"]["secret_key"] = CANARY
    await factory.create_connector(body)
    try:
        put = await factory.execute_operation(
            "sec_s3",
            {"operation": "put_object", "data": {"text": "hi"}, "parameters": {"key": "present.txt"}},
        )
        assert put.status == "success", put.error
        normal = {"operation": "stat_object", "parameters": {"key": "present.txt"}}
        assert await refuse_every_case(factory, "sec_s3", MINIO_CASES, normal) == []
    finally:
        await factory.close()
        s3.drop_bucket(bucket)
    assert CANARY not in "".join(capsys.readouterr())  # the secret key is in no log line


@contextlib.contextmanager
def proxy_refusing(status: int) -> Iterator[str]:
    """An HTTP server answering every request as a reverse proxy in front of a store would refuse an
    oversized request: `status` with an HTML page, not S3 XML."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            page = f"<html><h1>{status}</h1></html>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [413, 414, 400])
async def test_a_proxy_refusing_the_request_is_permanent_not_an_unwell_store(
    s3: S3Server, status: int
) -> None:
    """Before the fix a non-XML answer was transient CONNECTION_FAILED whatever its status."""
    factory = strict_factory()
    with proxy_refusing(status) as endpoint:
        body = s3.connection("sec_proxy", "any-bucket", retry_attempts=0, endpoint=endpoint)
        await factory.create_connector(body, connect=False)
        try:
            results = [
                await factory.execute_operation(
                    "sec_proxy",
                    {"operation": "put_object", "data": {"text": "x"}, "parameters": {"key": "k"}},
                )
                for _ in range(3)
            ]
        finally:
            await factory.close()

    assert [(r.error.category, r.error.retryable) for r in results if r.error] == [(P, False)] * 3
    assert factory.breakers.state("sec_proxy") == "closed"


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


async def test_qdrant_refuses_hostile_inputs_without_moving_the_breaker(tmp_path: Path) -> None:
    factory = strict_factory()
    config = {"path": str(tmp_path / "qdrant"), "collection_name": "sec", "vector_dimension": 3}
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
    sizes = {"redis": len(REDIS_CASES), "rabbitmq": len(rabbit_cases("q")), "minio": len(MINIO_CASES)}
    sizes |= {"elasticsearch": len(es_cases("i")), "api": len(API_CASES), "qdrant": len(QDRANT_CASES)}
    assert all(size >= 10 for size in sizes.values()), sizes
