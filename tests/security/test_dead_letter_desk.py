"""Hostile dead letters: anyone may publish to `scf.dlx`, and the desk must settle and keep every one.

Each case of the corpus is published straight to `scf.dlx` on the session fleet. Every one must be
stored (found by `dlq.list`), settled (nothing left ready or unacked in `scf.dead`), shown bounded, with
no canary secret in the listing, the stored Redis values or the dispatcher's log; and the fleet must
answer a normal request right after. The regression (issue 11, item 2): a lone surrogate made storing
raise, the message stayed unacked, and after 16 of them (the desk's prefetch) nothing was stored at all.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
import redis.asyncio as aioredis

from scf.fleet.client import FleetClient
from scf.schemas import topology
from scf.schemas.dead_letters import DeadLetter
from scf.schemas.secrets import MASK
from tests.security.amqp_raw import queue_stats
from tests.support.fleet import FleetProcess
from tests.support.services import Vhost

pytestmark = pytest.mark.integration

CANARY = "desk-canary-51c9"
TOO_BIG = {"truncated": True}
SHOWN_HEADER_BOUND = 2048  # characters of one shown header value (the desk cuts them at 1 KiB)


@dataclass
class Case:
    name: str
    body: bytes = b"{}"
    headers: dict[str, Any] = field(default_factory=dict)
    shown_body: Any = None  # what `body` must be shown as (None: anything bounded)


def deep_header(levels: int) -> dict[str, Any]:
    table: dict[str, Any] = {"leaf": "x"}
    for _ in range(levels):
        table = {"t": table}
    return table


ERROR_WITH_SURROGATE = '{"category":"permanent","code":"X","message":"bad \\ud800 text","retryable":false}'
CORPUS = [
    Case(
        "lone surrogate in the body",
        b'{"request": {"data": "\\ud800"}}',
        shown_body={"request": {"data": "?"}},
    ),
    Case("lone surrogates in the ids", b'{"request": {"service_name": "s\\udfff", "operation": "x\\ud800"}}'),
    Case("lone surrogate in the recorded error", headers={topology.DEAD_ERROR_HEADER: ERROR_WITH_SURROGATE}),
    Case("invalid UTF-8 header bytes", headers={"x-scf-origin-exchange": bytearray(b"\xff\xfe\xfd")}),
    Case("invalid UTF-8 body", b"\xff\xfe{\x00", shown_body="\ufffd\ufffd{\x00"),
    Case("empty body", b"", shown_body=""),
    Case("nesting past the recursion limit", b"[" * 200_000),
    Case("wide object", json.dumps({f"k{i}": "a://b:" for i in range(12_000)}).encode(), shown_body=TOO_BIG),
    Case(
        "one MB of letter runs", json.dumps({"q": ("a" * 40_000 + " ://") * 26}).encode(), shown_body=TOO_BIG
    ),
    Case("binary with a URL password", b"\x00\x01 amqp://u:" + CANARY.encode() + b"@h \xff"),
    Case(
        "canaries in every secret position",
        json.dumps(
            {
                "request": {
                    "service_name": "desk_victim",
                    "data": {"password": CANARY, "dsn": f"postgresql://u:{CANARY}@h/db", "ok": "kept"},
                }
            }
        ).encode(),
        headers={
            "authorization": f"Bearer {CANARY}",
            "X-Vault-Key": CANARY,
            "x-scf-origin-routing-key": f"amqp://u:{CANARY}@h/",
        },
    ),
    Case("a header value of 100 KB", headers={"x-scf-origin-exchange": "a" * 100_000}),
    Case("junk x-death", headers={"x-death": ["junk", 7]}),
    Case(
        "odd x-death record",
        headers={"x-death": [{"reason": {"a": [1]}, "count": "many", "routing-keys": 5}]},
    ),
    Case("header tables nested deep", headers={"x-scf-deep": deep_header(40)}),
    Case(
        "unknown reason and attempts", headers={topology.DEAD_REASON_HEADER: "x" * 200, "x-scf-attempts": "2"}
    ),
]


@pytest.fixture
async def channel(
    fleet: dict[str, FleetProcess], vhost: Vhost
) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect_robust(vhost.amqp_url)
    try:
        yield await connection.channel(publisher_confirms=True)
    finally:
        await connection.close()


async def publish(channel: aio_pika.abc.AbstractChannel, case: Case, message_id: str) -> None:
    exchange = await channel.get_exchange(topology.DEAD_LETTER_EXCHANGE)
    message = aio_pika.Message(
        case.body, type="operation.execute", message_id=message_id, headers=case.headers
    )
    await exchange.publish(message, routing_key="")


async def stored(client: FleetClient, wanted: set[str], within: float = 60) -> dict[str, DeadLetter]:
    """The letters stored under the wanted message ids, polled until all are there (bounded)."""
    deadline = time.monotonic() + within
    while True:
        page = await client.dead_letters(limit=500)
        found = {d.operation_id or "": d for d in page.dead_letters if d.operation_id in wanted}
        if set(found) == wanted or time.monotonic() > deadline:
            assert set(found) == wanted, f"missing: {sorted(wanted - set(found))}"
            return found
        await asyncio.sleep(0.2)


def unsettled(vhost: Vhost) -> tuple[int, int]:
    """(ready, unacked) messages of `scf.dead`, as the broker counts them."""
    stats = queue_stats(vhost)
    assert topology.DEAD_LETTER_QUEUE in stats, f"{topology.DEAD_LETTER_QUEUE} not listed: {stats}"
    return stats[topology.DEAD_LETTER_QUEUE]


async def settled(vhost: Vhost, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while (counts := unsettled(vhost)) != (0, 0) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert counts == (0, 0), f"scf.dead still holds (ready, unacked) = {counts}"


async def redis_values(redis_url: str) -> str:
    client = aioredis.Redis.from_url(redis_url)
    try:
        shown = [k async for k in client.scan_iter("scf:dead:*") if not k.endswith(b":sealed")]
        values = [v for v in await client.mget(shown) if isinstance(v, bytes)] if shown else []
        return b"".join(values).decode("utf-8", "replace")
    finally:
        await client.aclose()


async def test_more_undescribable_letters_than_the_prefetch_are_all_stored_and_settled(
    client: FleetClient, channel: aio_pika.abc.AbstractChannel, vhost: Vhost
) -> None:
    poison = Case("surrogate", b'{"request": {"data": "\\ud800", "more": ["\\udfff"]}}')
    ids = {f"surrogate-{uuid.uuid4().hex[:8]}-{i}" for i in range(20)}  # the desk's prefetch is 16
    for message_id in ids:
        await publish(channel, poison, message_id)
    normal = f"normal-{uuid.uuid4().hex[:8]}"
    await publish(channel, Case("normal", b'{"request": {"data": "fine"}}'), normal)

    letters = await stored(client, {*ids, normal})

    assert letters[normal].body == {"request": {"data": "fine"}}
    assert all(letters[i].body == {"request": {"data": "?", "more": ["?"]}} for i in ids)
    await settled(vhost)
    assert await client.list_connectors() is not None


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
async def test_each_hostile_dead_letter_is_stored_bounded_and_settled(
    case: Case,
    client: FleetClient,
    channel: aio_pika.abc.AbstractChannel,
    vhost: Vhost,
    redis_url: str,
    fleet: dict[str, FleetProcess],
) -> None:
    message_id = f"hostile-{uuid.uuid4().hex[:12]}"
    await publish(channel, case, message_id)

    letter = (await stored(client, {message_id}))[message_id]

    shown = letter.model_dump_json()
    assert len(shown) < 64 * 1024
    if case.shown_body is TOO_BIG:
        assert letter.body == {"truncated": True, "bytes": len(case.body)}
    elif case.shown_body is not None:
        assert letter.body == case.shown_body
    assert all(len(json.dumps(v)) < SHOWN_HEADER_BOUND for v in letter.headers.values())
    if "X-Vault-Key" in case.headers:
        assert letter.headers["X-Vault-Key"] == MASK and letter.body["request"]["data"]["ok"] == "kept"
    assert CANARY not in shown
    assert CANARY not in await redis_values(redis_url)
    assert CANARY not in fleet["dispatcher"].output()
    await settled(vhost)
    assert await client.list_connectors() is not None  # the fleet still answers right after
