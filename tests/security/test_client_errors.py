"""Hostile inputs per connector (Redis, RabbitMQ, MinIO): each a typed `permanent` refusal that never
moves the breaker (issue 11 item 3).

Every connector runs against its real server or stand-in (Redis, RabbitMQ, moto S3, a local server
answering like a proxy) with a breaker that opens on the FIRST counted failure (`tests/support/hostile.py`).
After every case the same connector must still serve a normal request, and no reply may carry the
connector's secret canary. HTTP-shaped services: `test_client_errors_http.py`.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from scf.fleet.client import FleetClient
from tests.support.hostile import CANARY, Case, P, refuse_every_case, strict_factory
from tests.support.s3 import S3Server, moto_server
from tests.support.services import Vhost, create_vhost, delete_vhost

pytestmark = pytest.mark.integration


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
    # The suite's own Redis (a private server): its host, port and database, never the machine's :6379.
    target = urlsplit(redis_url)
    db = int(target.path.lstrip("/") or 0)
    prefix = f"sec-{uuid.uuid4().hex[:8]}:"
    config = {"db": db, "key_prefix": prefix}
    await factory.create_connector(
        {
            "service_type": "redis",
            "service_name": "sec_redis",
            "host": target.hostname or "127.0.0.1",
            "port": target.port or 6379,
        }
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


def test_the_corpus_sizes() -> None:
    """Kept in the report: how many hostile inputs each surface is held to."""
    sizes = {"redis": len(REDIS_CASES), "rabbitmq": len(rabbit_cases("q")), "minio": len(MINIO_CASES)}
    assert all(size >= 10 for size in sizes.values()), sizes
