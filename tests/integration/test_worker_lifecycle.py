"""Worker lifecycle: killed mid-operation loses nothing, SIGTERM drains, no worker means waiting (or, if
asked, a typed error at once).

This module runs its own fleet processes (own vhost and Redis database) so it knows exactly which
worker holds a message.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet

from scf.fleet.client import FleetClient
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.proxy import TcpProxy
from tests.support.services import PG_DSN, Vhost, claim_redis_db, create_vhost, delete_vhost

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def crash_env(
    secret_key: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Vhost, dict[str, str]]]:
    vhost = create_vhost()
    claimed = claim_redis_db()
    url = claimed.url
    try:
        yield vhost, fleet_env(vhost.amqp_url, url, secret_key, tmp_path_factory.mktemp("crash-data"))
    finally:
        claimed.release()
        delete_vhost(vhost)


PG_CONNECTOR = {
    "service_type": "postgresql",
    "service_name": "crash_db",
    "host": "127.0.0.1",
    "database": "test",
    "username": "postgres",
}


async def wait_until_running(pg: asyncpg.Connection, marker: str) -> None:
    """Until a query carrying `marker` is visibly running in PostgreSQL (the worker is mid-operation)."""
    for _ in range(400):
        running = await pg.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
            f"%{marker}%",
        )
        if running:
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the query never started")


def sleepy_query(marker: str, seconds: float) -> dict[str, object]:
    return {
        "operation": "query",
        "timeout": 60,
        "parameters": {"query": f"SELECT pg_sleep({seconds}), '{marker}' AS marker"},
    }


async def queued(amqp_url: str, queue: str, count: int) -> None:
    """Until `queue` holds `count` messages (as the broker reports it to a passive declare)."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        for _ in range(400):
            declared = await channel.declare_queue(queue, passive=True)
            if declared.declaration_result.message_count == count:
                return
            await asyncio.sleep(0.025)
    finally:
        await connection.close()
    raise AssertionError(f"{queue} never held {count} message(s)")


async def test_no_live_worker_is_a_resource_error_at_once_when_the_caller_asks_to_fail_fast(
    crash_env: tuple[Vhost, dict[str, str]], tmp_path: Path
) -> None:
    vhost, env = crash_env
    dispatcher = FleetProcess(["dispatcher"], env, tmp_path / "dispatcher.log")
    try:
        dispatcher.wait_ready()
        async with await FleetClient.connect(vhost.amqp_url) as client:
            created = await client.create_connector({**PG_CONNECTOR, "service_name": "orphan_db"})
            result = await client.execute_operation(
                "orphan_db", {"operation": "query", "no_worker": "fail"}, timeout=20
            )
    finally:
        dispatcher.stop()

    assert created.created.connector_info.connection_status == "untested"
    assert result.error is not None
    assert (result.error.category, result.error.code) == ("resource", "NO_WORKER")
    assert result.error.retry_after is not None


async def test_a_request_sent_with_no_worker_running_succeeds_once_a_worker_starts(
    crash_env: tuple[Vhost, dict[str, str]], tmp_path: Path
) -> None:
    """No worker is not an error: the request waits in its type's queue until a worker (an operator's,
    an autoscaler's) starts and takes it, within its deadline."""
    vhost, env = crash_env
    dispatcher = FleetProcess(["dispatcher"], env, tmp_path / "dispatcher.log")
    worker: FleetProcess | None = None
    try:
        dispatcher.wait_ready()
        async with await FleetClient.connect(vhost.amqp_url) as client:
            await client.create_connector({**PG_CONNECTOR, "service_name": "later_db"})
            query = {"operation": "query", "parameters": {"query": "SELECT 41 + 1 AS answer"}}
            call = asyncio.create_task(client.execute_operation("later_db", query, timeout=120))
            await queued(vhost.amqp_url, "scf.ops.postgresql", 1)
            assert not call.done()
            worker = FleetProcess(["worker", "--types", "postgresql"], env, tmp_path / "worker.log")
            worker.wait_ready()
            result = await asyncio.wait_for(call, 120)
    finally:
        if worker is not None:
            worker.stop()
        dispatcher.stop()

    assert result.error is None, result.error
    assert result.status == "success"
    assert result.result_data["rows"] == [{"answer": 42}], result.result_data


