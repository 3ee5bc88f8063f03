"""The fault suite's own stack: private PostgreSQL, Redis and RabbitMQ it may kill, and fleet processes.

Nothing here touches the machine's shared services: every scenario may SIGKILL or restart any part.
Redis keeps an fsynced append-only file, as the fleet's Redis must in production (it holds the registry).
The stack is built once per test module; each scenario writes its own run of rows, told apart by run id.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from scf.fleet.client import FleetClient
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.private_services import PrivatePostgres, PrivateRabbit, PrivateRedis

SERVICE = "faults_db"
TABLE = "fault_effects"


@dataclass
class Stack:
    postgres: PrivatePostgres
    redis: PrivateRedis
    rabbit: PrivateRabbit
    amqp_url: str
    env: dict[str, str]
    logs: Path
    processes: dict[str, FleetProcess] = field(default_factory=dict)

    def spawn(self, name: str, args: list[str], **env: str) -> FleetProcess:
        """Start (or restart under the same name) one fleet process and wait until it is ready."""
        old = self.processes.get(name)
        if old is not None:
            old.stop(timeout=10)
        process = FleetProcess(args, {**self.env, **env}, self.logs / f"{name}.log")
        process.wait_ready(timeout=60)
        self.processes[name] = process
        return process

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.stop(timeout=10)
        self.processes.clear()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("fault-logs")
    with PrivatePostgres() as postgres, PrivateRedis(persistent=True) as redis, PrivateRabbit() as rabbit:
        postgres.start()
        redis.start()
        rabbit.start()
        amqp_url = rabbit.add_vhost(f"faults-{uuid.uuid4().hex[:6]}")
        env = fleet_env(amqp_url, redis.url, Fernet.generate_key().decode(), logs / "data")
        env.update({"SCF_DELIVERY_LIMIT": "5", "SCF_BREAKER_MIN_FAILURES": "20", "SCF_LOG_LEVEL": "info"})
        built = Stack(postgres, redis, rabbit, amqp_url, env, logs)
        try:
            yield built
        finally:
            built.stop_all()


@pytest.fixture(scope="module")
def fleet(stack: Stack) -> Stack:
    stack.spawn("dispatcher", ["dispatcher"])
    for n in (1, 2):
        stack.spawn(f"worker{n}", ["worker", "--types", "postgresql", "--concurrency", "16"])
    return stack


async def prepare_effects(
    client: FleetClient, postgres: PrivatePostgres, service: str = SERVICE, table: str = TABLE
) -> None:
    """The scenario's effects table on `postgres` and the connector the load writes through."""
    admin = await asyncpg.connect(postgres.dsn)
    await admin.execute(f"CREATE TABLE IF NOT EXISTS {table} (req int NOT NULL, run text NOT NULL)")
    await admin.close()
    await client.create_connector(
        {
            "service_type": "postgresql",
            "service_name": service,
            "host": "127.0.0.1",
            "port": postgres.port,
            "database": "postgres",
            "username": "postgres",
            "connection_timeout": 3,
            "retry_attempts": 2,
            "custom_config": {"max_connections": 8},
        }
    )


@pytest.fixture(scope="module")
async def client(fleet: Stack) -> AsyncIterator[FleetClient]:
    async with await FleetClient.connect(fleet.amqp_url, timeout=30) as fleet_client:
        await prepare_effects(fleet_client, fleet.postgres)
        yield fleet_client
