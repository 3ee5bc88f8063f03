"""Health monitoring through the real path: a service vanishes, the connector turns unhealthy and an
alert arrives (event and webhook); the service returns, the connector recovers and uptime moves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from scf.fleet.client import FleetClient
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.proxy import TcpProxy
from tests.support.services import Vhost, claim_redis_db, create_vhost, delete_vhost

pytestmark = pytest.mark.integration


class Webhook:
    """A minimal HTTP endpoint that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers: dict[str, str] = {}
        await reader.readline()
        while (line := await reader.readline()) not in (b"\r\n", b""):
            key, _, value = line.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.events.append(json.loads(body))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture(scope="module")
def health_env(
    secret_key: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Vhost, dict[str, str]]]:
    vhost = create_vhost()
    claimed = claim_redis_db()
    url = claimed.url
    env = fleet_env(vhost.amqp_url, url, secret_key, tmp_path_factory.mktemp("health-data"))
    env.update({"HEALTH_CHECK_INTERVAL": "0.5", "SERVICE_TIMEOUT_THRESHOLD": "1.5"})
    try:
        yield vhost, env
    finally:
        claimed.release()
        delete_vhost(vhost)


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    tcp = TcpProxy(5432)
    await tcp.start()
    yield tcp
    await tcp.stop()


async def next_event(queue: aio_pika.abc.AbstractQueue, status: str, timeout: float = 20) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            await message.ack()
            event: dict[str, Any] = json.loads(message.body)
            if event["status"] == status:
                return event


async def test_connector_goes_unhealthy_then_recovers_with_alerts(
    health_env: tuple[Vhost, dict[str, str]], proxy: TcpProxy, tmp_path: Path
) -> None:
    vhost, env = health_env
    webhook = Webhook()
    await webhook.start()
    env = {**env, "SCF_ALERT_WEBHOOK": f"http://127.0.0.1:{webhook.port}/alerts"}
    dispatcher = FleetProcess(["dispatcher"], env, tmp_path / "dispatcher.log")
    worker = FleetProcess(["worker", "--types", "postgresql"], env, tmp_path / "worker.log")
    connection = await aio_pika.connect(vhost.amqp_url)
    try:
        dispatcher.wait_ready()
        worker.wait_ready()
        channel = await connection.channel()
        events = await channel.declare_queue("", exclusive=True)
        await events.bind("scf.events", "health.flaky_db")
        async with await FleetClient.connect(vhost.amqp_url) as client:
            await client.create_connector(
                {
                    "service_type": "postgresql",
                    "service_name": "flaky_db",
                    "host": "127.0.0.1",
                    "port": proxy.port,
                    "database": "test",
                    "username": "postgres",
                    "connection_timeout": 1,
                    "retry_attempts": 0,
                }
            )
            healthy = await next_event(events, "healthy")

            await proxy.stop()
            unhealthy = await next_event(events, "unhealthy")
            status_down = await client.connector_status("flaky_db")
            uptime_down = (await client.get_metrics("flaky_db")).uptime_percentage

            await proxy.start()
            recovered = await next_event(events, "healthy")
            uptime_up = uptime_down
            for _ in range(100):  # passing checks keep arriving every 0.5 s: wait until uptime moves
                uptime_up = (await client.get_metrics("flaky_db")).uptime_percentage
                if uptime_up is not None and uptime_down is not None and uptime_up > uptime_down:
                    break
                await asyncio.sleep(0.1)
    finally:
        await connection.close()
        worker.stop()
        dispatcher.stop()
        await webhook.stop()

    assert healthy["previous"] == "unknown"
    assert unhealthy["previous"] == "healthy" and unhealthy["error"]["category"] == "transient"
    assert recovered["previous"] == "unhealthy"
    assert status_down.health.status == "unhealthy" and status_down.health.consecutive_failures >= 2
    assert uptime_down is not None and uptime_up is not None
    assert uptime_down < 100.0 and uptime_up > uptime_down
    assert [e["status"] for e in webhook.events] == ["healthy", "unhealthy", "healthy"]
