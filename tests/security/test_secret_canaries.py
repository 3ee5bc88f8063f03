"""Secret canaries through the real fleet: a unique string in every secret position, found nowhere outside.

Connectors are created through the broker (FleetClient) and the gateway with a canary in every place a
credential can sit (password, DSN userinfo, `?password=`, keyword DSN, headers with unusual names, auth
tokens, S3 and search keys). Then every reply (create, get, list, update, test, status, metrics, failed
operations, refused configs), every fleet log line, every Redis value and every dead letter is searched.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import redis.asyncio as aioredis

from scf.fleet.client import FleetClient
from scf.schemas import topology
from scf.schemas.connection import ServiceConnection
from scf.schemas.control import MessageType
from scf.schemas.secret_fields import MAX_DSN_CHARS, mask_dsn
from scf.schemas.secrets import MASK
from tests.support.fleet import FleetProcess
from tests.support.services import Vhost
from tests.support.timing import best_of

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
POSITIONS = [
    "password",
    "dsn_userinfo",
    "dsn_query",
    "dsn_sslpassword",
    "keyword_dsn",
    "keyword_dsn_quoted",
    "redis_url",
    "amqp_url",
    "minio_access",
    "minio_secret",
    "minio_session",
    "es_api_key",
    "qdrant_api_key",
    "qdrant_url_query",
    "header_x_auth",
    "header_vault",
    "header_signature",
    "bearer_token",
    "oauth_secret",
    "oauth_token_url",
    "gw_keyword_dsn",
    "gw_header",
    "gw_update",
    "url_source_userinfo",
    "url_source_query",
    "refused",
    "dead_letter",
]
CANARY = {p: f"cnry{RUN}{p.replace('_', '')}" for p in POSITIONS}
#: Positions whose canary only ever appears in a dead letter (see test_no_dead_letter_shows_a_canary).
DEAD_ONLY = {"dead_letter"}


def leaks(text: str, positions: set[str] | None = None) -> list[str]:
    return [p for p, c in CANARY.items() if (positions is None or p in positions) and c in text]


def name(kind: str) -> str:
    return f"cn_{kind}_{RUN}"


def connectors() -> list[dict[str, Any]]:
    """One connector per secret position (FleetClient path); none of them needs to reach its service."""
    base: dict[str, Any] = {"test_on_create": False, "connection_timeout": 3}
    local = "127.0.0.1"
    return [
        {
            **base,
            "service_type": "postgresql",
            "service_name": name("pg_userinfo"),
            "password": CANARY["password"],
            "username": "postgres",
            "custom_config": {
                "connection_string": f"postgresql://postgres:{CANARY['dsn_userinfo']}@{local}:5432/test"
            },
        },
        {
            **base,
            "service_type": "postgresql",
            "service_name": name("pg_query"),
            "custom_config": {
                "connection_string": f"postgresql://postgres@{local}:5432/test?password={CANARY['dsn_query']}"
                f"&sslpassword={CANARY['dsn_sslpassword']}&sslmode=disable"
            },
        },
        {
            **base,
            "service_type": "postgresql",
            "service_name": name("pg_keyword"),
            "custom_config": {
                "connection_string": f"host={local} port=5432 user=postgres password={CANARY['keyword_dsn']}"
                " dbname=test"
            },
        },
        {
            **base,
            "service_type": "postgresql",
            "service_name": name("pg_keyword_quoted"),
            "custom_config": {
                "connection_string": f"host={local} password = 'two words {CANARY['keyword_dsn_quoted']}'"
            },
        },
        {
            **base,
            "service_type": "redis",
            "service_name": name("redis"),
            "custom_config": {"url": f"redis://scf:{CANARY['redis_url']}@{local}:1/0"},
        },
        {
            **base,
            "service_type": "rabbitmq",
            "service_name": name("rabbit"),
            "custom_config": {"url": f"amqp://guest:{CANARY['amqp_url']}@{local}:1/"},
        },
        {
            **base,
            "service_type": "minio",
            "service_name": name("minio"),
            "custom_config": {
                "endpoint": f"{local}:1",
                "access_key": CANARY["minio_access"],
                "secret_key": CANARY["minio_secret"],
                "session_token": CANARY["minio_session"],
                "bucket_name": "canary-bucket",
            },
        },
        {
            **base,
            "service_type": "elasticsearch",
            "service_name": name("es"),
            "host": local,
            "port": 1,
            "custom_config": {"api_key": CANARY["es_api_key"]},
        },
        {
            **base,
            "service_type": "qdrant",
            "service_name": name("qdrant"),
            "custom_config": {
                "url": f"http://{local}:1/?api_key={CANARY['qdrant_url_query']}",
                "api_key": CANARY["qdrant_api_key"],
            },
        },
        {
            **base,
            "service_type": "api",
            "service_name": name("api_headers"),
            "custom_config": {
                "base_url": f"http://{local}:1",
                "headers": {
                    "Accept": "application/json",
                    "X-Auth": CANARY["header_x_auth"],
                    "X-Vault-Key": CANARY["header_vault"],
                    "Signature": CANARY["header_signature"],
                },
                "auth": {"type": "bearer", "token": CANARY["bearer_token"]},
            },
        },
        {**base, "service_type": "csv", "service_name": name("csv")},
        {
            **base,
            "service_type": "api",
            "service_name": name("api_oauth"),
            "custom_config": {
                "base_url": f"http://{local}:1",
                "auth": {
                    "type": "oauth2_client_credentials",
                    "token_url": f"http://{local}:1/token?client_assertion={CANARY['oauth_token_url']}",
                    "client_id": "scf",
                    "client_secret": CANARY["oauth_secret"],
                },
            },
        },
    ]


#: Configurations that must be refused (typed INVALID_CONFIG) without echoing the secret they carry.
REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("pg_dsn_too_long", {"service_type": "postgresql", "custom_config": {"connection_string": "x" * 9000}}),
    ("redis_wrong_scheme", {"service_type": "redis", "custom_config": {"url": "http://u:{c}@h:1"}}),
    ("amqp_query", {"service_type": "rabbitmq", "custom_config": {"url": "amqp://u@h:1/v?password={c}"}}),
    (
        "header_line_break",
        {
            "service_type": "api",
            "custom_config": {"base_url": "http://h:1", "headers": {"X-Auth": "{c}\r\nX: y"}},
        },
    ),
    ("header_without_origin", {"service_type": "api", "custom_config": {"headers": {"X-Vault-Key": "{c}"}}}),
    ("minio_half_pair", {"service_type": "minio", "host": "h", "custom_config": {"access_key": "{c}"}}),
    (
        "es_node_userinfo",
        {"service_type": "elasticsearch", "custom_config": {"hosts": ["http://u:{c}@h:9200"]}},
    ),
    ("qdrant_userinfo", {"service_type": "qdrant", "custom_config": {"url": "http://u:{c}@h:6333"}}),
    ("unknown_key", {"service_type": "postgresql", "host": "h", "custom_config": {"sslpassword": "{c}"}}),
]


def _fill(value: Any, canary: str) -> Any:
    if isinstance(value, str):
        return value.replace("{c}", canary).replace("x" * 9000, ("x" * 8990) + canary)
    if isinstance(value, dict):
        return {k: _fill(v, canary) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, canary) for v in value]
    return value


@dataclass
class Seen:
    """Every reply body the fleet and the gateway gave during the session, as JSON text."""

    replies: list[str] = field(default_factory=list)

    def add(self, reply: Any) -> Any:
        self.replies.append(json.dumps(reply, default=str))
        return reply


async def _call(client: FleetClient, seen: Seen, message_type: MessageType, body: dict[str, Any]) -> Any:
    return seen.add(await client.rpc.call(message_type, body, timeout=60))


@pytest.fixture(scope="module")
async def seen(client: FleetClient, gateway_url: str) -> AsyncIterator[Seen]:
    """Create every canary connector, drive every reply that shows a config or an error, keep the replies."""
    seen = Seen()
    configs = connectors()
    for config in configs:
        reply = await _call(client, seen, MessageType.CONNECTOR_CREATE, config)
        assert reply.get("status") != "failed", reply
    for config in configs:
        target = {"service_name": config["service_name"]}
        for message_type in (
            MessageType.CONNECTOR_GET,
            MessageType.CONNECTOR_TEST,
            MessageType.CONNECTOR_STATUS,
            MessageType.CONNECTOR_METRICS,
        ):
            await _call(client, seen, message_type, target)
    await _call(client, seen, MessageType.CONNECTOR_UPDATE, {**configs[2], "connection_timeout": 4})
    await _call(client, seen, MessageType.CONNECTOR_LIST, {})
    await _call(client, seen, MessageType.FLEET_METRICS, {})
    operations: list[tuple[str, dict[str, Any]]] = [
        (name("pg_keyword"), {"operation": "query", "data": {"query": "SELECT 1"}}),
        (name("pg_query"), {"operation": "query", "data": {"query": "SELECT 1/0"}}),
        (name("redis"), {"operation": "get", "data": {"key": "k"}}),
        (name("api_headers"), {"operation": "preview", "data": {"api_endpoint": "/x"}}),
        (name("api_oauth"), {"operation": "preview", "data": {"api_endpoint": "/x"}}),
        (name("minio"), {"operation": "list_buckets"}),
        (
            name("csv"),
            {
                "operation": "preview",
                "data": {
                    "url": f"http://scf:{CANARY['url_source_userinfo']}@127.0.0.1:1/f.csv"
                    f"?token={CANARY['url_source_query']}"
                },
            },
        ),
    ]
    for service, request in operations:
        result = await client.execute_operation(service, {**request, "timeout": 20}, timeout=20)
        seen.add(result.model_dump(mode="json"))
        assert result.status == "failed", (service, result)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as http:
        gw = [
            {
                "service_type": "postgresql",
                "service_name": name("gw_pg"),
                "test_on_create": False,
                "custom_config": {"connection_string": f"host=127.0.0.1 password={CANARY['gw_keyword_dsn']}"},
            },
            {
                "service_type": "api",
                "service_name": name("gw_api"),
                "test_on_create": False,
                "custom_config": {
                    "base_url": "http://127.0.0.1:1",
                    "headers": {"X-Auth": CANARY["gw_header"]},
                },
            },
        ]
        for body in gw:
            response = await http.post("/connectors", json=body)
            assert response.status_code == 201, response.text
            seen.add(response.text)
        update = {
            **gw[0],
            "custom_config": {"connection_string": f"postgresql://u@h/d?password={CANARY['gw_update']}"},
        }
        seen.add((await http.put(f"/connectors/{name('gw_pg')}", json=update)).text)
        for path in ["/connectors", f"/connectors/{name('gw_pg')}", f"/connectors/{name('gw_api')}"]:
            seen.add((await http.get(path)).text)
        for body in gw:
            for suffix in ["/test", "/status", "/metrics"]:
                method = http.post if suffix == "/test" else http.get
                seen.add((await method(f"/connectors/{body['service_name']}{suffix}")).text)
        seen.add((await http.get("/metrics")).text)
    yield seen


async def test_no_reply_shows_a_canary(seen: Seen) -> None:
    assert len(seen.replies) > 60
    leaked = {p for reply in seen.replies for p in leaks(reply)}
    assert not leaked, f"replies carried the canaries of {sorted(leaked)}"


@pytest.mark.parametrize(("case", "config"), REFUSED, ids=[c for c, _ in REFUSED])
async def test_a_refused_config_is_typed_and_never_echoes_its_secret(
    client: FleetClient, gateway_url: str, case: str, config: dict[str, Any]
) -> None:
    canary = f"{CANARY['refused']}{case.replace('_', '')}"
    body = _fill({"service_name": name(f"bad_{case}"), "test_on_create": False, **config}, canary)
    reply = await client.rpc.call(MessageType.CONNECTOR_CREATE, body, timeout=30)
    assert reply.get("status") == "failed" and reply["error"]["code"] == "INVALID_CONFIG", reply
    assert canary not in json.dumps(reply)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        response = await http.post("/connectors", json=body)
        assert response.status_code in (400, 422), response.text
        assert canary not in response.text
        validated = await http.post(f"/connector-types/{config['service_type']}/validate", json=body)
        assert canary not in validated.text
    # the fleet still answers a normal request right after
    listed = await client.list_connectors()
    assert any(c.service_name == name("pg_userinfo") for c in listed)


async def test_no_log_line_shows_a_canary(seen: Seen, fleet: dict[str, FleetProcess], logs: Path) -> None:
    files = sorted(logs.glob("*.log"))
    assert {"dispatcher.log", "worker.log", "gateway.log"} <= {f.name for f in files}
    leaked = {p: f.name for f in files for p in leaks(f.read_text(errors="replace"))}
    assert not leaked, f"log files carried canaries: {leaked}"


async def _values(client: aioredis.Redis) -> AsyncIterator[tuple[str, str]]:
    """Every (key, value) of the session's Redis database, whatever the key's type."""
    async for key in client.scan_iter(count=500):
        kind = _text(await client.type(key))
        values: list[Any] = []
        if kind == "string":
            values = [await client.get(key)]
        elif kind == "hash":
            values = [f"{k!r}={v!r}" for k, v in (await client.hgetall(key)).items()]
        elif kind == "list":
            values = list(await client.lrange(key, 0, -1))
        elif kind == "set":
            values = list(await client.smembers(key))
        elif kind == "zset":
            values = list(await client.zrange(key, 0, -1))
        elif kind == "stream":
            values = [repr(await client.xrange(key))]
        for value in values:
            yield _text(key), _text(value)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


async def test_no_redis_value_holds_a_canary_in_clear(seen: Seen, redis_url: str) -> None:
    state = aioredis.Redis.from_url(redis_url)
    try:
        found = {p: key for key, value in [kv async for kv in _values(state)] for p in leaks(value)}
        sealed = await state.hget(f"scf:connector:{name('pg_keyword')}", "sealed")
    finally:
        await state.aclose()
    assert sealed, "the registry entry was not found where expected (scf/fleet/keys.py)"
    assert not found, f"Redis values carried canaries: {found}"


async def test_no_dead_letter_shows_a_canary(client: FleetClient, vhost: Vhost, seen: Seen) -> None:
    """A create without a reply queue that fails (the name exists) is kept as a dead letter, masked."""
    secret = CANARY["dead_letter"]
    body = {
        "service_type": "postgresql",
        "service_name": name("pg_userinfo"),
        "test_on_create": False,
        "custom_config": {"connection_string": f"host=h sslpassword={secret}"},
    }
    message_id = f"dl_create_{RUN}"
    connection = await aio_pika.connect_robust(vhost.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.REQUEST_EXCHANGE)
        message = aio_pika.Message(
            json.dumps(body).encode(),
            type=MessageType.CONNECTOR_CREATE.value,
            content_type="application/json",
            message_id=message_id,
        )
        await exchange.publish(message, topology.REQUEST_ROUTING_KEY)
    finally:
        await connection.close()
    letters: list[Any] = []
    for _ in range(100):
        page = await client.dead_letters(limit=100)
        letters = [d for d in page.dead_letters if d.operation_id == message_id]
        if letters:
            break
        await asyncio.sleep(0.1)
    assert letters, "the refused create was not kept as a dead letter"
    shown = json.dumps(
        [d.model_dump(mode="json") for d in (await client.dead_letters(limit=100)).dead_letters]
    )
    assert not leaks(shown), f"dead letters carried canaries: {leaks(shown)}"


# --- timing guards: the masking parsers see untrusted text ------------------------------------------

WORST_CASES: dict[str, Callable[[int], str]] = {
    "keyword_pairs": lambda n: "k=v " * (n // 4),
    "quoted_escapes": lambda n: "password='" + "\\'" * (n // 2),
    "query_pieces": lambda n: "postgresql://h/?" + "password=x&" * (n // 11),
    "at_signs": lambda n: "postgresql://" + "u:" + "@" * n,
    "colons": lambda n: "redis://" + ":" * n + "@h",
    "schemes": lambda n: "://" * (n // 3),
    "separators": lambda n: "http://h/?" + "#;&" * (n // 3),
    "letters": lambda n: "a" * n,
    "letters_then_scheme": lambda n: " " + "a" * n + "://u:p@h",
    "keyword_with_urls": lambda n: "password=x " + "o=a://b " * (n // 8),
}


@pytest.mark.parametrize("kind", sorted(WORST_CASES))
def test_dsn_masking_is_linear_and_bounded(kind: str) -> None:
    make = WORST_CASES[kind]
    small, capped, huge = make(1024), make(MAX_DSN_CHARS - 64)[:MAX_DSN_CHARS], make(1024 * 1024)
    base = best_of(5, lambda: mask_dsn(small))
    assert best_of(3, lambda: mask_dsn(capped)) < max(base, 1e-5) * 2000
    huge_time = best_of(3, lambda: mask_dsn(huge))
    assert huge_time < max(base, 1e-5) * 2000 and huge_time < 2.0
    for text in (capped, huge):
        assert mask_dsn(text) == MASK or "secret" not in mask_dsn(text + " password=secret")


def test_public_view_of_a_megabyte_config_is_bounded() -> None:
    """Header values and JWT claims have no length cap: masking must not scan them, whatever they hold."""

    def config(size: int) -> ServiceConnection:
        filler = "://" * (size // 6)
        auth = {"type": "jwt", "secret": "s" * 32, "claims": {"note": filler, "more": [filler]}}
        headers = {f"X-H{i}": "a" * (size // 128) for i in range(64)}
        custom = {"base_url": "https://h", "headers": headers, "auth": auth}
        return ServiceConnection.parse({"service_type": "api", "service_name": "t", "custom_config": custom})

    small, big = config(1024), config(1024 * 1024)
    base = best_of(5, small.public_view)
    took = best_of(3, big.public_view)
    assert took < max(base, 1e-4) * 2000 and took < 3.0
