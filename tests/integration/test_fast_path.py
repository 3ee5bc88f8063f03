"""The client fast path (`FleetClient` -> `scf.ops` -> worker) through a real broker, Redis, PostgreSQL and
real dispatcher/worker processes: every check the dispatcher made still holds, with the same typed errors.

A probe queue bound to `scf`/`requests` receives a copy of every request sent to the dispatcher, so each
test can prove which path its calls took (it cannot pass on the dispatcher path by accident).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from scf.fleet import fast_path
from scf.fleet.client import FleetClient
from scf.schemas import topology
from scf.schemas.control import MessageType
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.services import Vhost, claim_redis_db, create_vhost, delete_vhost

pytestmark = pytest.mark.integration

PREVIEW = {"operation": "preview", "data": {"file_data": "a,b\n1,2\n"}}
WHICH_DB = {"operation": "query", "parameters": {"query": "SELECT current_database() AS db"}}


@dataclass
class Probe:
    """Copies of the requests sent to the dispatcher: `operation.execute` per service name, and a
    barrier so a count is read only after every earlier request's copy has arrived."""

    executes: Counter[str] = field(default_factory=Counter)
    markers: set[str] = field(default_factory=set)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        body = json.loads(message.body)
        name = body.get("service_name") if isinstance(body, dict) else None
        if message.type == MessageType.OPERATION_EXECUTE and isinstance(name, str):
            self.executes[name] += 1
        elif message.type == MessageType.CONNECTOR_GET and isinstance(name, str):
            self.markers.add(name)

    async def through_dispatcher(self, client: FleetClient, name: str) -> int:
        """How many `operation.execute` calls for `name` the dispatcher was sent so far."""
        marker = f"probe_marker_{uuid.uuid4().hex[:8]}"
        with pytest.raises(Exception):  # noqa: B017 -- any answer will do: only its copy's arrival counts
            await client.get_connector(marker)
        async with asyncio.timeout(10):
            while marker not in self.markers:
                await asyncio.sleep(0.01)
        return self.executes[name]


