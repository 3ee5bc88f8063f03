"""Hostile AMQP envelopes, published raw to `scf`/`requests` and straight to `scf.ops` (which anyone may).

Each case asserts one typed refusal (or, without a reply queue, a bounded effect: a dead letter or a
counted drop), that no fleet consumer is left holding a message unacked (queue statistics from the
broker), and that the fleet answers a normal request right after.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis

from scf.fleet import keys
from scf.fleet.client import FleetClient
from scf.schemas import topology
from scf.schemas.errors import ErrorCode
from tests.security.amqp_raw import RawAmqp, raw_amqp, wait_settled
from tests.support.fleet import FleetProcess
from tests.support.services import Vhost

pytestmark = pytest.mark.integration

SERVICE = f"sec_pg_{uuid.uuid4().hex[:8]}"
SURROGATE = "\\ud800"  # as a JSON escape: valid JSON, an unencodable str once decoded


@pytest.fixture(scope="module")
async def service(client: FleetClient) -> AsyncIterator[str]:
    """A PostgreSQL connector that only ever runs `SELECT` of constants (touches no table)."""
    await client.create_connector(
        {
            "service_type": "postgresql",
            "service_name": SERVICE,
            "host": "127.0.0.1",
            "port": 5432,
            "database": "test",
            "username": "postgres",
            "test_on_create": False,
            "custom_config": {"connection_pool_size": 1, "max_connections": 4},
        }
    )
    try:
        yield SERVICE
    finally:
        await client.delete_connector(SERVICE)


@pytest.fixture
async def raw(vhost: Vhost) -> AsyncIterator[RawAmqp]:
    async with raw_amqp(vhost) as opened:
        yield opened


@pytest.fixture
async def state(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def still_serves(client: FleetClient, service: str) -> None:
    """A normal request is answered right after the hostile one, and so is `connector.list`."""
    result = await client.execute_operation(
        service, {"operation": "query", "parameters": {"query": "SELECT 1 AS one"}}
    )
    assert result.status == "success", result.error
    assert any(c.service_name == service for c in await client.list_connectors())


def envelope(service: str, request: dict[str, Any], service_type: str = "postgresql") -> dict[str, Any]:
    """What the dispatcher would forward to `scf.ops` (a raw publisher can write the same)."""
    return {
        "request": {"service_name": service, **request},
        "service_type": service_type,
        "connector_version": 1,
        "deadline": time.time() + 30,
    }


def code_of(reply: dict[str, Any]) -> str:
    assert reply.get("status") == "failed", reply
    return str(reply["error"]["code"])


# --- the corpus: raw requests on scf/requests, each with its one typed refusal ---------------------------


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes | Callable[[], bytes]  # a callable is built when sent (an envelope's deadline starts then)
    code: ErrorCode
    message_type: str | None = "operation.execute"
    props: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> bytes:
        return self.body() if callable(self.body) else self.body


def _query(**extra: Any) -> bytes:
    return json.dumps(
        {"service_name": SERVICE, "operation": "query", "parameters": {"query": "SELECT 1"}, **extra}
    ).encode()


def _deep(levels: int) -> bytes:
    return b'{"service_name":"x","operation":"query","data":{"a":' + b"[" * levels + b"]" * levels + b"}}"


CONNECTOR_WITH_SURROGATE = (
    '{"service_type":"api","service_name":"sec_bad_api","host":"127.0.0.1","test_on_create":false,'
    '"custom_config":{"base_url":"http://127.0.0.1:9/","headers":{"X-Trace":"' + SURROGATE + '"}}}'
).encode()
CONNECTOR_WITH_SURROGATE_KEY = (
    '{"service_type":"api","service_name":"sec_bad_api2","host":"127.0.0.1","test_on_create":false,'
    '"custom_config":{"base_url":"http://127.0.0.1:9/","headers":{"X-' + SURROGATE + '":"v"}}}'
).encode()

REQUEST_CORPUS = [
    Case(
        "surrogate in a custom_config header value",
        CONNECTOR_WITH_SURROGATE,
        ErrorCode.INVALID_REQUEST,
        "connector.create",
    ),
    Case(
        "surrogate in a custom_config header name",
        CONNECTOR_WITH_SURROGATE_KEY,
        ErrorCode.INVALID_REQUEST,
        "connector.create",
    ),
    Case(
        "surrogate deep in operation data",
        (
            '{"service_name":"'
            + SERVICE
            + '","operation":"query","parameters":{"query":"SELECT 1","p":[{"x":"a'
            + SURROGATE
            + 'b"}]}}'
        ).encode(),
        ErrorCode.INVALID_REQUEST,
    ),
    Case(
        "low surrogate alone",
        (b'{"service_name":"x","operation":"query","data":{"q":"\\uDC00"}}'),
        ErrorCode.INVALID_REQUEST,
    ),
    Case(
        "encoded surrogate bytes (CESU-8)",
        b'{"service_name":"x","operation":"q\xed\xa0\x80"}',
        ErrorCode.INVALID_JSON,
    ),
    Case("invalid UTF-8", b'{"service_name":"x\xff","operation":"query"}', ErrorCode.INVALID_JSON),
    Case("UTF-8 byte order mark", b"\xef\xbb\xbf" + _query(), ErrorCode.INVALID_JSON),
    Case("UTF-16 body", _query().decode().encode("utf-16"), ErrorCode.INVALID_JSON),
    Case("not JSON", b"service_name=x&operation=query", ErrorCode.INVALID_JSON),
    Case("empty body", b"", ErrorCode.INVALID_JSON),
    Case("JSON array", b"[1,2,3]", ErrorCode.INVALID_REQUEST),
    Case("JSON string", b'"operation.execute"', ErrorCode.INVALID_REQUEST),
    Case("nested past the limit", _deep(70), ErrorCode.LIMIT_EXCEEDED),
    Case("nested past the parser's recursion", _deep(200_000), ErrorCode.INVALID_JSON),
    Case(
        "over the size limit",
        b'{"service_name":"x","operation":"query","data":{"a":"' + b"a" * (16 * 1024 * 1024) + b'"}}',
        ErrorCode.LIMIT_EXCEEDED,
    ),
    Case("unknown message type", _query(), ErrorCode.UNKNOWN_MESSAGE_TYPE, "operation.exec"),
    Case("no message type", _query(), ErrorCode.UNKNOWN_MESSAGE_TYPE, None),
    Case("wrong content type", _query(), ErrorCode.INVALID_REQUEST, props={"content_type": "text/plain"}),
    Case(
        "service_name of the wrong type", b'{"service_name":7,"operation":"query"}', ErrorCode.INVALID_REQUEST
    ),
    Case("unknown top-level field", _query(admin=True), ErrorCode.INVALID_REQUEST),
    Case("operation_id with a newline", _query(operation_id="op\nforged"), ErrorCode.INVALID_REQUEST),
    Case("negative timeout", _query(timeout=-1), ErrorCode.INVALID_REQUEST),
    Case(
        "timeout of NaN", b'{"service_name":"x","operation":"query","timeout":NaN}', ErrorCode.INVALID_REQUEST
    ),
    Case(
        "cancel of an unknown operation",
        b'{"operation_id":"op_never_sent_' + uuid.uuid4().hex.encode() + b'"}',
        ErrorCode.NOT_FOUND,
        "operation.cancel",
    ),
    Case(
        "result of an unknown operation",
        b'{"operation_id":"op_nope"}',
        ErrorCode.RESULT_NOT_FOUND,
        "operation.result",
    ),
    Case(
        "get of a name with a surrogate",
        ('{"service_name":"a' + SURROGATE + '"}').encode(),
        ErrorCode.INVALID_REQUEST,
        "connector.get",
    ),
]


@pytest.mark.parametrize("case", REQUEST_CORPUS, ids=[c.name for c in REQUEST_CORPUS])
async def test_hostile_request_gets_one_typed_refusal(
    case: Case, raw: RawAmqp, client: FleetClient, service: str, vhost: Vhost
) -> None:
    reply = await raw.call(case.payload(), message_type=case.message_type, **case.props)

    assert code_of(reply) == case.code, reply
    await wait_settled(vhost)
    await still_serves(client, service)


# --- the same through scf.ops, straight to the workers ---------------------------------------------------

OPS_CORPUS = [
    Case(
        "surrogate in a forwarded request",
        json.dumps(envelope(SERVICE, {"operation": "query", "operation_id": "op_x", "data": {"q": "a"}}))
        .replace('"a"', '"' + SURROGATE + '"')
        .encode(),
        ErrorCode.INVALID_REQUEST,
    ),
    Case("not JSON", b"\x00\x01binary", ErrorCode.INVALID_REQUEST),
    Case("invalid UTF-8", b'{"request":"\xff"}', ErrorCode.INVALID_REQUEST),
    Case("a bare request, not an envelope", _query(operation_id="op_bare"), ErrorCode.INVALID_REQUEST),
    Case(
        "an envelope for a connector that does not exist",
        lambda: json.dumps(
            envelope(
                "sec_no_such_connector", {"operation": "query", "operation_id": f"op_{uuid.uuid4().hex}"}
            )
        ).encode(),
        ErrorCode.CONNECTOR_NOT_FOUND,
    ),
    Case(
        "a connection test that is garbage",
        b'{"service_name":[]}',
        ErrorCode.INVALID_REQUEST,
        "connector.test",
    ),
    Case(
        "a connection test with a surrogate",
        (
            '{"service_name":"'
            + SURROGATE
            + '","service_type":"postgresql","connector_version":1,"deadline":1e12}'
        ).encode(),
        ErrorCode.INVALID_REQUEST,
        "connector.test",
    ),
]


@pytest.mark.parametrize("case", OPS_CORPUS, ids=[c.name for c in OPS_CORPUS])
async def test_hostile_work_message_gets_one_typed_refusal(
    case: Case, raw: RawAmqp, client: FleetClient, service: str, vhost: Vhost
) -> None:
    reply = await raw.call(
        case.payload(),
        message_type=case.message_type,
        exchange=topology.OPS_EXCHANGE,
        routing_key="postgresql",
    )

    assert code_of(reply) == case.code, reply
    await wait_settled(vhost)
    await still_serves(client, service)


# --- item 2: one bad message, or one bad registry entry, must not break anyone else ---------------------


async def test_a_surrogate_in_a_connector_config_is_refused_and_the_list_still_works(
    raw: RawAmqp, client: FleetClient, service: str
) -> None:
    reply = await raw.call(CONNECTOR_WITH_SURROGATE, message_type="connector.create")

    assert code_of(reply) == ErrorCode.INVALID_REQUEST
    assert "X-Trace" in reply["error"]["message"]  # it says where
    names = [c.service_name for c in await client.list_connectors()]
    assert "sec_bad_api" not in names and service in names


async def test_an_unreadable_registry_entry_is_marked_not_a_failure_of_the_whole_list(
    client: FleetClient, service: str, state: aioredis.Redis
) -> None:
    """An entry stored before the edge refused such text (or written by hand) breaks nobody's list.

    The text sits in a safe header (`Accept`), which the registry's re-masking of old entries keeps as
    it is; a secret header's value would be masked away, leaving a readable entry.
    """
    name = f"sec_stored_bad_{uuid.uuid4().hex[:6]}"
    public = (
        '{"service_type":"api","service_name":"'
        + name
        + '","custom_config":{"headers":{"Accept":"'
        + SURROGATE
        + '"}}}'
    )
    await state.hset(
        keys.connector(name), mapping={"service_type": "api", "version": "1", "paused": "0", "public": public}
    )
    await state.sadd(keys.CONNECTORS_INDEX, name)
    try:
        listed = {c.service_name: c for c in await client.list_connectors()}
        got = await client.get_connector(name)
    finally:
        await state.delete(keys.connector(name))
        await state.srem(keys.CONNECTORS_INDEX, name)

    assert service in listed
    assert listed[name].config == {"unreadable": True}
    assert got.config == {"unreadable": True}


@pytest.mark.parametrize("route", ["requests", "ops"])
async def test_seventeen_poison_messages_without_a_reply_queue_leave_nothing_unacked(
    route: str, raw: RawAmqp, client: FleetClient, service: str, vhost: Vhost
) -> None:
    """More poison than `scf.dead`'s prefetch (16): every one is settled, and dead letters still flow."""
    marker = uuid.uuid4().hex[:8]
    for i in range(17):
        request = {"operation": "query", "operation_id": f"op_poison_{marker}_{i}", "data": {"q": "x"}}
        if route == "ops":
            body = json.dumps(envelope(service, request)).replace('"x"', '"' + SURROGATE + '"').encode()
            await raw.publish(
                body,
                message_type="operation.execute",
                exchange=topology.OPS_EXCHANGE,
                routing_key="postgresql",
                reply=False,
            )
        else:
            body = (
                json.dumps({"service_name": service, **request})
                .replace('"x"', '"' + SURROGATE + '"')
                .encode()
            )
            await raw.publish(body, message_type="operation.execute", reply=False)

    await wait_settled(vhost, timeout=30)
    # A plain refused request without a reply queue is still kept as a dead letter afterwards.
    plain = f"op_plain_{marker}"
    await raw.publish(
        json.dumps(
            {"service_name": "sec_no_such_connector", "operation": "query", "operation_id": plain}
        ).encode(),
        message_type="operation.execute",
        reply=False,
    )
    for _ in range(100):
        letters = await client.dead_letters(reason="failed_without_reply")
        if any(d.operation_id == plain for d in letters.dead_letters):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the dead-letter desk stopped storing dead letters")
    await wait_settled(vhost)
    await still_serves(client, service)


