"""A worker SIGKILLed mid-operation loses nothing: RabbitMQ redelivers the request and it is answered.

This module runs its own fleet (own vhost and Redis database) in which only the victim serves
PostgreSQL, so the killed process is certainly the one holding the message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from scf.fleet.client import FleetClient
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.services import PG_DSN, Vhost, create_vhost, delete_vhost

pytestmark = pytest.mark.integration

CRASH_REDIS_DB = 14


@pytest.fixture(scope="module")
def crash_env(secret_key: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vhost, dict[str, str]]]:
    vhost = create_vhost()
    url = f"redis://127.0.0.1:6379/{CRASH_REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    try:
        yield vhost, fleet_env(vhost.amqp_url, url, secret_key, tmp_path_factory.mktemp("crash-data"))
    finally:
        redis.Redis.from_url(url).flushdb()
        delete_vhost(vhost)


async def test_worker_killed_mid_operation_the_request_is_redelivered_and_answered(
    crash_env: tuple[Vhost, dict[str, str]], tmp_path: Path
) -> None:
    vhost, env = crash_env
    dispatcher = FleetProcess(["dispatcher"], env, tmp_path / "dispatcher.log")
    victim = FleetProcess(["worker", "--types", "postgresql", "--concurrency", "4"], env, tmp_path / "victim.log")
    successor: FleetProcess | None = None
    dispatcher.wait_ready()
    victim.wait_ready()
    marker = f"kill-test-{time.time_ns()}"
    pg = await asyncpg.connect(PG_DSN)
    try:
        async with await FleetClient.connect(vhost.amqp_url) as client:
            await client.create_connector(
                {"service_type": "postgresql", "service_name": "crash_db", "host": "127.0.0.1",
                 "database": "test", "username": "postgres"}
            )
            call = asyncio.create_task(
                client.execute_operation(
                    "crash_db",
                    {"operation": "query", "timeout": 60,
                     "parameters": {"query": f"SELECT pg_sleep(1.5), '{marker}' AS marker"}},
                )
            )
            running = 0
            for _ in range(400):  # until the victim's query is visibly running in PostgreSQL
                running = await pg.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
                    f"%{marker}%",
                )
                if running:
                    break
                await asyncio.sleep(0.025)
            assert running, "the query never started"

            victim.kill()
            assert not call.done(), "the reply came before the kill; the test proved nothing"
            successor = FleetProcess(["worker", "--types", "postgresql"], env, tmp_path / "successor.log")
            successor.wait_ready()
            result = await asyncio.wait_for(call, timeout=60)
    finally:
        await pg.close()
        for proc in (successor, victim, dispatcher):
            if proc is not None:
                proc.stop()

    assert result.status == "success", result.error
    assert result.result_data["rows"][0]["marker"] == marker
    assert '"event": "redelivered"' in successor.output()
