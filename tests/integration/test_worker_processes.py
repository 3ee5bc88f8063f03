"""`scf worker --processes N`: N worker processes under one supervisor, drained together, restarted alone.

Real broker, Redis and PostgreSQL; the fleet runs as subprocesses in this module's own vhost and Redis
database, so the consumer and heartbeat counts below are this module's workers and nobody else's.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aio_pika
import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from scf.fleet import keys
from scf.fleet.client import FleetClient
from scf.schemas import topology
from tests.integration.conftest import free_port
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.services import PG_DSN, Vhost, claim_redis_db, create_vhost, delete_vhost

pytestmark = pytest.mark.integration

PG_CONNECTOR = {
    "service_type": "postgresql",
    "service_name": "procs_db",
    "host": "127.0.0.1",
    "database": "test",
    "username": "postgres",
}


@pytest.fixture(scope="module")
def procs_env(
    secret_key: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Vhost, str, dict[str, str]]]:
    vhost = create_vhost()
    claimed = claim_redis_db()
    try:
        env = fleet_env(vhost.amqp_url, claimed.url, secret_key, tmp_path_factory.mktemp("procs-data"))
        yield vhost, claimed.url, env
    finally:
        claimed.release()
        delete_vhost(vhost)


@pytest.fixture(scope="module")
def dispatcher(
    procs_env: tuple[Vhost, str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FleetProcess]:
    _, _, env = procs_env
    process = FleetProcess(["dispatcher"], env, tmp_path_factory.mktemp("procs-logs") / "dispatcher.log")
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def start_workers(env: dict[str, str], log: Path, processes: int = 2) -> FleetProcess:
    worker = FleetProcess(
        ["worker", "--processes", str(processes), "--types", "postgresql", "--concurrency", "8"], env, log
    )
    worker.wait_ready(timeout=90)
    return worker


def supervisor_port(worker: FleetProcess) -> int:
    announced = re.search(r"^scf: ready: probes and metrics on :(\d+)", worker.own_output(), re.MULTILINE)
    assert announced is not None, worker.own_output()[-2000:]
    return int(announced[1])


async def consumers(vhost: Vhost, service_type: str) -> int:
    connection = await aio_pika.connect(vhost.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(topology.work_queue(service_type), passive=True)
        result = queue.declaration_result
        return int(result.consumer_count or 0)
    finally:
        await connection.close()


async def live_heartbeats(redis_url: str, service_type: str) -> int:
    client = aioredis.from_url(redis_url)
    try:
        return int(await client.zcount(keys.workers_of_type(service_type), time.time(), "+inf"))
    finally:
        await client.aclose()


async def eventually(read: Callable[[], Awaitable[int]], wanted: int, seconds: float = 30) -> int:
    """Poll until `read()` gives `wanted` (bounded); return the last value seen."""
    value = await read()
    for _ in range(int(seconds * 10)):
        if value == wanted:
            return value
        await asyncio.sleep(0.1)
        value = await read()
    return value


def sleepy_query(marker: str, seconds: float) -> dict[str, object]:
    return {
        "operation": "query",
        "timeout": 60,
        "parameters": {"query": f"SELECT pg_sleep({seconds}), '{marker}' AS marker"},
    }


async def running_queries(pg: asyncpg.Connection, prefix: str) -> int:
    return int(
        await pg.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
            f"%{prefix}%",
        )
    )


async def ensure_connector(client: FleetClient) -> None:
    if not any(c.service_name == PG_CONNECTOR["service_name"] for c in await client.list_connectors()):
        await client.create_connector(PG_CONNECTOR)


def _stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, ...]; [] once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def children_of(worker: FleetProcess) -> list[int]:
    """Pids whose parent is the supervisor (read from /proc: the fleet targets Linux)."""
    return sorted(
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _stat(int(entry.name))[1:2] == [str(worker.proc.pid)]
    )


def running(pid: int) -> bool:
    state = _stat(pid)[:1]
    return state not in ([], ["Z"], ["X"])


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


async def until_gone(pids: list[int], seconds: float = 15) -> list[int]:
    """Poll (bounded) until none of `pids` runs; return those still running."""
    for _ in range(int(seconds * 10)):
        if not any(running(pid) for pid in pids):
            break
        await asyncio.sleep(0.1)
    return [pid for pid in pids if running(pid)]


async def test_two_processes_consume_beat_and_answer_operations(
    procs_env: tuple[Vhost, str, dict[str, str]], dispatcher: FleetProcess, tmp_path: Path
) -> None:
    vhost, redis_url, env = procs_env
    worker = await asyncio.to_thread(start_workers, env, tmp_path / "workers.log")
    try:
        port = supervisor_port(worker)
        queue_consumers = await eventually(lambda: consumers(vhost, "postgresql"), 2)
        heartbeats = await eventually(lambda: live_heartbeats(redis_url, "postgresql"), 2)
        async with await FleetClient.connect(vhost.amqp_url) as client:
            await ensure_connector(client)
            results = await asyncio.gather(
                *(client.execute_operation("procs_db", sleepy_query(f"ok-{i}", 0)) for i in range(20))
            )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            alive, ready, metrics = await asyncio.gather(
                http.get("/healthz"), http.get("/readyz"), http.get("/metrics")
            )
        child_count = len(children_of(worker))
    finally:
        exit_code = await asyncio.to_thread(worker.stop, 60.0)

    assert (queue_consumers, heartbeats, child_count) == (2, 2, 2)
    assert [r.status for r in results] == ["success"] * 20
    assert [r.result_data["rows"][0]["marker"] for r in results] == [f"ok-{i}" for i in range(20)]
    assert (alive.status_code, ready.status_code) == (200, 200)
    for child in ("worker-1", "worker-2"):
        assert f'scf_inflight_operations{{process="{child}",role="worker"}}' in metrics.text
        assert f"scf: worker {child[-1]}/2 ready" in worker.output()
    assert 'scf_supervisor_children_alive{process="supervisor"} 2.0' in metrics.text
    assert exit_code == 0


async def test_sigterm_drains_every_process_and_every_in_flight_operation_is_answered(
    procs_env: tuple[Vhost, str, dict[str, str]], dispatcher: FleetProcess, tmp_path: Path
) -> None:
    vhost, _, env = procs_env
    worker = await asyncio.to_thread(start_workers, env, tmp_path / "workers.log")
    prefix = f"drain-{time.time_ns()}"
    pg = await asyncpg.connect(PG_DSN)
    try:
        async with await FleetClient.connect(vhost.amqp_url) as client:
            await ensure_connector(client)
            calls = [
                asyncio.create_task(client.execute_operation("procs_db", sleepy_query(f"{prefix}-{i}", 1.5)))
                for i in range(8)
            ]
            in_flight = await eventually(lambda: running_queries(pg, prefix), 8)
            children = children_of(worker)
            worker.proc.send_signal(signal.SIGTERM)
            results = await asyncio.wait_for(asyncio.gather(*calls), timeout=60)
            exit_code = await asyncio.to_thread(worker.proc.wait, 60)
    finally:
        await pg.close()
        worker.stop()

    assert in_flight == 8  # all eight were running when the supervisor got SIGTERM
    assert [r.status for r in results] == ["success"] * 8, [r.error for r in results]
    assert sorted(r.result_data["rows"][0]["marker"] for r in results) == sorted(
        f"{prefix}-{i}" for i in range(8)
    )
    assert exit_code == 0
    assert await until_gone(children) == []
    output = worker.output()
    assert output.count('"event": "draining"') == 2  # each child drained its own share
    assert "scf: stopped: every process drained" in output


async def test_a_killed_child_is_restarted_counted_and_the_fleet_keeps_answering(
    procs_env: tuple[Vhost, str, dict[str, str]], dispatcher: FleetProcess, tmp_path: Path
) -> None:
    vhost, _, env = procs_env
    worker = await asyncio.to_thread(start_workers, env, tmp_path / "workers.log")
    try:
        port = supervisor_port(worker)
        victim = children_of(worker)[0]
        os.kill(victim, signal.SIGKILL)
        assert await until_gone([victim]) == []

        async def restarts_announced() -> int:
            return worker.own_output().count("restarted and ready")

        restarted = await eventually(restarts_announced, 1)
        replacement = children_of(worker)
        queue_consumers = await eventually(lambda: consumers(vhost, "postgresql"), 2)
        async with await FleetClient.connect(vhost.amqp_url) as client:
            await ensure_connector(client)
            results = await asyncio.gather(
                *(client.execute_operation("procs_db", sleepy_query(f"after-{i}", 0)) for i in range(10))
            )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            metrics = (await http.get("/metrics")).text
            ready = (await http.get("/readyz")).status_code
    finally:
        exit_code = await asyncio.to_thread(worker.stop, 60.0)

    assert restarted == 1
    assert len(replacement) == 2 and victim not in replacement
    assert queue_consumers == 2
    assert [r.status for r in results] == ["success"] * 10
    assert re.search(
        r'scf_supervisor_child_deaths_total\{child="worker-\d",process="supervisor"\} 1\.0', metrics
    )
    assert '"event": "child_died"' in worker.output()
    assert ready == 200
    assert exit_code == 0  # a death that was repaired is logged and counted, not a failed shutdown


async def test_a_killed_supervisor_takes_its_children_with_it(
    procs_env: tuple[Vhost, str, dict[str, str]], dispatcher: FleetProcess, tmp_path: Path
) -> None:
    _, _, env = procs_env
    worker = await asyncio.to_thread(start_workers, env, tmp_path / "workers.log")
    children = children_of(worker)
    worker.kill()  # SIGKILL: no forwarding, no draining; the kernel must stop the children
    alive = await until_gone(children)
    worker.stop()

    assert len(children) == 2
    assert alive == []
    assert "stopping: draining" not in worker.output()  # killed like their supervisor, not drained


def test_a_child_that_cannot_start_stops_the_supervisor_with_its_exit_code(
    procs_env: tuple[Vhost, str, dict[str, str]], tmp_path: Path
) -> None:
    _, _, env = procs_env
    # nothing listens on port 1; each child waits SCF_STARTUP_TIMEOUT for it, then gives up
    broken = {**env, "SCF_REDIS_URL": "redis://127.0.0.1:1/0", "SCF_STARTUP_TIMEOUT": "2"}
    worker = FleetProcess(["worker", "--processes", "2", "--types", "csv"], broken, tmp_path / "broken.log")
    exit_code = worker.proc.wait(timeout=90)
    worker.stop()

    assert exit_code == 2  # the children's own "Redis did not answer" exit, not a restart loop
    assert "waiting for Redis at SCF_REDIS_URL (attempt 1" in worker.output()
    assert "Redis at SCF_REDIS_URL did not answer within 2 s" in worker.output()
    assert "scf: ready:" not in worker.output()


def test_uvloop_runs_the_fleet_processes_when_asked_for(
    procs_env: tuple[Vhost, str, dict[str, str]], tmp_path: Path
) -> None:
    _, _, env = procs_env
    loops = {}
    for setting in ("1", "0"):
        log = tmp_path / f"uvloop-{setting}.log"
        worker = FleetProcess(
            ["worker", "--processes", "1", "--types", "csv"], {**env, "SCF_UVLOOP": setting}, log
        )
        try:
            worker.wait_ready(timeout=60)
        finally:
            worker.stop()
        events = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
        loops[setting] = [e.get("loop") for e in events if e.get("event") == "process_ready"]

    assert loops == {"1": ["uvloop"], "0": ["asyncio"]}


async def test_up_with_processes_runs_workers_then_one_dispatcher_and_one_gateway(
    procs_env: tuple[Vhost, str, dict[str, str]], tmp_path: Path
) -> None:
    _, _, env = procs_env
    declared = tmp_path / "connectors.yaml"
    declared.write_text("- {service_type: csv, service_name: up_csv}\n")
    gateway_port = free_port()
    fleet = FleetProcess(
        ["up", "--processes", "2", "--types", "csv", "--connectors", str(declared)],
        {**env, "SERVICE_CONNECTOR_FACTORY_PORT": str(gateway_port)},
        tmp_path / "up.log",
    )
    try:
        await asyncio.to_thread(fleet.wait_ready, 90)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}") as http:
            listed = (await http.get("/connectors")).json()
        roles = sorted(cmdline(pid)[3] for pid in children_of(fleet))
    finally:
        exit_code = await asyncio.to_thread(fleet.stop, 60.0)
    output = fleet.output()

    assert roles == ["dispatcher", "gateway", "worker", "worker"]
    assert "up_csv" in json.dumps(listed)
    for line in (
        "scf: worker 2/2 ready",
        "scf: dispatcher 1/1 ready",
        "scf: gateway 1/1 ready",
        "fleet is up",
    ):
        assert line in output
    # workers are ready before the dispatcher registers the declared connectors (and tests them)
    assert output.index("scf: worker 2/2 ready") < output.index("up_csv")
    assert exit_code == 0