# --- item 7: operation ids belong to the request that first used them ----------------------------------


async def _run(raw: RawAmqp, service: str, operation_id: str, sql: str, **props: Any) -> dict[str, Any]:
    request = {"service_name": service, "operation": "query", "operation_id": operation_id}
    body = json.dumps({**request, "parameters": {"query": sql}}).encode()
    return await raw.call(body, message_type="operation.execute", **props)


async def test_a_second_request_with_an_operation_id_in_use_is_refused_and_cannot_overwrite_its_result(
    raw: RawAmqp, client: FleetClient, service: str, vhost: Vhost
) -> None:
    operation_id = f"op_victim_{uuid.uuid4().hex[:8]}"
    first = await _run(raw, service, operation_id, "SELECT 'mine' AS owner")
    assert first["status"] == "success", first

    second = await _run(raw, service, operation_id, "SELECT 'theirs' AS owner")
    # ... and without a reply queue (a dead letter would record its failure under the id), and
    # refused at the dispatcher (a connector that does not exist) without a reply queue either.
    body = json.dumps(
        {
            "service_name": service,
            "operation": "query",
            "operation_id": operation_id,
            "parameters": {"query": "SELECT 2"},
        }
    ).encode()
    await raw.publish(body, message_type="operation.execute", reply=False)
    elsewhere = json.dumps(
        {"service_name": "sec_no_such_connector", "operation": "query", "operation_id": operation_id}
    )
    await raw.publish(elsewhere.encode(), message_type="operation.execute", reply=False)
    await wait_settled(vhost)

    assert code_of(second) == "OPERATION_ID_IN_USE"
    assert second["error"]["category"] == "permanent"
    stored = await client.get_result(operation_id)
    assert stored.status == "success" and stored.result_data == first["result_data"]


