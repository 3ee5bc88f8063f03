"""Scenario 7: 50 poison messages mixed into 1,000 good keyed inserts.

Poison is what no well-behaved client sends: malformed or non-object JSON, the wrong content type, an
unknown message type, unknown fields, an unknown connector, a record with a column that does not exist
or a value of the wrong type, and bodies published straight into the work queue that are not envelopes.
Sent with a reply queue, each must get exactly one typed error reply; sent without one, each must end as
exactly one dead letter (`failed_without_reply`) and nothing else. The good load must not notice, and
no fleet process may die.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest

from scf.fleet import amqp
from scf.fleet.client import FleetClient
from scf.schemas.dead_letters import DeadLetter
from tests.faults.conftest import SERVICE, TABLE, Stack
from tests.faults.harness import Load, check, dead_letter_ids, effects, settle_missing
from tests.faults.raw import CountingRpcClient, failed_code, fleet_alive, publish_without_reply

pytestmark = pytest.mark.faults

GOOD = 1000
WORK_EXCHANGE, WORK_KEY = "scf.ops", "postgresql"  # straight into `scf.ops.postgresql`
EXECUTE = "operation.execute"


@dataclass(frozen=True)
class Case:
    """One kind of poison; `build(message_id, run)` makes its body."""

    name: str
    build: Callable[[str, str], bytes]
    codes: frozenset[str]
    message_type: str = EXECUTE
    content_type: str = amqp.JSON
    to_work_queue: bool = False


@dataclass
class Poison:
    case: Case
    message_id: str
    with_reply: bool
    code: str | None = None  # the reply's error code (with_reply only)
    reply: dict[str, Any] = field(default_factory=dict)
    during_load: bool = False


def _request(message_id: str, run: str, **changes: Any) -> bytes:
    body: dict[str, Any] = {
        "service_name": SERVICE,
        "operation": "insert",
        "operation_id": message_id,
        "data": {"table_name": TABLE, "records": [{"req": 1, "run": run}]},
        "timeout": 20,
    }
    body.update(changes)
    return json.dumps(body).encode()


def _records(*records: dict[str, Any]) -> dict[str, Any]:
    return {"table_name": TABLE, "records": list(records)}


def _codes(*codes: str) -> frozenset[str]:
    return frozenset(codes)


CASES: list[Case] = [
    Case("truncated_json", lambda m, r: _request(m, r)[:40], _codes("INVALID_JSON")),
    Case("invalid_utf8", lambda m, r: b"\xff\xfe{\x00garbage", _codes("INVALID_JSON")),
    Case("empty_body", lambda m, r: b"", _codes("INVALID_JSON")),
    Case("array_body", lambda m, r: b"[1, 2, 3]", _codes("INVALID_REQUEST")),
    Case("string_body", lambda m, r: b'"insert please"', _codes("INVALID_REQUEST")),
    Case("null_body", lambda m, r: b"null", _codes("INVALID_REQUEST")),
    Case("text_plain", _request, _codes("INVALID_REQUEST"), content_type="text/plain"),
    Case("xml", lambda m, r: b"<insert/>", _codes("INVALID_REQUEST"), content_type="application/xml"),
    Case("unknown_type", _request, _codes("UNKNOWN_MESSAGE_TYPE"), message_type="operation.explode"),
    Case("empty_type", _request, _codes("UNKNOWN_MESSAGE_TYPE"), message_type=""),
    Case("unknown_field", lambda m, r: _request(m, r, bogus_field=1), _codes("INVALID_REQUEST")),
    Case("data_not_object", lambda m, r: _request(m, r, data="rows"), _codes("INVALID_REQUEST")),
    Case(
        "unknown_connector",
        lambda m, r: _request(m, r, service_name="no_such_connector"),
        _codes("CONNECTOR_NOT_FOUND"),
    ),
    Case("unknown_operation", lambda m, r: _request(m, r, operation="explode"), _codes("UNKNOWN_OPERATION")),
    Case(
        "unknown_column",
        lambda m, r: _request(m, r, data=_records({"req": 1, "run": r, "no_such_column": 5})),
        _codes("INVALID_IDENTIFIER"),
    ),
    Case(
        "wrong_value_type",
        lambda m, r: _request(m, r, data=_records({"req": "not a number", "run": r})),
        _codes("INVALID_DATA"),
    ),
    Case("control_bad_body", lambda m, r: b"[]", _codes("INVALID_REQUEST"), message_type="connector.get"),
    Case("envelope_not_json", lambda m, r: b"not an envelope", _codes("INVALID_REQUEST"), to_work_queue=True),
    Case(
        "envelope_wrong_shape",
        lambda m, r: b'{"request": {"operation": "insert"}, "service_type": "postgresql"}',
        _codes("INVALID_REQUEST"),
        to_work_queue=True,
    ),
    Case("envelope_array", lambda m, r: b"[[[]]]", _codes("INVALID_REQUEST"), to_work_queue=True),
]


def poison_plan(run: str) -> list[Poison]:
    """50 poison messages: every case with a reply queue (and the first ten twice), every case without."""
    with_reply = [*CASES, *CASES[:10]]
    plan = [Poison(c, f"poison_{run}_r{i}_{c.name}", True) for i, c in enumerate(with_reply)]
    plan += [Poison(c, f"poison_{run}_n{i}_{c.name}", False) for i, c in enumerate(CASES)]
    random.Random(7).shuffle(plan)
    return plan


@pytest.fixture
async def counting(fleet: Stack) -> AsyncIterator[CountingRpcClient]:
    rpc = await CountingRpcClient.open(fleet.amqp_url)
    try:
        yield rpc
    finally:
        await rpc.close()


@pytest.fixture
async def publisher(fleet: Stack) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await amqp.connect(fleet.amqp_url, "scf-fault-poison-publisher")
    try:
        yield await amqp.open_channel(connection)
    finally:
        await connection.close()


async def send_poison(
    poison: Poison, run: str, rpc: CountingRpcClient, channel: aio_pika.abc.AbstractChannel
) -> None:
    case = poison.case
    exchange, key = (WORK_EXCHANGE, WORK_KEY) if case.to_work_queue else ("scf", "requests")
    body = case.build(poison.message_id, run)
    if not poison.with_reply:
        await publish_without_reply(
            channel,
            body,
            message_type=case.message_type,
            message_id=poison.message_id,
            content_type=case.content_type,
            exchange=exchange,
            routing_key=key,
        )
        return
    poison.reply = await rpc.call_raw(
        case.message_type,
        body,
        timeout=30,
        exchange=exchange,
        routing_key=key,
        message_id=poison.message_id,
        content_type=case.content_type,
    )
    poison.code = failed_code(poison.reply)


async def dead_letters_for(client: FleetClient, wanted: set[str], wait: float = 30.0) -> list[DeadLetter]:
    """All dead letters, polled until every wanted operation id is among them (or `wait` passed)."""
    deadline = time.monotonic() + wait
    while True:
        letters = (await client.dead_letters(limit=1000)).dead_letters
        if wanted <= {d.operation_id for d in letters} or time.monotonic() > deadline:
            return letters
        await asyncio.sleep(0.5)


@pytest.mark.timeout(150)
async def test_poison_among_good_requests_gets_one_typed_outcome_each(
    fleet: Stack,
    client: FleetClient,
    counting: CountingRpcClient,
    publisher: aio_pika.abc.AbstractChannel,
) -> None:
    started = time.monotonic()
    poison_run = f"poison_{uuid.uuid4().hex[:6]}"
    plan = poison_plan(poison_run)
    load = Load(client, SERVICE, TABLE, keyed=True, timeout=30)
    running = asyncio.ensure_future(load.run(GOOD, concurrency=16))
    calls: list[asyncio.Task[None]] = []
    await asyncio.sleep(0.3)  # the good load is flowing before the first poison arrives
    for poison in plan:
        poison.during_load = not running.done()
        calls.append(asyncio.create_task(send_poison(poison, poison_run, counting, publisher)))
        await asyncio.sleep(0.05)
    await asyncio.gather(*calls)
    await running
    await settle_missing(client, load.sent)

    no_reply = {p.message_id for p in plan if not p.with_reply}
    letters = await dead_letters_for(client, no_reply)
    await asyncio.sleep(1.0)  # late duplicates (a second reply or dead letter) would arrive by now
    letters = (await client.dead_letters(limit=1000)).dead_letters
    verdict = check(
        load.sent, await effects(fleet.postgres.dsn, TABLE, load.run_id), await dead_letter_ids(client)
    )
    poison_rows = await effects(fleet.postgres.dsn, TABLE, poison_run)
    alive = fleet_alive(fleet)

    with_reply = [p for p in plan if p.with_reply]
    wrong = {p.message_id: (p.code, sorted(p.case.codes)) for p in with_reply if p.code not in p.case.codes}
    wrong_id = [
        p.message_id
        for p in with_reply
        if "operation_id" in p.reply and p.reply["operation_id"] != p.message_id
    ]
    lettered = Counter(d.operation_id or "none" for d in letters)
    reasons = Counter(d.reason.value for d in letters)
    print(
        f"\npoison: good {verdict.summary()}; poison {len(plan)} ({sum(p.during_load for p in plan)} "
        f"during the load): {len(with_reply)} with reply -> replies "
        f"{dict(Counter(p.code or 'none' for p in with_reply))}, duplicated replies {counting.duplicated()}; "
        f"{len(no_reply)} without reply -> dead letters {sum(lettered[m] for m in no_reply)} "
        f"(all letters {len(letters)}, reasons {dict(reasons)}); poison rows {sum(poison_rows.values())}; "
        f"fleet alive {alive}; {time.monotonic() - started:.1f}s"
    )
    assert (verdict.lost, verdict.duplicated, verdict.unexpected) == ([], [], [])
    assert len(verdict.ok) == GOOD
    assert wrong == {}
    assert wrong_id == []
    assert sum(counting.replies.values()) == len(with_reply)
    assert counting.duplicated() == 0
    assert lettered == Counter(no_reply), "the dead letters must be exactly the no-reply poison, once each"
    assert set(reasons) == {"failed_without_reply"}
    assert not poison_rows
    assert all(alive.values()), alive


@pytest.mark.timeout(60)
async def test_unreadable_connection_test_in_work_queue_without_reply_is_dead_lettered(
    fleet: Stack, client: FleetClient, publisher: aio_pika.abc.AbstractChannel
) -> None:
    message_id = f"poison_check_{uuid.uuid4().hex[:6]}"
    await publish_without_reply(
        publisher,
        b"not a check envelope",
        message_type="connector.test",
        message_id=message_id,
        exchange=WORK_EXCHANGE,
        routing_key=WORK_KEY,
    )
    letters = await dead_letters_for(client, {message_id}, wait=10)
    found = [d for d in letters if d.operation_id == message_id]
    print(f"\npoison connector.test without reply in the work queue: dead letters {len(found)}")
    assert len(found) == 1


@pytest.mark.timeout(60)
async def test_deeply_nested_poison_without_reply_is_dead_lettered_and_the_desk_keeps_going(
    fleet: Stack, client: FleetClient, counting: CountingRpcClient, publisher: aio_pika.abc.AbstractChannel
) -> None:
    """JSON nested past Python's recursion limit: one typed reply, or one dead letter; then business as usual.

    Sixteen of them (the dead-letter desk's prefetch) are followed by one ordinary no-reply poison, which
    must still become a dead letter.
    """
    deep = b"[" * 100_000 + b"]" * 100_000
    run = uuid.uuid4().hex[:6]
    reply = await counting.call_raw(EXECUTE, deep, timeout=20, message_id=f"poison_deep_{run}_r")
    deep_ids = [f"poison_deep_{run}_n{i}" for i in range(16)]
    for message_id in deep_ids:
        await publish_without_reply(publisher, deep, message_type=EXECUTE, message_id=message_id)
    plain_id = f"poison_plain_{run}"
    await publish_without_reply(publisher, b"[1, 2, 3]", message_type=EXECUTE, message_id=plain_id)
    letters = await dead_letters_for(client, {*deep_ids, plain_id}, wait=15)
    found = Counter(d.operation_id for d in letters)
    print(
        f"\ndeep poison: reply {failed_code(reply)}; "
        f"dead letters of 16 deep {sum(found[m] for m in deep_ids)}, "
        f"of the plain one after them {found[plain_id]}; fleet alive {fleet_alive(fleet)}"
    )
    assert failed_code(reply) == "INVALID_JSON"
    assert [found[m] for m in deep_ids] == [1] * 16
    assert found[plain_id] == 1
