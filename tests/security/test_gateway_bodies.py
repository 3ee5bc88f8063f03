"""Hostile HTTP requests against a real gateway process (the corpus of this surface): each gets one
typed 4xx (never a 500), the gateway keeps answering right after, and no canary secret comes back or
reaches its log. Sizes and slow bodies: test_gateway_limits.py; what it reveals: test_gateway_exposure.py.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.gateway_http import (
    CANARY,
    PG,
    VALIDATE,
    Gateway,
    assert_typed,
    connect,
    gateway_fixtures,
    still_serving,
)

pytestmark = pytest.mark.integration
gateway, http = gateway_fixtures("gateway-bodies")


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    code: str
    content: bytes | None = None
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    params: tuple[tuple[str, str], ...] = ()


def js(value: Any) -> bytes:
    return json.dumps(value).encode()


def raw_js(text: str) -> bytes:
    return text.encode("utf-8")


CORPUS = [
    Case(
        "lone surrogate in a custom_config header value",
        "POST",
        "/connectors",
        422,
        "INVALID_REQUEST",
        raw_js(
            json.dumps({**PG, "service_name": "sur_hdr", "service_type": "api", "host": "example.com"})[:-1]
            + ', "custom_config": {"headers": {"X-Note": "\\ud800"}}}'
        ),
    ),
    Case(
        "lone surrogate in service_name",
        "POST",
        "/connectors",
        422,
        "INVALID_REQUEST",
        raw_js(json.dumps(PG)[:-1] + ', "service_name": "sur\\udfff"}'),
    ),
    Case(
        "lone surrogate in a key of execute parameters",
        "POST",
        "/connectors/any_db/execute",
        422,
        "INVALID_REQUEST",
        raw_js('{"operation": "query", "parameters": {"\\ud800": 1}}'),
    ),
    Case(
        "lone surrogate in a dry-run validation",
        "POST",
        VALIDATE,
        422,
        "INVALID_REQUEST",
        raw_js('{"service_name": "x", "password": "\\udbff' + CANARY + '"}'),
    ),
    Case(
        "a surrogate encoded as UTF-8 bytes",
        "POST",
        "/connectors",
        400,
        "INVALID_JSON",
        js({**PG, "service_name": "sur_bytes"})[:-1] + b', "description": "\xed\xa0\x80"}',
    ),
    Case("invalid UTF-8", "POST", "/connectors", 400, "INVALID_JSON", js(PG)[:-1] + b', "x": "\xff\xfe"}'),
    Case(
        "latin-1 bytes under a latin-1 charset",
        "POST",
        "/connectors",
        400,
        "INVALID_JSON",
        '{"service_name": "caf\xe9"}'.encode("latin-1"),
        (("content-type", "application/json; charset=latin-1"),),
    ),
    Case(
        "nesting one past the dispatcher's limit",
        "POST",
        "/connectors/any_db/execute",
        400,
        "LIMIT_EXCEEDED",
        js({"operation": "insert", "data": deep(64)}),
    ),
    Case("nesting 100000 deep", "POST", VALIDATE, 400, "LIMIT_EXCEEDED", b"[" * 100_000 + b"]" * 100_000),
    Case("malformed JSON", "POST", "/connectors", 400, "INVALID_JSON", b'{"service_name": '),
    Case("a JSON array where an object is due", "POST", "/connectors", 422, "INVALID_REQUEST", b"[1, 2]"),
    Case("NaN and Infinity literals", "POST", "/connectors/any_db/execute", 422, "INVALID_REQUEST", b"NaN"),
    Case(
        "text/plain body",
        "POST",
        "/connectors",
        422,
        "INVALID_REQUEST",
        js({**PG, "service_name": "plain"}),
        (("content-type", "text/plain"),),
    ),
    Case(
        "form-encoded body",
        "POST",
        "/connectors",
        422,
        "INVALID_REQUEST",
        b"service_name=form&password=" + CANARY.encode(),
        (("content-type", "application/x-www-form-urlencoded"),),
    ),
    Case("no content type", "POST", "/connectors", 422, "INVALID_REQUEST", js(PG), ()),
    Case(
        "unknown top-level field in execute",
        "POST",
        "/connectors/any_db/execute",
        422,
        "INVALID_REQUEST",
        js({"operation": "query", "sneaky": True}),
    ),
    Case(
        "Idempotency-Key header past its bound",
        "POST",
        "/connectors/any_db/execute",
        422,
        "INVALID_REQUEST",
        js({"operation": "query"}),
        (("content-type", "application/json"), ("idempotency-key", "k" * 300)),
    ),
    Case("huge path parameter", "GET", "/connectors/" + "n" * 8000, 422, "INVALID_REQUEST"),
    Case("NUL in a path parameter", "GET", "/connectors/a%00b", 422, "INVALID_REQUEST"),
    Case("a percent-encoded surrogate in the path", "GET", "/connectors/%ED%A0%80", 422, "INVALID_REQUEST"),
    Case("a percent-encoded surrogate in the query", "GET", "/connectors?service_type=%ED%A0%80", 200, ""),
    Case("a 60 KB query string", "GET", "/connectors", 200, "", params=(("service_type", "q" * 60_000),)),
    Case("unknown path", "GET", "/connectors/x/y/z", 404, "NOT_FOUND"),
    Case("wrong method", "PATCH", "/connectors", 405, "INVALID_REQUEST"),
    Case("negative page size", "GET", "/dead-letters", 422, "INVALID_REQUEST", params=(("limit", "-1"),)),
    Case(
        "page size past 64 bits",
        "GET",
        "/dead-letters",
        422,
        "INVALID_REQUEST",
        params=(("limit", "9" * 30),),
    ),
    Case("unknown enum value", "GET", "/dead-letters", 422, "INVALID_REQUEST", params=(("reason", "bored"),)),
    Case(
        "a thousand repeated query parameters",
        "GET",
        "/dead-letters",
        422,
        "INVALID_REQUEST",
        params=tuple(("limit", "x") for _ in range(1000)),
    ),
    Case("unknown connector type", "POST", "/connector-types/nope/validate", 404, "NOT_FOUND", js({})),
]


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
async def test_hostile_request_gets_one_typed_refusal(
    case: Case, http: httpx.AsyncClient, gateway: Gateway
) -> None:
    response = await http.request(
        case.method, case.path, content=case.content, headers=dict(case.headers), params=list(case.params)
    )

    if case.status == 200:  # a bounded effect, not a refusal
        assert response.status_code == 200 and response.json()["total"] == 0
    else:
        assert_typed(response, case.status, case.code)
    if case.path.endswith("/execute"):
        assert response.json()["status"] == "failed" and "records_processed" in response.json()
    assert CANARY not in response.text
    await still_serving(http)
    assert CANARY not in gateway.process.own_output()


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"GET /connectors HTTP/1.1\r\nX-Huge: " + b"h" * 100_000, id="one 100 KB header"),
        pytest.param(
            b"GET /connectors HTTP/1.1\r\n" + b"\r\n".join(b"X-Many-%d: vvvvvvvv" % i for i in range(5000)),
            id="5000 headers",
        ),
        pytest.param(b"GET /connectors?service_type=" + b"q" * 100_000 + b" HTTP/1.1", id="100 KB query"),
        pytest.param(b"GET /connectors/" + b"n" * 100_000 + b" HTTP/1.1", id="100 KB path"),
    ],
)
async def test_oversized_request_heads_are_refused(
    head: bytes, gateway: Gateway, http: httpx.AsyncClient
) -> None:
    reader, writer = await connect(gateway)
    writer.write(head + b"\r\nHost: gateway\r\n\r\n")
    await writer.drain()

    got = b""
    try:
        async with asyncio.timeout(10):
            while chunk := await reader.read(65536):
                got += chunk
    except TimeoutError:
        raise AssertionError(f"not closed; got {got[:400]!r}") from None
    answer = got
    writer.close()

    # Typed 431 when the head arrived whole; uvicorn's parser answers a plain 400 when it came in pieces
    # past the same bound (h11_max_incomplete_event_size): both refuse it, neither holds it.
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 431), answer[:200]
    if status == 431:
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "REQUEST_TOO_LARGE"
    await still_serving(http)


async def test_no_refused_body_reached_the_registry(http: httpx.AsyncClient) -> None:
    listed = await http.get("/connectors")

    assert listed.status_code == 200
    names = [c["service_name"] for c in listed.json()["connectors"]]
    assert not [n for n in names if n.startswith(("sur", "plain", "form", "big"))]


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"X-Bad\x00Name: v", id="NUL in a header name"),
        pytest.param(b"Content-Length: 5\r\nContent-Length: 7", id="two lengths"),
        pytest.param(b"Content-Length: -1", id="negative length"),
        pytest.param(b"Transfer-Encoding: gzip, chunked, identity", id="smuggling encodings"),
    ],
)
async def test_malformed_framing_is_refused_by_the_http_parser(
    head: bytes, gateway: Gateway, http: httpx.AsyncClient
) -> None:
    reader, writer = await connect(gateway)
    writer.write(b"POST /connectors HTTP/1.1\r\nHost: gateway\r\n" + head + b"\r\n\r\n")
    await writer.drain()

    async with asyncio.timeout(10):
        answer = await reader.read()  # uvicorn answers and closes
    writer.close()

    # Refused before the app sees it: uvicorn's own plain-text 400 (see the report: not a typed body).
    assert answer.startswith(b"HTTP/1.1 400")
    await still_serving(http)