async def test_the_same_message_delivered_again_is_not_refused_as_in_use(raw: RawAmqp, service: str) -> None:
    """A redelivery (same reply queue and correlation id: a crash before the ack, a delayed retry, a
    dead-letter replay) finds its own claim."""
    operation_id = f"op_again_{uuid.uuid4().hex[:8]}"
    correlation_id = uuid.uuid4().hex
    first = await _run(raw, service, operation_id, "SELECT 1 AS n", correlation_id=correlation_id)
    again = await _run(raw, service, operation_id, "SELECT 1 AS n", correlation_id=correlation_id)

    assert first["status"] == "success" and again["status"] == "success", (first, again)


async def test_a_keyed_caller_asking_again_with_its_own_key_is_not_refused_as_in_use(
    raw: RawAmqp, service: str
) -> None:
    """Asking again (after IN_PROGRESS, or a reply lost to a broker restart) is a new call, a new
    correlation id: with the same idempotency key it is the same request, and the key decides what
    repeats. Another key with the same operation id is someone else's request."""
    operation_id = f"op_keyed_{uuid.uuid4().hex[:8]}"
    key = f"key_{uuid.uuid4().hex[:8]}"

    async def ask(idempotency_key: str) -> dict[str, Any]:
        request = {
            "service_name": service,
            "operation": "query",
            "operation_id": operation_id,
            "idempotency_key": idempotency_key,
            "parameters": {"query": "SELECT 1 AS n"},
        }
        return await raw.call(json.dumps(request).encode(), message_type="operation.execute")

    first, again, other = await ask(key), await ask(key), await ask(f"{key}_other")

    assert first["status"] == "success", first
    assert again["status"] == "success" and again["result_data"] == first["result_data"], again
    assert code_of(other) == "OPERATION_ID_IN_USE"


