"""Integration fixtures: real RabbitMQ (own vhost), Redis (own database), PostgreSQL, and fleet processes."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from scf.fleet.client import FleetClient
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.services import PG_DSN, Vhost, claim_redis_db, create_vhost, delete_vhost, require


@pytest.fixture(scope="session", autouse=True)
def real_services() -> None:
    require("RabbitMQ", "127.0.0.1", 5672)
    require("Redis", "127.0.0.1", 6379)
    require("PostgreSQL", "127.0.0.1", 5432)


@pytest.fixture(scope="session")
def vhost(real_services: None) -> Iterator[Vhost]:
    created = create_vhost()
    yield created
    delete_vhost(created)


@pytest.fixture(scope="session")
def redis_url(real_services: None) -> Iterator[str]:
    claimed = claim_redis_db()
    yield claimed.url
    claimed.release()


@pytest.fixture(scope="session")
def secret_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def env(
    vhost: Vhost, redis_url: str, secret_key: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    return fleet_env(vhost.amqp_url, redis_url, secret_key, tmp_path_factory.mktemp("scf-data"))


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fleet-logs")


@pytest.fixture(scope="session")
def fleet(env: dict[str, str], logs: Path) -> Iterator[dict[str, FleetProcess]]:
    """A dispatcher and a worker for every type, as separate processes (the shape of a real fleet)."""
    dispatcher = FleetProcess(["dispatcher"], env, logs / "dispatcher.log")
    worker = FleetProcess(["worker", "--concurrency", "32"], env, logs / "worker.log")
    procs = {"dispatcher": dispatcher, "worker": worker}
    try:
        dispatcher.wait_ready()
        worker.wait_ready()
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def gateway_url(fleet: dict[str, FleetProcess], env: dict[str, str], logs: Path) -> Iterator[str]:
    """`scf gateway` as its own process in front of the session fleet."""
    port = free_port()
    process = FleetProcess(
        ["gateway"], {**env, "SERVICE_CONNECTOR_FACTORY_PORT": str(port)}, logs / "gateway.log"
    )
    try:
        process.wait_ready()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.fixture(scope="session")
async def client(fleet: dict[str, FleetProcess], vhost: Vhost) -> AsyncIterator[FleetClient]:
    async with await FleetClient.connect(vhost.amqp_url, timeout=30) as fleet_client:
        yield fleet_client


@pytest.fixture
async def pg() -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(PG_DSN)
    try:
        yield conn
    finally:
        await conn.close()
