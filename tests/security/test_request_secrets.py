"""Secrets in an operation request are masked wherever it is shown, not only in connector configs.

A credential in a URL's query or fragment (`?token=`, presigned `X-Amz-Signature=`, `#access_token=`)
and the values of request headers with unusual names (api `parameters.headers`: `X-Auth`, `Signature`)
showed in clear when the request was kept as a dead letter (dead-letter replies, `scf:dead:*` in Redis).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika
import pytest
import redis.asyncio as aioredis

from scf.fleet.client import FleetClient
from scf.schemas import topology
from scf.schemas.control import MessageType
from scf.schemas.secret_fields import mask_dsn
from scf.schemas.secrets import MASK, mask_url, redact
from tests.support.services import Vhost

RUN = uuid.uuid4().hex[:8]
KB, MB = 1024, 1024 * 1024


def canary(position: str) -> str:
    return f"cnry{RUN}{position}"


# --- the parsers (fast) -------------------------------------------------------------------------------

URL_CASES: list[tuple[str, str]] = [
    ("presigned_s3", "https://b.s3.amazonaws.com/f.csv?X-Amz-Credential=AK&X-Amz-Signature={c}"),
    ("presigned_gcs", "https://storage.googleapis.com/b/f?X-Goog-Signature={c}&X-Goog-Expires=60"),
    ("old_s3", "https://b.s3.amazonaws.com/f?AWSAccessKeyId=AK&Signature={c}&Expires=1"),
    ("token", "http://h/f.csv?token={c}"),
    ("api_key", "http://h/f.csv?a=1&api_key={c}"),
    ("password", "postgres://h/db?sslmode=disable&password={c}"),
    ("fragment_only", "https://h/cb#access_token={c}&token_type=bearer"),
    ("jwt", "https://h/x?jwt={c}"),
    ("client_assertion", "https://h/token?client_assertion={c}"),
]


@pytest.mark.parametrize(("case", "url"), URL_CASES, ids=[c for c, _ in URL_CASES])
def test_every_url_shape_is_masked(case: str, url: str) -> None:
    secret = canary(case)
    text = url.format(c=secret)
    for shown in (
        mask_url(text),
        mask_url(f"fetch failed: {text} (retrying)"),
        mask_dsn(text),
        json.dumps(redact({"data": {"url": text, "urls": [text]}})),
    ):
        assert secret not in shown and MASK in shown, shown


def test_a_url_as_a_keyword_value_keeps_none_of_its_secrets() -> None:
    secret = canary("kw")
    for text in (f"url=postgres://u:{secret}@h", f"host=h options=x x=redis://h/0?password={secret}"):
        assert secret not in mask_dsn(text), mask_dsn(text)
    assert (
        mask_dsn("host=h x=postgres://u@h/db?sslmode=disable") == "host=h x=postgres://u@h/db?sslmode=disable"
    )


def test_an_at_sign_in_a_password_never_leaves_a_piece_in_clear() -> None:
    secret = canary("at")
    for text in (
        f"postgres://u:{secret}@x@h/db",
        f"postgres://u:a@{secret}@h/db",
        f"see amqp://u:p@{secret}@h now",
    ):
        assert secret not in mask_url(text), mask_url(text)
        assert secret not in json.dumps(redact({"note": text})), text
    assert mask_url("postgres://u:p@h/db mail x@y") == f"postgres://u:{MASK}@h/db mail x@y"


def test_plain_parameters_stay_readable() -> None:
    for text in ("https://h/f.csv?a=1&b=2#top", "no url here password=x", "https://h/p?sort=name&page=2"):
        assert mask_url(text) == text


def _fastest(run: Callable[[], Any], times: int) -> float:
    best = float("inf")
    for _ in range(times):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


SHAPES: dict[str, Callable[[int], str]] = {
    "many urls with params": lambda n: ("a://h?k=v&token=t " * (n // 18 + 1))[:n],
    "one url, many params": lambda n: ("a://h?" + "k=v&" * (n // 4 + 1))[:n],
    "one url, long names": lambda n: "a://h?" + "p" * n + "=v",
    "many separators": lambda n: "a://h?" + "&" * n + "=",
    "many at signs in a password": lambda n: "a://u:" + "p@" * (n // 2),
    "many userinfos in one word": lambda n: ("ab://c:d@" * (n // 9 + 1))[:n],
    "many userinfos, no at sign": lambda n: ("ab://c:d" * (n // 8 + 1))[:n] + "@",
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_parameter_masking_is_linear(shape: str) -> None:
    """1 MB of worst-case text (scanned whole: `limit` raised past it) within a bound set by 1 KB."""
    make = SHAPES[shape]
    small, large = make(KB), make(MB)
    small_time = max(_fastest(lambda: mask_url(small, limit=4 * MB), 5), 1e-6)
    large_time = _fastest(lambda: mask_url(large, limit=4 * MB), 2)
    assert large_time < 3.0, f"1 MB took {large_time:.2f}s"
    assert large_time / small_time < 10_000, f"1 MB {large_time:.4f}s vs 1 KB {small_time:.6f}s"


# --- through the fleet --------------------------------------------------------------------------------


@pytest.mark.integration
async def test_a_dead_lettered_request_never_shows_its_secrets(
    client: FleetClient, vhost: Vhost, redis_url: str
) -> None:
    """An operation request nobody waits for, refused (no such connector), is kept as a dead letter:
    its URL's token and signature and its secret headers are masked in the reply and in Redis (a safe
    header stays readable), and the fleet still answers."""
    secrets = {p: canary(p) for p in ("dltoken", "dlamzsig", "dlfrag", "dlat", "dlxauth", "dlsignature")}
    operation_id = f"op_dl_url_{RUN}"
    body = {
        "service_name": f"missing_{RUN}",
        "operation_id": operation_id,
        "operation": "preview",
        "data": {
            "url": f"https://h.example/f.csv?token={secrets['dltoken']}&X-Amz-Signature={secrets['dlamzsig']}",
            "callback": f"https://h.example/cb#access_token={secrets['dlfrag']}",
            "dsn": f"postgres://u:p@{secrets['dlat']}@h.example/db",
        },
        "parameters": {
            "headers": {
                "X-Auth": secrets["dlxauth"],
                "Signature": secrets["dlsignature"],
                "Accept": "application/json",
            }
        },
    }
    connection = await aio_pika.connect_robust(vhost.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.REQUEST_EXCHANGE)
        message = aio_pika.Message(
            json.dumps(body).encode(),
            type=MessageType.OPERATION_EXECUTE.value,
            content_type="application/json",
            message_id=operation_id,
        )
        await exchange.publish(message, topology.REQUEST_ROUTING_KEY)
    finally:
        await connection.close()
    letters: list[Any] = []
    for _ in range(200):
        page = await client.dead_letters(limit=100)
        letters = [d for d in page.dead_letters if d.operation_id == operation_id]
        if letters:
            break
        await asyncio.sleep(0.1)
    assert letters, "the refused request was not kept as a dead letter"
    shown = json.dumps([d.model_dump(mode="json") for d in letters])
    assert "h.example" in shown and "application/json" in shown, "the dead letter shows the request, masked"
    assert not [p for p, c in secrets.items() if c in shown], shown
    stored = [v for v in await _redis_values(redis_url, "scf:dead:*") if operation_id in v]
    assert stored, "the dead letter was not found where expected (scf/fleet/keys.py)"
    assert not [p for p, c in secrets.items() if any(c in v for v in stored)]
    assert isinstance(await client.list_connectors(), list)  # the fleet still answers right after


async def _redis_values(redis_url: str, pattern: str) -> list[str]:
    """Every plain value under `pattern` (strings, hash fields), sealed copies left out."""
    redis = aioredis.from_url(redis_url, decode_responses=True)
    values: list[str] = []
    try:
        async for key in redis.scan_iter(match=pattern):
            kind = await redis.type(key)
            if key.endswith(":sealed"):
                continue
            if kind == "string":
                values.append(str(await redis.get(key)))
            elif kind == "hash":
                values.append(json.dumps(await redis.hgetall(key)))
    finally:
        await redis.aclose()
    return values
