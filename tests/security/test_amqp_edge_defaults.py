"""The AMQP edge with default settings, on a dispatcher of its own (own vhost and Redis database).

No trusted forwarders are configured here (the session fleet trusts its gateway's `guest`), and no
worker runs at first: a fake heartbeat makes the dispatcher forward `csv` work, which waits in its queue,
so a test can act on an operation that is accepted but not yet started.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet

from scf.fleet import keys
from scf.fleet.client import FleetClient
from tests.security.amqp_raw import RawAmqp, raw_amqp
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.services import Vhost, claim_redis_db, create_vhost, delete_vhost

pytestmark = pytest.mark.integration

SERVICE = "edge_csv"


@pytest.fixture(scope="module")
def lonely(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Vhost, dict[str, str], Path, FleetProcess]]:
    vhost, claimed = create_vhost(), claim_redis_db()
    logs = tmp_path_factory.mktemp("edge")
    env = fleet_env(vhost.amqp_url, claimed.url, Fernet.generate_key().decode(), logs / "data")
    env.pop("SCF_TRUSTED_FORWARDERS", None)  # the default: nobody's caller header is believed
    dispatcher = FleetProcess(["dispatcher"], env, logs / "dispatcher.log")
    try:
        dispatcher.wait_ready()
        state = redis.Redis.from_url(claimed.url)
        state.zadd(keys.workers_of_type("csv"), {"fake-worker": time.time() + 3600})
        state.close()
        yield vhost, env, logs, dispatcher
    finally:
        dispatcher.stop()
        delete_vhost(vhost)
        claimed.release()


@pytest.fixture(scope="module")
async def client(lonely: tuple[Vhost, dict[str, str], Path, FleetProcess]) -> AsyncIterator[FleetClient]:
    async with await FleetClient.connect(lonely[0].amqp_url, timeout=30) as fleet_client:
        await fleet_client.create_connector(
            {"service_type": "csv", "service_name": SERVICE, "test_on_create": False}
        )
        yield fleet_client


@pytest.fixture
async def raw(lonely: tuple[Vhost, dict[str, str], Path, FleetProcess]) -> AsyncIterator[RawAmqp]:
    async with raw_amqp(lonely[0]) as opened:
        yield opened


def preview(operation_id: str, service: str = SERVICE) -> bytes:
    body: dict[str, Any] = {
        "service_name": service,
        "operation": "preview",
        "operation_id": operation_id,
        "data": {"file_data": "a,b\n1,2\n"},
        "timeout": 120,
    }
    return json.dumps(body).encode()


async def wait_claimed(redis_url: str, operation_id: str) -> None:
    state = redis.Redis.from_url(redis_url)
    try:
        for _ in range(200):
            if state.exists(keys.operation_claim(operation_id)):
                return
            await asyncio.sleep(0.05)
    finally:
        state.close()
    raise AssertionError(f"the dispatcher never claimed {operation_id}")


async def audit_line(process: FleetProcess, marker: str) -> dict[str, Any]:
    for _ in range(100):
        for text in process.own_output().splitlines():
            if marker in text and text.startswith("{"):
                line = json.loads(text)
                if line.get("event") == "audit":
                    return dict(line)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no audit line mentions {marker}")


async def test_by_default_only_the_fleets_own_login_is_believed_for_the_caller_header(
    raw: RawAmqp, client: FleetClient, lonely: tuple[Vhost, dict[str, str], Path, FleetProcess]
) -> None:
    forged = f"root-{uuid.uuid4().hex[:8]}"
    await raw.call(
        json.dumps({"service_name": SERVICE}).encode(),
        message_type="connector.get",
        headers={"x-scf-caller": forged},
        user_id="guest",
    )
    unverified = f"nobody-{uuid.uuid4().hex[:8]}"
    await raw.call(
        json.dumps({"service_name": SERVICE}).encode(),
        message_type="connector.get",
        headers={"x-scf-caller": unverified},
    )

    line = await audit_line(lonely[3], forged)
    anonymous = await audit_line(lonely[3], unverified)

    # guest is this fleet's own login: a trusted forwarder (dispatchers forward under it), so its
    # header is believed; a fleet login must never be given to clients (docs/broker-users.md). Anyone
    # else's header is only a claim (tests/unit/test_edge_text.py), and no user_id names nobody.
    assert (line["user"], line["caller"], line["principal"]) == ("guest", forged, "amqp:guest")
    assert (anonymous["user"], anonymous["caller"], anonymous["claimed_caller"]) == (
        "unknown",
        None,
        unverified,
    )


async def test_a_queued_operation_can_be_cancelled_and_a_second_request_cannot_take_its_id(
    raw: RawAmqp, client: FleetClient, lonely: tuple[Vhost, dict[str, str], Path, FleetProcess]
) -> None:
    _, env, logs, _ = lonely
    operation_id = f"op_queued_{uuid.uuid4().hex[:8]}"
    queued = await raw.publish(preview(operation_id), message_type="operation.execute")
    assert queued is not None
    # The dispatcher handles deliveries concurrently: sent at once, the second request could claim the
    # id first (CI saw it). The first must hold the claim before the intruder is sent.
    await wait_claimed(env["SCF_REDIS_URL"], operation_id)
    intruder = await raw.call(preview(operation_id), message_type="operation.execute")

    cancel = await raw.call(
        json.dumps({"operation_id": operation_id}).encode(), message_type="operation.cancel"
    )
    worker = FleetProcess(["worker", "--types", "csv"], env, logs / "worker.log")
    try:
        worker.wait_ready()
        async with asyncio.timeout(30):
            ended = await queued
    finally:
        worker.stop()

    assert intruder["error"]["code"] == "OPERATION_ID_IN_USE", intruder
    assert cancel == {"operation_id": operation_id, "status": "cancel_requested"}
    assert ended["status"] == "failed" and ended["error"]["code"] == "CANCELLED", ended


async def test_a_request_refused_before_it_was_forwarded_leaves_its_operation_id_free(
    raw: RawAmqp, client: FleetClient, lonely: tuple[Vhost, dict[str, str], Path, FleetProcess]
) -> None:
    env = lonely[1]
    operation_id = f"op_free_{uuid.uuid4().hex[:8]}"
    refused = await raw.call(preview(operation_id, "edge_no_such"), message_type="operation.execute")
    state = redis.Redis.from_url(env["SCF_REDIS_URL"])
    try:
        held_after_refusal = state.exists(keys.operation_claim(operation_id))
    finally:
        state.close()

    await raw.publish(preview(operation_id), message_type="operation.execute", reply=False)
    await wait_claimed(env["SCF_REDIS_URL"], operation_id)  # not raced by the cancel, handled beside it
    cancel = await raw.call(
        json.dumps({"operation_id": operation_id}).encode(), message_type="operation.cancel"
    )

    assert refused["error"]["code"] == "CONNECTOR_NOT_FOUND"
    assert held_after_refusal == 0  # released when refused, so a cancel cannot find it...
    assert cancel["status"] == "cancel_requested", cancel  # the second request took the id: it exists
