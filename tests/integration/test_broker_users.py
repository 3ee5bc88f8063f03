"""`scf broker-users` on the real broker: a fleet running as the fleet user, a client user that can use it
through `FleetClient` (dispatcher and fast path) and is refused everything else, and the command itself.

Everything happens in a vhost of this module's own, with uniquely named users deleted at the end; the
fleet runs with SCF_AUTH=off (the access rules of the fleet itself are tested elsewhere).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from cryptography.fernet import Fernet

from scf.app.broker_users import (
    CLIENT,
    FLEET,
    ManagementApi,
    Provisioned,
    Role,
    UserSpec,
    amqp_url,
    provision,
)
from scf.fleet.client import FleetClient
from scf.schemas import topology
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.services import Vhost, claim_redis_db, create_vhost, delete_vhost, require

pytestmark = pytest.mark.integration

API_URL = "http://127.0.0.1:15672"
HOST = "127.0.0.1:5672"
PREVIEW = {"operation": "preview", "data": {"file_data": "a,b\n1,2\n"}}
Attempt = Callable[[AbstractChannel], Awaitable[object]]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def own_vhost() -> Iterator[Vhost]:
    require("RabbitMQ management API", "127.0.0.1", 15672)
    made = create_vhost()
    yield made
    delete_vhost(made)


@pytest.fixture(scope="module")
async def api() -> AsyncIterator[ManagementApi]:
    made = ManagementApi(API_URL, "guest", "guest")
    yield made
    await made.close()


@pytest.fixture(scope="module")
async def users(api: ManagementApi, own_vhost: Vhost) -> AsyncIterator[dict[Role, Provisioned]]:
    specs = [
        UserSpec(unique("t-fleet"), Role.FLEET),
        UserSpec(unique("t-gateway"), Role.GATEWAY),
        UserSpec(unique("t-client"), Role.CLIENT),
    ]
    try:
        done = await provision(api, own_vhost.name, specs)
        yield {item.role: item for item in done}
    finally:
        for spec in specs:
            await api.delete_user(spec.name)


def url_of(user: Provisioned, vhost: Vhost) -> str:
    assert user.password is not None
    return amqp_url(user.name, user.password, HOST, vhost.name)


@pytest.fixture(scope="module")
def fleet(
    users: dict[Role, Provisioned], own_vhost: Vhost, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, FleetProcess]]:
    """A dispatcher and a csv worker that log in as the fleet user (its permissions must be enough)."""
    redis = claim_redis_db()
    env = fleet_env(
        url_of(users[Role.FLEET], own_vhost),
        redis.url,
        Fernet.generate_key().decode(),
        tmp_path_factory.mktemp("broker-users-data"),
    )
    env.update({"SCF_AUTH": "off", "SCF_TRUSTED_FORWARDERS": users[Role.GATEWAY].name})
    logs = tmp_path_factory.mktemp("broker-users-logs")
    procs = {
        "dispatcher": FleetProcess(["dispatcher"], env, logs / "dispatcher.log"),
        "worker": FleetProcess(["worker", "--types", "csv"], env, logs / "worker.log"),
    }
    try:
        for proc in procs.values():
            proc.wait_ready()
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()
        redis.release()


async def fleet_call_works(url: str) -> FleetClient:
    """Create a connector, run it through the dispatcher, then on the fast path; returns the closed client."""
    async with await FleetClient.connect(url, timeout=30) as client:
        name = unique("bu_csv").replace("-", "_")
        await client.create_connector({"service_type": "csv", "service_name": name, "test_on_create": False})
        first = await client.execute_operation(name, PREVIEW)
        assert first.status == "success", first.error
        async with asyncio.timeout(10):  # the route is learned once the registry watch is bound
            while client.routes.get(name, time.monotonic()) is None:
                await asyncio.sleep(0.02)
        fast = await client.execute_operation(name, PREVIEW)
        assert fast.status == "success", fast.error
        assert fast.result_data == first.result_data
        await client.delete_connector(name)
        return client


async def test_a_client_user_runs_fleet_calls_through_the_dispatcher_and_the_fast_path(
    fleet: dict[str, FleetProcess], users: dict[Role, Provisioned], own_vhost: Vhost
) -> None:
    client = await fleet_call_works(url_of(users[Role.CLIENT], own_vhost))

    assert client.counts.fast == 1  # published to scf.ops by the client user itself


async def test_the_gateway_user_is_a_client_too(
    fleet: dict[str, FleetProcess], users: dict[Role, Provisioned], own_vhost: Vhost
) -> None:
    client = await fleet_call_works(url_of(users[Role.GATEWAY], own_vhost))

    assert client.counts.fast == 1


async def refusal(url: str, attempt: Attempt) -> aiormq.exceptions.AMQPError | None:
    """What the broker answers to `attempt` on a fresh channel (None: it was allowed)."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        try:
            await attempt(channel)
        except aiormq.exceptions.AMQPError as exc:
            return exc
        return None
    finally:
        await connection.close()