@pytest.fixture
async def probe(fleet: dict[str, FleetProcess], vhost: Vhost) -> AsyncIterator[Probe]:
    connection = await aio_pika.connect(vhost.amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(topology.REQUEST_EXCHANGE)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.bind(exchange, topology.REQUEST_ROUTING_KEY)
        found = Probe()
        await queue.consume(found.on_message, no_ack=True)
        yield found
    finally:
        await connection.close()


@pytest.fixture
async def fast(fleet: dict[str, FleetProcess], vhost: Vhost) -> AsyncIterator[FleetClient]:
    """A client of its own (its own routes and path counts)."""
    async with await FleetClient.connect(vhost.amqp_url, timeout=30) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def csv_connector(client: FleetClient) -> str:
    name = unique("fast_csv")
    await client.create_connector({"service_type": "csv", "service_name": name, "test_on_create": False})
    return name


async def learned(client: FleetClient, name: str, request: dict[str, Any]) -> None:
    """One call through the dispatcher, then wait until the client has learned the route."""
    first = await client.execute_operation(name, request)
    assert first.status == "success", first.error
    async with asyncio.timeout(10):
        while client.routes.get(name, time.monotonic()) is None:
            await asyncio.sleep(0.02)


def seed(client: FleetClient, name: str, service_type: str, version: int = 1) -> None:
    """A route as a client would hold it had it missed the registry event that made it wrong."""
    assert client.routes.put(
        name,
        service_type,
        version,
        paused=False,
        live_workers=1,
        generation=client.routes.generation,
        now=time.monotonic(),
    )


async def test_calls_after_the_first_go_straight_to_the_worker_with_the_dispatchers_answers(
    fast: FleetClient, probe: Probe, vhost: Vhost
) -> None:
    name = await csv_connector(fast)
    await learned(fast, name, PREVIEW)
    through_dispatcher = await probe.through_dispatcher(fast, name)

    results = await asyncio.gather(*(fast.execute_operation(name, PREVIEW) for _ in range(20)))
    # a caller-chosen id goes through the dispatcher, which claims it while queued (cancellable)
    chosen = await fast.execute_operation(name, {**PREVIEW, "operation_id": unique("op_chosen")})
    slow = await FleetClient.connect(vhost.amqp_url, fast_path=False)
    try:
        reference = await slow.execute_operation(name, PREVIEW)
    finally:
        await slow.close()

    assert through_dispatcher == 1
    # the chosen-id call and the fast_path=False client's call
    assert await probe.through_dispatcher(fast, name) == 3
    assert fast.counts.fast == 20
    assert chosen.status == "success", chosen.error
    assert chosen.result_data == reference.result_data
    assert reference.status == "success", reference.error
    for result in results:
        assert result.status == "success", result.error
        assert result.result_data == reference.result_data
        assert result.records_processed == reference.records_processed


async def test_an_unknown_connector_on_the_fast_path_is_connector_not_found(
    fast: FleetClient, probe: Probe
) -> None:
    warm = await csv_connector(fast)
    await learned(fast, warm, PREVIEW)  # starts the registry watch
    ghost = unique("fast_ghost")
    seed(fast, ghost, "csv")

    result = await fast.execute_operation(ghost, PREVIEW)

    assert result.error is not None and result.error.code == "CONNECTOR_NOT_FOUND", result
    assert result.error.category == "configuration"
    assert fast.counts.fast == 1
    assert await probe.through_dispatcher(fast, ghost) == 0
    assert fast.routes.get(ghost, time.monotonic()) is None  # the next call asks the dispatcher


async def test_a_deleted_connector_the_client_still_routes_is_connector_not_found(
    fast: FleetClient, client: FleetClient, probe: Probe
) -> None:
    name = await csv_connector(fast)
    await learned(fast, name, PREVIEW)  # the worker has it loaded now
    await client.delete_connector(name)  # by another client: this one hears of it only by event
    seed(fast, name, "csv")  # ... as if it had missed the event

    result = await fast.execute_operation(name, PREVIEW)

    assert result.error is not None and result.error.code == "CONNECTOR_NOT_FOUND", result
    assert await probe.through_dispatcher(fast, name) == 1  # the first call only


async def test_a_paused_connector_on_the_fast_path_is_connector_paused_until_resumed(
    fast: FleetClient, probe: Probe
) -> None:
    name = await csv_connector(fast)
    await learned(fast, name, PREVIEW)  # the worker has it loaded, unpaused
    await fast.pause_connector(name)
    assert fast.routes.get(name, time.monotonic()) is None  # this client's own change dropped its route
    seed(fast, name, "csv")  # a client that missed the `connector.paused` event

    paused = await fast.execute_operation(name, PREVIEW)
    await fast.resume_connector(name)
    resumed = await fast.execute_operation(name, PREVIEW)

    assert paused.error is not None and paused.error.code == "CONNECTOR_PAUSED", paused
    assert fast.counts.fast == 1
    assert resumed.status == "success", resumed.error
    # the warm-up and the call after the resume went through the dispatcher, the paused one did not
    assert await probe.through_dispatcher(fast, name) == 2


async def test_an_expired_deadline_on_the_fast_path_is_deadline_exceeded_without_running(
    fast: FleetClient, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = await csv_connector(fast)
    await learned(fast, name, PREVIEW)
    # The client's wall clock runs 5 s behind, so the 1 ms deadline it stamps has passed before any
    # worker can see it (with a true clock a fast worker may start within the millisecond and run it).
    behind = SimpleNamespace(
        time=lambda: time.time() - 5.0, monotonic=time.monotonic, perf_counter=time.perf_counter
    )
    monkeypatch.setattr(fast_path, "time", behind)

    result = await fast.execute_operation(name, {**PREVIEW, "timeout": 0.001})

    assert result.error is not None and result.error.code == "DEADLINE_EXCEEDED", result
    assert result.records_processed == 0
    assert fast.counts.fast == 1
    assert await probe.through_dispatcher(fast, name) == 1


async def test_no_request_runs_with_the_old_config_after_an_update_is_acknowledged(
    fast: FleetClient, probe: Probe
) -> None:
    name = unique("fast_pg")
    body: dict[str, Any] = {
        "service_type": "postgresql",
        "service_name": name,
        "host": "127.0.0.1",
        "database": "test",
        "username": "postgres",
        "test_on_create": False,
    }
    await fast.create_connector(body)
    await learned(fast, name, WHICH_DB)
    seen: list[tuple[float, str]] = []  # (monotonic start, database the call ran against)
    done = asyncio.Event()

    async def caller() -> None:
        while not done.is_set():
            started = time.monotonic()
            result = await fast.execute_operation(name, WHICH_DB)
            assert result.status == "success", result.error
            seen.append((started, result.result_data["rows"][0]["db"]))

    callers = [asyncio.create_task(caller()) for _ in range(4)]
    try:
        async with asyncio.timeout(60):
            while fast.counts.fast < 30:  # the load is on the fast path before the update
                await asyncio.sleep(0.01)
            await fast.update_connector({**body, "database": "postgres"})
            acknowledged = time.monotonic()
            fast_at_ack = fast.counts.fast
            while fast.counts.fast - fast_at_ack < 30:  # ... and again after it (routes relearned)
                await asyncio.sleep(0.01)
            done.set()
            await asyncio.gather(*callers)
    finally:
        for task in callers:
            task.cancel()
        await fast.delete_connector(name)

    before = [db for started, db in seen if started < acknowledged]
    after = [db for started, db in seen if started >= acknowledged]
    assert "test" in before
    assert after and set(after) == {"postgres"}, Counter(after)
    # every call the client counted as going through the dispatcher is one the dispatcher got
    assert await probe.through_dispatcher(fast, name) == fast.counts.dispatcher


async def test_a_raw_amqp_client_following_the_design_still_goes_through_the_dispatcher(
    fast: FleetClient, probe: Probe, vhost: Vhost
) -> None:
    name = await csv_connector(fast)
    connection = await aio_pika.connect(vhost.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        replies = await channel.declare_queue("", exclusive=True, auto_delete=True)
        answered: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        async def on_reply(message: AbstractIncomingMessage) -> None:
            if not answered.done():
                answered.set_result(json.loads(message.body))

        await replies.consume(on_reply, no_ack=True)
        exchange = await channel.get_exchange(topology.REQUEST_EXCHANGE)
        request = aio_pika.Message(
            json.dumps({"service_name": name, **PREVIEW}).encode(),
            content_type="application/json",
            type=MessageType.OPERATION_EXECUTE,
            correlation_id=uuid.uuid4().hex,
            reply_to=replies.name,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await exchange.publish(request, topology.REQUEST_ROUTING_KEY, mandatory=True)
        async with asyncio.timeout(20):
            reply = await answered
    finally:
        await connection.close()
    reference = await fast.execute_operation(name, PREVIEW)

    assert reply["status"] == "success", reply
    assert reply["result_data"] == reference.result_data
    assert await probe.through_dispatcher(fast, name) == 2  # the raw call, and the client's first


@dataclass(frozen=True)
class OwnFleet:
    amqp_url: str
    env: dict[str, str]
    logs: Path


@pytest.fixture(scope="module")
def own_fleet(secret_key: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnFleet]:
    """A fleet of its own (vhost, Redis database) with a dispatcher and no worker to begin with."""
    own_vhost = create_vhost()
    own_redis = claim_redis_db()
    env = fleet_env(own_vhost.amqp_url, own_redis.url, secret_key, tmp_path_factory.mktemp("own-fleet"))
    logs = tmp_path_factory.mktemp("own-fleet-logs")
    dispatcher = FleetProcess(["dispatcher"], env, logs / "dispatcher.log")
    try:
        dispatcher.wait_ready()
        yield OwnFleet(own_vhost.amqp_url, env, logs)
    finally:
        dispatcher.stop()
        own_redis.release()
        delete_vhost(own_vhost)


async def test_with_no_live_worker_a_fast_call_waits_until_its_deadline_then_deadline_exceeded(
    own_fleet: OwnFleet,
) -> None:
    """No worker is not an error (docs/resilience.md): the request waits in its queue until its deadline,
    then the broker dead-letters it and the dead-letter desk answers DEADLINE_EXCEEDED (and keeps it).
    Asked to fail fast, the dispatcher path answers NO_WORKER at once; a client's route lives at most
    its TTL once the last worker is gone. (No worker of this fleet ever serves `pdf`.)"""
    async with await FleetClient.connect(own_fleet.amqp_url, timeout=30) as own:
        name = unique("fast_pdf")
        await own.create_connector({"service_type": "pdf", "service_name": name, "test_on_create": False})
        refused = await own.execute_operation(name, {**PREVIEW, "no_worker": "fail"})
        assert await own.watch_registry()
        seed(own, name, "pdf")  # a route learned while a worker still served pdf

        waited = await own.execute_operation(name, {**PREVIEW, "timeout": 1.0})
        kept = await own.dead_letters(service_name=name)

    assert refused.error is not None and refused.error.code == "NO_WORKER", refused
    assert own.counts.fast == 1
    assert waited.error is not None and waited.error.code == "DEADLINE_EXCEEDED", waited
    assert waited.error.category == "transient"
    assert [entry.operation_id for entry in kept.dead_letters] == [waited.operation_id]


async def test_a_worker_killed_under_fast_path_load_leaves_no_call_unanswered(own_fleet: OwnFleet) -> None:
    """SIGKILL the only worker mid-load: what it held unacked goes back to its queue, the next worker
    answers it, and every call gets exactly one reply (no effects here: see tests/faults for those)."""
    first = FleetProcess(["worker", "--types", "csv"], own_fleet.env, own_fleet.logs / "worker.log")
    second: FleetProcess | None = None
    try:
        first.wait_ready()
        async with await FleetClient.connect(own_fleet.amqp_url, timeout=30) as own:
            name = await csv_connector(own)
            await learned(own, name, PREVIEW)
            # a generous deadline: the point is one reply each, even on a machine slow to start a worker
            slow = {**PREVIEW, "timeout": 300}
            calls = [asyncio.create_task(own.execute_operation(name, slow)) for _ in range(200)]
            async with asyncio.timeout(400):
                while sum(call.done() for call in calls) < 50:
                    await asyncio.sleep(0.005)
                first.kill()
                second = FleetProcess(
                    ["worker", "--types", "csv"], own_fleet.env, own_fleet.logs / "worker.log"
                )
                await asyncio.to_thread(second.wait_ready)
                results = await asyncio.gather(*calls)
            counts = own.counts
    finally:
        first.kill()
        if second is not None:
            second.stop()

    failed = [r.error for r in results if r.error is not None]
    assert failed == []
    assert len({r.operation_id for r in results}) == 200
    assert counts.fast == 200  # every call of the load went straight to the worker