async def test_a_cancel_sent_in_advance_is_refused_and_does_not_stop_the_later_request(
    raw: RawAmqp, client: FleetClient, service: str
) -> None:
    operation_id = f"op_future_{uuid.uuid4().hex[:8]}"
    cancel = await raw.call(
        json.dumps({"operation_id": operation_id}).encode(), message_type="operation.cancel"
    )

    later = await _run(raw, service, operation_id, "SELECT 1 AS n")

    assert code_of(cancel) == ErrorCode.NOT_FOUND
    assert later["status"] == "success", later


async def test_a_known_operation_can_still_be_cancelled(raw: RawAmqp, service: str) -> None:
    operation_id = f"op_known_{uuid.uuid4().hex[:8]}"
    assert (await _run(raw, service, operation_id, "SELECT 1"))["status"] == "success"

    cancel = await raw.call(
        json.dumps({"operation_id": operation_id}).encode(), message_type="operation.cancel"
    )

    # accepted, and it says there was nothing left to stop (an unknown id is refused NOT_FOUND)
    assert cancel == {"operation_id": operation_id, "status": "already_finished"}


# --- item 11: the forward time is exact, and the audit caller cannot be forged --------------------------


async def test_the_forward_time_header_is_exact(raw: RawAmqp, service: str) -> None:
    """A float header is sent as a 32-bit float (128 s steps at today's Unix times)."""
    tap = await raw.channel.declare_queue("", exclusive=True, auto_delete=True)
    await tap.bind(await raw.channel.get_exchange(topology.OPS_EXCHANGE), "postgresql")
    sent = time.time()
    await _run(raw, service, f"op_tap_{uuid.uuid4().hex[:8]}", "SELECT 1")
    copy = None
    for _ in range(100):
        copy = await tap.get(no_ack=True, fail=False)
        if copy is not None:
            break
        await asyncio.sleep(0.05)
    assert copy is not None
    stamp = float((copy.headers or {})["x-scf-forwarded-at"])  # type: ignore[arg-type]

    # At today's times a 32-bit float is a multiple of 128 s: never within a second of the truth for long.
    assert abs(stamp - sent) < 1.0, stamp - sent
    assert stamp % 128 != 0