async def ignore(message: AbstractIncomingMessage) -> None:
    return None


async def consume(channel: AbstractChannel, queue: str) -> None:
    await (await channel.get_queue(queue, ensure=False)).consume(ignore)


async def bind_own_queue(channel: AbstractChannel, exchange: str, key: str) -> None:
    queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
    await queue.bind(await channel.get_exchange(exchange, ensure=False), key)


async def publish(channel: AbstractChannel, exchange: str, key: str, **properties: str) -> None:
    target = (
        channel.default_exchange if exchange == "" else await channel.get_exchange(exchange, ensure=False)
    )
    await target.publish(aio_pika.Message(b"{}", **properties), key)  # type: ignore[arg-type]


CLIENT_REFUSED: dict[str, Attempt] = {
    "consume scf.requests": lambda ch: consume(ch, topology.REQUEST_QUEUE),
    "consume scf.ops.postgresql": lambda ch: consume(ch, topology.work_queue("postgresql")),
    "consume scf.ops.csv": lambda ch: consume(ch, topology.work_queue("csv")),
    "consume scf.dead": lambda ch: consume(ch, topology.DEAD_LETTER_QUEUE),
    "get from scf.requests": lambda ch: _get(ch, topology.REQUEST_QUEUE),
    "purge scf.requests": lambda ch: _purge(ch, topology.REQUEST_QUEUE),
    "declare scf.requests": lambda ch: ch.declare_queue(
        topology.REQUEST_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
    ),
    "delete scf.requests": lambda ch: ch.queue_delete(topology.REQUEST_QUEUE),
    "declare exchange scf": lambda ch: ch.declare_exchange(topology.REQUEST_EXCHANGE, durable=True),
    "delete exchange scf.ops": lambda ch: ch.exchange_delete(topology.OPS_EXCHANGE),
    "declare a named queue": lambda ch: ch.declare_queue("scf.mine", exclusive=True),
    "bind to scf (copy requests)": lambda ch: bind_own_queue(ch, topology.REQUEST_EXCHANGE, "requests"),
    "bind to scf.ops (copy envelopes)": lambda ch: bind_own_queue(ch, topology.OPS_EXCHANGE, "csv"),
    "bind to scf.dlx": lambda ch: bind_own_queue(ch, topology.DEAD_LETTER_EXCHANGE, ""),
    "bind every event": lambda ch: bind_own_queue(ch, topology.EVENTS_EXCHANGE, "#"),
    "bind cancel events": lambda ch: bind_own_queue(ch, topology.EVENTS_EXCHANGE, "operation.cancel.*"),
    "publish an event": lambda ch: publish(ch, topology.EVENTS_EXCHANGE, "connector.deleted.x"),
    "publish a reply": lambda ch: publish(ch, "", "amq.gen-someone-elses"),
    "publish a retry": lambda ch: publish(ch, topology.retry_exchange("1s"), "csv"),
    "consume a retry queue": lambda ch: consume(ch, topology.retry_queue("1s")),
}


async def _purge(channel: AbstractChannel, queue: str) -> None:
    await (await channel.get_queue(queue, ensure=False)).purge()


async def _get(channel: AbstractChannel, queue: str) -> None:
    await (await channel.get_queue(queue, ensure=False)).get(fail=False)


@pytest.mark.parametrize("what", sorted(CLIENT_REFUSED))
async def test_a_client_user_is_refused(
    fleet: dict[str, FleetProcess], users: dict[Role, Provisioned], own_vhost: Vhost, what: str
) -> None:
    refused = await refusal(url_of(users[Role.CLIENT], own_vhost), CLIENT_REFUSED[what])

    assert isinstance(refused, aiormq.exceptions.ChannelAccessRefused), refused
    assert "ACCESS_REFUSED" in str(refused)


@pytest.mark.parametrize("role", [Role.CLIENT, Role.GATEWAY, Role.FLEET])
async def test_nobody_can_publish_with_a_forged_user_id(
    fleet: dict[str, FleetProcess], users: dict[Role, Provisioned], own_vhost: Vhost, role: Role
) -> None:
    other = users[Role.FLEET if role is not Role.FLEET else Role.GATEWAY].name
    forged = await refusal(
        url_of(users[role], own_vhost),
        lambda ch: publish(ch, topology.REQUEST_EXCHANGE, topology.REQUEST_ROUTING_KEY, user_id=other),
    )

    assert isinstance(forged, aiormq.exceptions.ChannelPreconditionFailed), forged
    assert "PRECONDITION_FAILED" in str(forged)