async def test_sigterm_drains_in_flight_work_then_exits_cleanly(
    crash_env: tuple[Vhost, dict[str, str]], tmp_path: Path
) -> None:
    vhost, env = crash_env
    dispatcher = FleetProcess(["dispatcher"], env, tmp_path / "dispatcher.log")
    worker = FleetProcess(["worker", "--types", "postgresql"], env, tmp_path / "worker.log")
    marker = f"drain-test-{time.time_ns()}"
    pg = await asyncpg.connect(PG_DSN)
    try:
        dispatcher.wait_ready()
        worker.wait_ready()
        async with await FleetClient.connect(vhost.amqp_url) as client:
            if not await _exists(client, "crash_db"):
                await client.create_connector(PG_CONNECTOR)
            call = asyncio.create_task(client.execute_operation("crash_db", sleepy_query(marker, 1.0)))
            await wait_until_running(pg, marker)
            exit_code = await asyncio.to_thread(worker.stop, 30.0)
            result = await asyncio.wait_for(call, timeout=30)
    finally:
        await pg.close()
        worker.stop()
        dispatcher.stop()

    assert exit_code == 0
    assert result.status == "success", result.error
    assert result.result_data["rows"][0]["marker"] == marker
    assert '"event": "draining"' in worker.output()


async def _exists(client: FleetClient, name: str) -> bool:
    return any(c.service_name == name for c in await client.list_connectors())


async def test_worker_killed_mid_operation_the_request_is_redelivered_and_answered(
    crash_env: tuple[Vhost, dict[str, str]], tmp_path: Path
) -> None:
    vhost, env = crash_env
    dispatcher = FleetProcess(["dispatcher"], env, tmp_path / "dispatcher.log")
    victim = FleetProcess(
        ["worker", "--types", "postgresql", "--concurrency", "4"], env, tmp_path / "victim.log"
    )
    successor: FleetProcess | None = None
    dispatcher.wait_ready()
    victim.wait_ready()
    marker = f"kill-test-{time.time_ns()}"
    pg = await asyncpg.connect(PG_DSN)
    try:
        async with await FleetClient.connect(vhost.amqp_url) as client:
            if not await _exists(client, "crash_db"):
                await client.create_connector(PG_CONNECTOR)
            call = asyncio.create_task(client.execute_operation("crash_db", sleepy_query(marker, 1.5)))
            await wait_until_running(pg, marker)

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


async def test_every_process_serves_health_readiness_and_prometheus_metrics(
    crash_env: tuple[Vhost, dict[str, str]], tmp_path: Path
) -> None:
    _, env = crash_env
    worker = FleetProcess(["worker", "--types", "csv"], env, tmp_path / "probe.log")
    try:
        worker.wait_ready()
        announced = re.search(r"scf: ready: probes and metrics on :(\d+)", worker.output())
        assert announced is not None
        port = int(announced[1])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            alive, ready, metrics, missing = await asyncio.gather(
                http.get("/healthz"), http.get("/readyz"), http.get("/metrics"), http.get("/nope")
            )
    finally:
        worker.stop()

    assert (alive.status_code, ready.status_code, missing.status_code) == (200, 200, 404)
    assert ready.json() == {"status": "ready"}
    assert "scf_inflight_operations" in metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")