async def test_a_caller_header_without_a_verified_user_is_a_claim_not_the_caller(
    raw: RawAmqp, service: str, fleet: dict[str, FleetProcess]
) -> None:
    """The session fleet trusts its gateway's user (guest); a message with no broker-verified user_id
    is nobody's forwarder, so its header is only a claim. (Defaults: test_amqp_edge_defaults.py.)"""
    forged = f"admin-{uuid.uuid4().hex[:8]}"
    reply = await raw.call(
        json.dumps({"service_name": service}).encode(),
        message_type="connector.get",
        headers={"x-scf-caller": forged},
    )
    assert reply["service_name"] == service

    line = None
    for _ in range(100):
        texts = fleet["dispatcher"].written_lines()
        lines = [json.loads(x) for x in texts if forged in x and x.startswith("{")]
        line = next((x for x in lines if x.get("event") == "audit"), None)
        if line is not None:
            break
        await asyncio.sleep(0.05)
    assert line is not None
    assert line["user"] == "unknown" and line["caller"] is None and line["claimed_caller"] == forged


async def test_the_broker_refuses_a_forged_user_id(vhost: Vhost) -> None:
    """What the audit trusts instead: RabbitMQ checks `user_id` against the connection's login."""
    import aio_pika

    connection = await aio_pika.connect_robust(vhost.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.REQUEST_EXCHANGE)
        with pytest.raises(Exception, match=r"(?i)user_id|PRECONDITION"):
            await exchange.publish(
                aio_pika.Message(b"{}", type="connector.list", user_id="root"), topology.REQUEST_ROUTING_KEY
            )
    finally:
        await connection.close()
