"""Several broker endpoints: the first that accepts is used, and a lost connection moves on to the next.

Each "node" here is a loopback proxy to the machine's RabbitMQ, so a test can cut one while the other
stays; the three-node cluster scenario is in tests/faults.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from scf.fleet import amqp
from scf.fleet.broker_endpoints import RoundRobinConnection
from scf.fleet.client import FleetClient
from scf.schemas import topology
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.private_services import free_port
from tests.support.proxy import TcpProxy
from tests.support.services import PG_DSN, Vhost, claim_redis_db, create_vhost, delete_vhost

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def vhost() -> Iterator[Vhost]:
    made = create_vhost()
    try:
        yield made
    finally:
        delete_vhost(made)


@pytest.fixture
async def nodes() -> AsyncIterator[tuple[TcpProxy, TcpProxy]]:
    first, second = TcpProxy(5672), TcpProxy(5672)
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await first.stop()
        await second.stop()


def url(port: int, vhost: Vhost) -> str:
    return f"amqp://guest:guest@127.0.0.1:{port}/{vhost.name}"


async def test_the_first_connection_skips_an_endpoint_that_refuses(vhost: Vhost) -> None:
    dead = free_port()
    connection = await amqp.connect(f"{url(dead, vhost)}, {url(5672, vhost)}", "endpoints-test")
    try:
        assert isinstance(connection, RoundRobinConnection)
        assert connection.endpoint == "amqp://guest:***@127.0.0.1:5672/" + vhost.name
        channel = await connection.channel()
        await channel.declare_queue("", exclusive=True)
    finally:
        await connection.close()


async def test_every_endpoint_down_raises_the_connection_error(vhost: Vhost) -> None:
    with pytest.raises(ConnectionError):
        await amqp.connect(f"{url(free_port(), vhost)},{url(free_port(), vhost)}", "endpoints-test")


async def test_a_cancelled_connect_stops_instead_of_trying_the_next_endpoint(vhost: Vhost) -> None:
    reached = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reached.set()
        await reader.read()  # accepts and never speaks AMQP: the connect hangs here until cancelled
        writer.close()

    mute = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = mute.sockets[0].getsockname()[1]
    try:
        connecting = asyncio.create_task(
            amqp.connect(f"{url(port, vhost)},{url(5672, vhost)}", "endpoints-test")
        )
        async with asyncio.timeout(10):
            await reached.wait()
        connecting.cancel()  # while it waits for the silent endpoint's handshake
        done, _ = await asyncio.wait([connecting], timeout=5)
    finally:
        mute.close()
        await mute.wait_closed()
    assert done, "the cancelled connect went on"
    if not connecting.cancelled():  # it connected to the second endpoint: close what it opened
        await connecting.result().close()
    assert connecting.cancelled()


async def test_a_lost_connection_moves_on_to_the_next_endpoint_and_keeps_working(
    vhost: Vhost, nodes: tuple[TcpProxy, TcpProxy]
) -> None:
    first, second = nodes
    connection = await amqp.connect(f"{url(first.port, vhost)},{url(second.port, vhost)}", "endpoints-test")
    try:
        channel = await amqp.open_channel(connection)
        queue = await channel.declare_queue("endpoints-test", durable=True)
        assert f":{first.port}/" in connection.endpoint  # type: ignore[attr-defined]

        await first.stop()  # the node we are on dies for good
        async with asyncio.timeout(30):
            while f":{second.port}/" not in connection.endpoint or not connection.connected.is_set():  # type: ignore[attr-defined]
                await asyncio.sleep(0.05)
        message = aio_pika.Message(b"after the move", message_id="m-1")
        await amqp.publish(channel.default_exchange, message, queue.name)
        async with asyncio.timeout(10):
            while (got := await queue.get(fail=False)) is None:
                await asyncio.sleep(0.05)
        await got.ack()
        await queue.delete()
    finally:
        await connection.close()

    assert got.body == b"after the move"
    assert second.upstream_bytes > 0


async def test_a_fleet_client_takes_a_list_of_endpoints(
    vhost: Vhost, nodes: tuple[TcpProxy, TcpProxy]
) -> None:
    """The client's identity comes from the list's login, and its reply queue survives the move (the
    robust connection declares it again on the next node)."""
    first, second = nodes
    setup = await amqp.connect(url(5672, vhost), "endpoints-setup")
    try:
        await amqp.declare_topology(await setup.channel(), topology.QueueLimits())
    finally:
        await setup.close()
    listed = f"{url(first.port, vhost)},{url(second.port, vhost)}"
    async with await FleetClient.connect(listed, timeout=5) as client:
        await first.stop()
        # with no dispatcher in this vhost the call is not answered: the point is that it is sent
        # (through the second node) and times out as a typed error, not a connection failure
        result = await client.execute_operation("nobody", {"operation": "query", "timeout": 1})
    assert result.error is not None
    assert result.error.code in {"TIMEOUT", "DEADLINE_EXCEEDED"}, result.error
    assert second.upstream_bytes > 0


async def test_a_reply_lost_with_the_clients_connection_is_answered_from_the_stored_result(
    vhost: Vhost, secret_key: str, tmp_path: Path
) -> None:
    """The client's connection drops while its operation runs, and stays down until the worker replied
    (to a reply queue that went with the connection). Once the client is back it is told at once that
    its reply is gone and answers from the stored result, instead of a TIMEOUT after the whole wait."""
    claimed = claim_redis_db()
    env = fleet_env(vhost.amqp_url, claimed.url, secret_key, tmp_path / "data")
    dispatcher = FleetProcess(["dispatcher"], env, tmp_path / "dispatcher.log")
    worker = FleetProcess(["worker", "--types", "postgresql"], env, tmp_path / "worker.log")
    node = TcpProxy(5672)
    await node.start()
    marker = f"lost-reply-{time.time_ns()}"
    pg = await asyncpg.connect(PG_DSN)
    try:
        dispatcher.wait_ready()
        worker.wait_ready()
        async with await FleetClient.connect(url(node.port, vhost), timeout=30) as client:
            await client.create_connector(
                {
                    "service_type": "postgresql",
                    "service_name": "lost_db",
                    "host": "127.0.0.1",
                    "database": "test",
                    "username": "postgres",
                }
            )
            operation_id = f"lost_{uuid.uuid4().hex}"
            query = {"operation": "query", "timeout": 60, "operation_id": operation_id,
                     "parameters": {"query": f"SELECT pg_sleep(1), '{marker}' AS marker"}}  # fmt: skip
            started = time.monotonic()
            call = asyncio.create_task(client.execute_operation("lost_db", query))
            await running(pg, marker)
            await node.stop()  # the client's connection (and its reply queue) is gone
            await done(pg, marker)
            async with await FleetClient.connect(vhost.amqp_url, timeout=30) as witness:
                stored = await witness.result(operation_id, wait=30)  # the reply found no queue
            assert stored.error is None, stored.error
            await node.start()
            result = await asyncio.wait_for(call, 60)
            took = time.monotonic() - started
    finally:
        await pg.close()
        await node.stop()
        worker.stop()
        dispatcher.stop()
        claimed.release()

    assert result.error is None, result.error
    assert result.result_data["rows"][0]["marker"] == marker
    assert took < 30  # well inside the call's 65 s wait: not a timeout that happened to succeed


async def running(pg: asyncpg.Connection, marker: str, present: bool = True) -> None:
    for _ in range(600):
        count = await pg.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()",
            f"%{marker}%",
        )
        if bool(count) == present:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the query {'never started' if present else 'never ended'}")


async def done(pg: asyncpg.Connection, marker: str) -> None:
    await running(pg, marker, present=False)