async def test_the_client_user_may_do_what_fleet_client_does_and_that_only(
    fleet: dict[str, FleetProcess], users: dict[Role, Provisioned], own_vhost: Vhost
) -> None:
    url = url_of(users[Role.CLIENT], own_vhost)
    name = users[Role.CLIENT].name
    allowed = {
        "bind connector events": lambda ch: bind_own_queue(ch, topology.EVENTS_EXCHANGE, "connector.#"),
        "bind health events": lambda ch: bind_own_queue(ch, topology.EVENTS_EXCHANGE, "health.*"),
        "publish to scf.ops, own user_id": lambda ch: publish(
            ch, topology.OPS_EXCHANGE, "nothing", user_id=name
        ),
    }
    results = {what: await refusal(url, attempt) for what, attempt in allowed.items()}

    assert results == dict.fromkeys(allowed)


async def test_a_fleet_user_can_consume_the_fleets_queues(
    fleet: dict[str, FleetProcess], users: dict[Role, Provisioned], own_vhost: Vhost
) -> None:
    url = url_of(users[Role.FLEET], own_vhost)

    async def consume_and_cancel(channel: AbstractChannel, queue: str) -> None:
        declared = await channel.get_queue(queue, ensure=False)
        tag = await declared.consume(ignore)
        await declared.cancel(tag)

    refusals = [
        await refusal(url, lambda ch, q=queue: consume_and_cancel(ch, q))  # type: ignore[misc]
        for queue in (topology.work_queue("postgresql"), topology.DEAD_LETTER_QUEUE)
    ]

    assert refusals == [None, None]


async def test_the_users_carry_no_tags_and_exactly_the_documented_permissions(
    api: ManagementApi, users: dict[Role, Provisioned], own_vhost: Vhost
) -> None:
    for role, user in users.items():
        shown = await api.user(user.name)
        assert shown is not None and shown["tags"] in ([], ""), shown["tags"] if shown else None
        assert await api.permissions(own_vhost.name, user.name) == (FLEET if role is Role.FLEET else CLIENT)


def run_cli(*args: str, vhost: Vhost) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCF_RABBITMQ_ADMIN_PASSWORD": "guest", "SCF_AMQP_URL": f"amqp://x:y@{HOST}/"}
    return subprocess.run(  # our own command line
        [sys.executable, "-m", "scf", "broker-users", "--vhost", vhost.name, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )


async def test_the_command_creates_users_prints_passwords_once_and_names_the_forwarder(
    own_vhost: Vhost, api: ManagementApi
) -> None:
    fleet_user, gateway_user, client_user = unique("c-fleet"), unique("c-gateway"), unique("c-client")
    names = ("--fleet-user", fleet_user, "--gateway-user", gateway_user, "--client", client_user)
    try:
        first = run_cli(*names, vhost=own_vhost)
        again = run_cli(*names, vhost=own_vhost)
    finally:
        deleted = run_cli(
            "--delete", fleet_user, "--delete", gateway_user, "--delete", client_user, vhost=own_vhost
        )

    assert first.returncode == 0, first.stderr
    urls = dict(re.findall(r"^\w+\s+(\S+)\s+password=\S+\s+SCF_AMQP_URL=(\S+)$", first.stdout, re.M))
    assert sorted(urls) == sorted([fleet_user, gateway_user, client_user])
    assert f"SCF_TRUSTED_FORWARDERS={gateway_user}" in first.stdout.splitlines()
    passwords = re.findall(r"password=(\S+)", first.stdout)
    assert len(set(passwords)) == 3 and all(len(p) >= 40 for p in passwords)
    assert not any(p in first.stderr for p in passwords)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("(existing password kept)") == 3
    assert not any(p in again.stdout + again.stderr for p in passwords)
    assert deleted.returncode == 0 and deleted.stdout.count(": deleted") == 3
    assert await api.user(client_user) is None


async def test_the_command_refuses_a_user_with_the_impersonator_tag(
    own_vhost: Vhost, api: ManagementApi
) -> None:
    name = unique("c-imp")
    await api.put_user(name, {"password": uuid.uuid4().hex, "tags": "impersonator"})
    try:
        refused = run_cli("--fleet-user", name, "--gateway-user", "", vhost=own_vhost)
        permissions = await api.permissions(own_vhost.name, name)
    finally:
        await api.delete_user(name)

    assert refused.returncode == 1
    assert "impersonator" in refused.stderr
    assert permissions is None  # nothing granted
