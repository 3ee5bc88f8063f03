"""Access control on the AMQP door, with a real broker, Redis and fleet processes (SCF_AUTH=on).

The matrix: every message type x {no user_id, unknown principal, missing permission, allowed}, sent
as a raw AMQP client would, plus `operation.execute` published straight to `scf.ops` (the fast path,
checked by the worker). The principal is the broker-verified `user_id` of real RabbitMQ users the test
creates in its own vhost.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg
import pytest

from scf.fleet.client import FleetClient
from scf.schemas import topology
from scf.schemas.control import MessageType
from scf.schemas.operation import OperationEnvelope, OperationRequest
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.services import PG_DSN, Vhost, claim_redis_db, create_vhost, delete_vhost

pytestmark = pytest.mark.integration

PASSWORD = "access-test-pw"
PREVIEW = {"operation": "preview", "data": {"file_data": "a,b\n1,2\n"}}
POLICY = """
roles:
  everything: ["*"]
  csv_reader: ["execute:read:acc_csv_*", "connectors:read"]
principals:
  guest: {roles: [everything], rate: 0}
  {alice}: {roles: [everything], rate: 0}
  {carol}: {grants: [], rate: 0}
  {dave}: {roles: [csv_reader], rate: 0}
  {erin}: {grants: ["execute:write:acc_csv_*"], rate: 0}
  {frank}: {grants: ["execute:write:acc_csv_*", "execute:write:acc_pg_*"], rate: 0}