async def test_a_starting_dispatcher_registers_the_connectors_file_and_what_answers_on_spec_ports(
    crash_env: tuple[Vhost, dict[str, str]], tmp_path: Path
) -> None:
    vhost, env = crash_env
    declared = tmp_path / "connectors.yaml"
    declared.write_text(
        "- {service_type: csv, service_name: from_file}\n- {service_type: csv, service_name: 'bad name'}\n"
    )
    env = {
        **env,
        "SCF_CONNECTORS_FILE": str(declared),
        "SCF_DISCOVERY": "true",
        "SERVICE_HOST": "127.0.0.1",
        "POSTGRES_OUTPUT_PORT": "5432",
        "QDRANT_VECTOR_PORT": "1",
    }
    dispatcher = FleetProcess(["dispatcher"], env, tmp_path / "dispatcher.log")
    try:
        dispatcher.wait_ready()
        async with await FleetClient.connect(vhost.amqp_url) as client:
            names = {c.service_name for c in await client.list_connectors()}
        restarted_output = dispatcher.output()
    finally:
        dispatcher.stop()
    again = FleetProcess(["dispatcher"], env, tmp_path / "again.log")
    try:
        again.wait_ready()
    finally:
        again.stop()
    rekeyed_env = {**env, "SCF_SECRET_KEY": Fernet.generate_key().decode()}  # the old key is gone
    rekeyed = FleetProcess(["dispatcher"], rekeyed_env, tmp_path / "rekeyed.log")
    try:
        rekeyed.wait_ready()
    finally:
        rekeyed.stop()

    assert "from_file" in names
    assert "discovered-postgresql-5432" in names  # PostgreSQL answered on the port we named
    assert "discovered-qdrant-1" not in names  # nothing answers on port 1
    assert "bad name: NOT registered [INVALID_CONFIG]" in restarted_output
    assert "from_file: unchanged" in again.output()
    assert "from_file: replaced, its stored secrets were unreadable" in rekeyed.output()
    assert "discovered-rabbitmq-5672" in names  # RabbitMQ answered, and this build has a connector for it


async def test_readiness_follows_redis_reachability(
    crash_env: tuple[Vhost, dict[str, str]], tmp_path: Path
) -> None:
    _, env = crash_env
    target = urllib.parse.urlsplit(env["SCF_REDIS_URL"])  # the session's private Redis
    assert target.port is not None
    redis_proxy = TcpProxy(target.port)
    await redis_proxy.start()
    db = target.path.lstrip("/")
    env = {**env, "SCF_REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/{db}"}
    worker = FleetProcess(["worker", "--types", "csv"], env, tmp_path / "redis-watch.log")
    try:
        await asyncio.to_thread(worker.wait_ready)
        announced = re.search(r"scf: ready: probes and metrics on :(\d+)", worker.output())
        assert announced is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{announced[1]}") as http:
            before = (await http.get("/readyz")).status_code
            await redis_proxy.stop()
            during = await poll_status(http, "/readyz", 503)
            await redis_proxy.start()
            after = await poll_status(http, "/readyz", 200)
            alive = (await http.get("/healthz")).status_code
    finally:
        worker.stop()
        await redis_proxy.stop()

    assert (before, during, after, alive) == (200, 503, 200, 200)


async def poll_status(http: httpx.AsyncClient, path: str, wanted: int, seconds: float = 15) -> int:
    status = 0
    for _ in range(int(seconds * 10)):
        status = (await http.get(path)).status_code
        if status == wanted:
            return status
        await asyncio.sleep(0.1)
    return status


async def test_a_worker_with_another_secret_key_makes_create_report_why_it_could_not_test(
    crash_env: tuple[Vhost, dict[str, str]], tmp_path: Path
) -> None:
    vhost, env = crash_env
    dispatcher = FleetProcess(["dispatcher"], env, tmp_path / "dispatcher.log")
    stranger_env = {**env, "SCF_SECRET_KEY": Fernet.generate_key().decode()}  # a misconfigured machine
    stranger = FleetProcess(["worker", "--types", "csv"], stranger_env, tmp_path / "stranger.log")
    try:
        dispatcher.wait_ready()
        stranger.wait_ready()
        async with await FleetClient.connect(vhost.amqp_url) as client:
            created = await client.create_connector({"service_type": "csv", "service_name": "sealed_csv"})
            result = await client.execute_operation("sealed_csv", {"operation": "preview"})
    finally:
        stranger.stop()
        dispatcher.stop()

    info = created.created.connector_info
    assert info.connection_status == "untested"
    assert info.test_error is not None and info.test_error.code == "SECRETS_UNREADABLE"
    assert result.error is not None and result.error.code == "SECRETS_UNREADABLE"