"""
REFUSED = {"UNAUTHENTICATED", "FORBIDDEN"}


@dataclass
class Users:
    alice: str  # may do anything
    carol: str  # a known principal with no grants
    dave: str  # execute:read on acc_csv_* and connectors:read
    mallory: str  # a broker user the policy does not know
    erin: str  # execute:write on acc_csv_* only
    frank: str  # execute:write on acc_csv_* and acc_pg_*


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def users(vhost_a: Vhost) -> Iterator[Users]:
    tag = uuid.uuid4().hex[:6]
    everyone = ("alice", "carol", "dave", "mallory", "erin", "frank")
    found = Users(*(f"{who}_{tag}" for who in everyone))
    names = [getattr(found, who) for who in everyone]
    for name in names:
        rabbitmqctl("add_user", name, PASSWORD)
        rabbitmqctl("set_permissions", "-p", vhost_a.name, name, ".*", ".*", ".*")
    try:
        yield found
    finally:
        for name in names:
            subprocess.run(["rabbitmqctl", "-q", "delete_user", name], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def vhost_a() -> Iterator[Vhost]:
    created = create_vhost()
    yield created
    delete_vhost(created)


@pytest.fixture(scope="module")
def fleet_a(
    vhost_a: Vhost, users: Users, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, FleetProcess]]:
    from cryptography.fernet import Fernet

    root = tmp_path_factory.mktemp("access-amqp")
    policy = root / "policy.yaml"
    text = POLICY
    for field in ("alice", "carol", "dave", "erin", "frank"):
        text = text.replace("{" + field + "}", getattr(users, field))
    policy.write_text(text)
    redis = claim_redis_db()
    env = fleet_env(vhost_a.amqp_url, redis.url, Fernet.generate_key().decode(), root / "data")
    env.update({"SCF_AUTH": "on", "SCF_POLICY_FILE": str(policy)})
    procs = {
        "dispatcher": FleetProcess(["dispatcher"], env, root / "dispatcher.log"),
        "worker": FleetProcess(["worker", "--concurrency", "8"], env, root / "worker.log"),
    }
    try:
        for proc in procs.values():
            proc.wait_ready()
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()
        redis.release()


def url_of(vhost: Vhost, user: str) -> str:
    password = "guest" if user == "guest" else PASSWORD
    return f"amqp://{user}:{password}@127.0.0.1:5672/{vhost.name}"


async def raw_call(
    vhost: Vhost,
    user: str,
    message_type: str,
    body: dict[str, Any],
    *,
    user_id: bool = True,
    exchange: str = topology.REQUEST_EXCHANGE,
    routing_key: str = topology.REQUEST_ROUTING_KEY,
) -> dict[str, Any]:
    """One request as a raw AMQP client sends it (with or without the `user_id` property); its reply."""
    connection = await aio_pika.connect(url_of(vhost, user))
    try:
        channel = await connection.channel()
        replies = await channel.declare_queue("", exclusive=True, auto_delete=True)
        target = await channel.get_exchange(exchange)
        message = aio_pika.Message(
            json.dumps(body).encode(),
            content_type="application/json",
            type=message_type,
            correlation_id=uuid.uuid4().hex,
            reply_to=replies.name,
            user_id=user if user_id else None,
        )
        await target.publish(message, routing_key)
        async with asyncio.timeout(30), replies.iterator() as queue:
            async for reply in queue:
                await reply.ack()
                answer: dict[str, Any] = json.loads(reply.body)
                return answer
    finally:
        await connection.close()
    raise AssertionError("no reply")


def code_of(reply: dict[str, Any]) -> str | None:
    error = reply.get("error")
    return error.get("code") if isinstance(error, dict) else None


@pytest.fixture
async def admin(fleet_a: dict[str, FleetProcess], vhost_a: Vhost, users: Users) -> AsyncIterator[FleetClient]:
    async with await FleetClient.connect(url_of(vhost_a, users.alice), timeout=30) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def csv(admin: FleetClient) -> str:
    name = unique("acc_csv")
    await admin.create_connector({"service_type": "csv", "service_name": name, "test_on_create": False})
    return name


async def bodies(admin: FleetClient, alice: str, vhost: Vhost) -> dict[MessageType, dict[str, Any]]:
    """A body each message type accepts from a principal allowed to send it."""
    name = await csv(admin)
    doomed = await csv(admin)
    operation_id = unique("op_alice")
    done = await raw_call(
        vhost,
        alice,
        MessageType.OPERATION_EXECUTE,
        {"service_name": name, "operation_id": operation_id, **PREVIEW},
    )
    assert done.get("status") == "success", done
    return {
        MessageType.OPERATION_EXECUTE: {"service_name": name, **PREVIEW},
        MessageType.OPERATION_RESULT: {"operation_id": operation_id},
        MessageType.OPERATION_CANCEL: {"operation_id": operation_id},
        MessageType.CONNECTOR_CREATE: {
            "service_type": "csv",
            "service_name": unique("acc_csv_new"),
            "test_on_create": False,
        },
        MessageType.CONNECTOR_UPDATE: {"service_type": "csv", "service_name": name, "test_on_create": False},
        MessageType.CONNECTOR_GET: {"service_name": name},
        MessageType.CONNECTOR_DELETE: {"service_name": doomed},
        MessageType.CONNECTOR_PAUSE: {"service_name": name},
        MessageType.CONNECTOR_RESUME: {"service_name": name},
        MessageType.CONNECTOR_LIST: {},
        MessageType.CONNECTOR_TEST: {"service_name": name},
        MessageType.CONNECTOR_METRICS: {"service_name": name},
        MessageType.CONNECTOR_STATUS: {"service_name": name},
        MessageType.FLEET_METRICS: {},
        MessageType.DLQ_LIST: {},
        MessageType.DLQ_REPLAY: {"ids": ["0" * 32]},
        MessageType.DLQ_PURGE: {"ids": ["0" * 32]},
    }


async def test_every_message_type_by_sender_is_refused_or_answered_as_the_policy_says(
    admin: FleetClient, vhost_a: Vhost, users: Users
) -> None:
    table = await bodies(admin, users.alice, vhost_a)
    assert set(table) == set(MessageType)  # a new message type needs its row here
    seen: dict[tuple[str, str], str | None] = {}
    for message_type, body in table.items():
        no_user = await raw_call(vhost_a, users.alice, message_type, body, user_id=False)
        unknown = await raw_call(vhost_a, users.mallory, message_type, body)
        missing = await raw_call(vhost_a, users.carol, message_type, body)
        allowed = await raw_call(vhost_a, users.alice, message_type, body)
        seen |= {
            (message_type, "no user_id"): code_of(no_user),
            (message_type, "unknown"): code_of(unknown),
            (message_type, "missing"): code_of(missing),
            (message_type, "allowed"): code_of(allowed),
        }
        assert code_of(no_user) == "UNAUTHENTICATED", (message_type, no_user)
        assert code_of(unknown) == "UNAUTHENTICATED", (message_type, unknown)
        if message_type in (MessageType.OPERATION_RESULT, MessageType.OPERATION_CANCEL):
            # no permission needed: scoped to the caller's own operations, someone else's is unknown
            assert code_of(missing) in ("RESULT_NOT_FOUND", "NOT_FOUND"), (message_type, missing)
        else:
            assert code_of(missing) == "FORBIDDEN", (message_type, missing)
        assert code_of(allowed) not in REFUSED, (message_type, allowed)
    # the fast path: straight into `scf.ops`, checked by the worker
    name = table[MessageType.OPERATION_EXECUTE]["service_name"]
    for who, with_id, expected in (
        (users.alice, False, "UNAUTHENTICATED"),
        (users.mallory, True, "UNAUTHENTICATED"),
        (users.carol, True, "FORBIDDEN"),
        (users.alice, True, None),
    ):
        reply = await raw_call(
            vhost_a,
            who,
            MessageType.OPERATION_EXECUTE,
            envelope(name),
            user_id=with_id,
            exchange=topology.OPS_EXCHANGE,
            routing_key="csv",
        )
        assert code_of(reply) == expected, (who, with_id, reply)
        seen[("fast path", f"{who}:{with_id}")] = code_of(reply)
    print(f"AMQP access matrix: {len(seen)} cells ({len(table)} message types x 4 senders + 4 fast path)")
    assert len(seen) == len(MessageType) * 4 + 4


def envelope(name: str) -> dict[str, Any]:
    request = OperationRequest.model_validate({"service_name": name, **PREVIEW}).with_defaults()
    now = time.time()
    built = OperationEnvelope(
        request=request, service_type="csv", connector_version=0, deadline=now + 20, accepted_at=now
    )
    decoded: dict[str, Any] = json.loads(built.model_dump_json())
    return decoded


async def test_a_forged_principal_header_from_a_client_is_ignored(
    admin: FleetClient, vhost_a: Vhost, users: Users
) -> None:
    name = await csv(admin)
    connection = await aio_pika.connect(url_of(vhost_a, users.carol))
    try:
        channel = await connection.channel()
        replies = await channel.declare_queue("", exclusive=True, auto_delete=True)
        exchange = await channel.get_exchange(topology.REQUEST_EXCHANGE)
        forged: dict[str, Any] = {"x-scf-principal": users.alice, "x-scf-grants": "*", "x-scf-via": "key"}
        await exchange.publish(
            aio_pika.Message(
                json.dumps({"service_name": name, **PREVIEW}).encode(),
                content_type="application/json",
                type=MessageType.OPERATION_EXECUTE,
                correlation_id="c1",
                reply_to=replies.name,
                user_id=users.carol,
                headers=forged,
            ),
            topology.REQUEST_ROUTING_KEY,
        )
        async with asyncio.timeout(30), replies.iterator() as queue:
            async for reply in queue:
                assert code_of(json.loads(reply.body)) == "FORBIDDEN"
                break
    finally:
        await connection.close()


async def test_per_connector_grants_follow_the_operation_traits(
    admin: FleetClient, vhost_a: Vhost, users: Users
) -> None:
    ours = await csv(admin)  # acc_csv_*: dave may read it
    other = unique("other_csv")
    await admin.create_connector({"service_type": "csv", "service_name": other, "test_on_create": False})
    async with await FleetClient.connect(url_of(vhost_a, users.dave), timeout=30) as dave:
        read = await dave.execute_operation(ours, PREVIEW)
        elsewhere = await dave.execute_operation(other, PREVIEW)
        listed = await dave.list_connectors()
        with pytest.raises(Exception) as refused_create:
            await dave.create_connector(
                {"service_type": "csv", "service_name": unique("acc_csv_x"), "test_on_create": False}
            )
    assert read.status == "success", read.error
    assert elsewhere.error is not None and elsewhere.error.code == "FORBIDDEN"
    assert any(c.service_name == ours for c in listed)
    assert getattr(refused_create.value, "code", None) == "FORBIDDEN"


async def test_a_stored_result_is_only_its_owners(admin: FleetClient, vhost_a: Vhost, users: Users) -> None:
    name = await csv(admin)
    operation_id = unique("op_dave")
    async with await FleetClient.connect(url_of(vhost_a, users.dave), timeout=30) as dave:
        ran = await dave.execute_operation(name, {**PREVIEW, "operation_id": operation_id})
        mine = await dave.get_result(operation_id)
    assert ran.status == "success", ran.error
    assert mine.operation_id == operation_id
    theirs = await raw_call(
        vhost_a, users.carol, MessageType.OPERATION_RESULT, {"operation_id": operation_id}
    )
    assert code_of(theirs) == "RESULT_NOT_FOUND"
    cancel = await raw_call(
        vhost_a, users.carol, MessageType.OPERATION_CANCEL, {"operation_id": operation_id}
    )
    assert code_of(cancel) == "NOT_FOUND"


async def test_with_access_control_off_a_client_other_than_the_fleets_login_is_forwarded(
    fleet: dict[str, FleetProcess], vhost: Vhost
) -> None:
    """A forward never re-sends the caller's `user_id` under the fleet's login (RabbitMQ would refuse
    the publish and close the dispatcher's channel): the session fleet runs with SCF_AUTH=off."""
    user = f"plain_{uuid.uuid4().hex[:6]}"
    rabbitmqctl("add_user", user, PASSWORD)
    rabbitmqctl("set_permissions", "-p", vhost.name, user, ".*", ".*", ".*")
    try:
        async with await FleetClient.connect(url_of(vhost, user), timeout=20, fast_path=False) as client:
            name = unique("plain_csv")
            await client.create_connector(
                {"service_type": "csv", "service_name": name, "test_on_create": False}
            )
            results = [await client.execute_operation(name, PREVIEW) for _ in range(3)]
            await client.delete_connector(name)  # the session fleet's registry is shared
        assert all(r.status == "success" for r in results), [r.error for r in results]
        assert "PRECONDITION_FAILED" not in fleet["dispatcher"].own_output()
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_user", user], capture_output=True, timeout=60)


async def test_without_connectors_admin_a_closed_port_looks_like_a_silent_one(
    admin: FleetClient, vhost_a: Vhost, users: Users
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # never accepts: the handshake completes, then nothing answers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused at once
    names = {}
    try:
        for kind, sock in (("silent", silent), ("closed", closed)):
            names[kind] = unique(f"acc_pg_{kind}")
            await admin.create_connector(
                {
                    "service_type": "postgresql",
                    "service_name": names[kind],
                    "host": "127.0.0.1",
                    "port": sock.getsockname()[1],
                    "database": "test",
                    "username": "postgres",
                    "connection_timeout": 1.0,
                    "retry_attempts": 0,
                    "test_on_create": False,
                }
            )
        seen = {}
        for who in (users.dave, users.alice):
            for kind, name in names.items():
                started = time.monotonic()
                reply = await raw_call(vhost_a, who, MessageType.CONNECTOR_TEST, {"service_name": name})
                reply.pop("service_name", None)
                seen[(who, kind)] = (reply, time.monotonic() - started)
    finally:
        silent.close()
        closed.close()
    dave_silent, dave_closed = seen[(users.dave, "silent")], seen[(users.dave, "closed")]
    assert dave_silent[0] == dave_closed[0], seen  # the same answer, word for word
    assert dave_closed[0]["error"]["code"] == "CONNECTION_FAILED"
    assert dave_closed[1] >= 0.9  # the refused port is answered no sooner than the silent one
    alice_silent, alice_closed = seen[(users.alice, "silent")], seen[(users.alice, "closed")]
    assert alice_silent[0] != alice_closed[0]  # an admin sees which it was


async def test_a_sink_needs_the_callers_write_right_on_the_sink_connector_too(
    admin: FleetClient, vhost_a: Vhost, users: Users
) -> None:
    source = await csv(admin)
    sink = unique("acc_pg_sink")
    table = unique("acc_rows")
    await admin.create_connector(
        {
            "service_type": "postgresql",
            "service_name": sink,
            "host": "127.0.0.1",
            "database": "test",
            "username": "postgres",
            "test_on_create": False,
        }
    )
    pg = await asyncpg.connect(PG_DSN)
    await pg.execute(f"CREATE TABLE {table} (a int, b int)")
    ingest = {
        "operation": "ingest",
        "data": {"file_data": "a,b\n1,2\n3,4\n"},
        "parameters": {"sink": {"service_name": sink, "table_name": table}},
    }
    try:
        async with await FleetClient.connect(url_of(vhost_a, users.erin), timeout=30) as erin:
            refused = await erin.execute_operation(source, ingest)
        async with await FleetClient.connect(url_of(vhost_a, users.frank), timeout=30) as frank:
            allowed = await frank.execute_operation(source, ingest)
        rows = await pg.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await pg.execute(f"DROP TABLE IF EXISTS {table}")
        await pg.close()
    assert refused.error is not None and refused.error.code == "FORBIDDEN", refused
    assert allowed.status == "success", allowed.error
    assert rows == 2  # frank's rows only: erin's ingest wrote nothing


async def test_idempotency_keys_are_scoped_to_their_principal(
    admin: FleetClient, vhost_a: Vhost, users: Users
) -> None:
    source = await csv(admin)
    key = unique("key")
    ingest = {"operation": "ingest", "data": {"file_data": "a,b\n1,2\n"}, "idempotency_key": key}
    async with await FleetClient.connect(url_of(vhost_a, users.erin), timeout=30) as erin:
        first = await erin.execute_operation(source, ingest)
        again = await erin.execute_operation(source, ingest)
    async with await FleetClient.connect(url_of(vhost_a, users.frank), timeout=30) as frank:
        other = await frank.execute_operation(source, ingest)
    assert first.status == "success" and not first.replayed, first.error
    assert again.replayed  # the same principal's key: the stored result
    assert other.status == "success" and not other.replayed  # another's equal key never meets it


async def test_straight_into_scf_ops_the_workers_bounds_hold(
    admin: FleetClient, vhost_a: Vhost, users: Users
) -> None:
    """What the dispatcher would refuse is refused by the worker too: a request over the size limit,
    an envelope without an operation id."""
    name = await csv(admin)
    huge = envelope(name)
    huge["request"]["data"] = {"file_data": "a\n" + "x" * (17 * 1024 * 1024)}
    unnamed = envelope(name)
    unnamed["request"]["operation_id"] = None
    answers = []
    for body in (huge, unnamed):
        answers.append(
            await raw_call(
                vhost_a,
                users.alice,
                MessageType.OPERATION_EXECUTE,
                body,
                exchange=topology.OPS_EXCHANGE,
                routing_key="csv",
            )
        )
    assert code_of(answers[0]) == "REQUEST_TOO_LARGE", answers[0].get("error")
    assert code_of(answers[1]) == "INVALID_REQUEST", answers[1].get("error")
