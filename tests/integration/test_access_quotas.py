"""Rate limits across processes: two gateways and two workers, one quota per principal (in Redis).

HTTP: a burst beyond the quota through two gateways gets 429 with a Retry-After after which a retry
succeeds. AMQP: a client's fast-path calls spread over two workers get RATE_LIMITED with retry_after
once the principal's burst is spent, however the calls were spread.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from scf.fleet.client import FleetClient
from tests.integration.conftest import free_port
from tests.support.access_gateway import SECRET_KEY, make_key
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.services import Vhost, claim_redis_db, create_vhost, delete_vhost

pytestmark = pytest.mark.integration

PASSWORD = "quota-test-pw"
PREVIEW = {"operation": "preview", "data": {"file_data": "a,b\n1,2\n"}}
HTTP_RATE, HTTP_BURST = 0.5, 4  # the deployment default (SCF_RATE_LIMIT / SCF_RATE_BURST)
AMQP_BURST = 5  # the AMQP client's own, from the policy file (rate 0.05/s: no refill during the test)


@dataclass
class Fleet:
    gateways: list[str]
    key: dict[str, str]
    vhost: Vhost
    client_user: str
    admin_user: str
    workers: list[FleetProcess]


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def fleet_q(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    vhost, db = create_vhost(), claim_redis_db()
    tag = uuid.uuid4().hex[:6]
    client_user, admin_user = f"quota_{tag}", f"qadmin_{tag}"
    for user in (client_user, admin_user):
        rabbitmqctl("add_user", user, PASSWORD)
        rabbitmqctl("set_permissions", "-p", vhost.name, user, ".*", ".*", ".*")
    root = tmp_path_factory.mktemp("quotas")
    policy = root / "policy.yaml"
    policy.write_text(
        "principals:\n"
        f"  {client_user}: {{grants: ['*'], rate: 0.05, burst: {AMQP_BURST}}}\n"
        f"  {admin_user}: {{grants: ['*'], rate: 0}}\n"
    )
    env = {
        **fleet_env(vhost.amqp_url, db.url, SECRET_KEY, root / "data"),
        "SCF_AUTH": "on",
        "SCF_POLICY_FILE": str(policy),
        "SCF_RATE_LIMIT": str(HTTP_RATE),
        "SCF_RATE_BURST": str(HTTP_BURST),
    }
    ports = [free_port(), free_port()]
    procs = [
        FleetProcess(["dispatcher"], env, root / "dispatcher.log"),
        FleetProcess(["worker", "--types", "csv", "--concurrency", "4"], env, root / "worker1.log"),
        FleetProcess(["worker", "--types", "csv", "--concurrency", "4"], env, root / "worker2.log"),
    ]
    procs += [
        FleetProcess(["gateway"], {**env, "SERVICE_CONNECTOR_FACTORY_PORT": str(p)}, root / f"gw{p}.log")
        for p in ports
    ]
    try:
        for proc in procs:
            proc.wait_ready()
        key = {"X-API-Key": make_key(db.url, f"quota-key-{tag}", ["connectors:read"])}
        gateways = [f"http://127.0.0.1:{p}" for p in ports]
        yield Fleet(gateways, key, vhost, client_user, admin_user, procs[1:3])
    finally:
        for proc in procs:
            proc.stop()
        for user in (client_user, admin_user):
            subprocess.run(["rabbitmqctl", "-q", "delete_user", user], capture_output=True, timeout=60)
        db.release()
        delete_vhost(vhost)


def url_of(vhost: Vhost, user: str) -> str:
    return f"amqp://{user}:{PASSWORD}@127.0.0.1:5672/{vhost.name}"


async def test_a_burst_through_two_gateways_gets_429_with_an_honest_retry_after(fleet_q: Fleet) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        answers = await asyncio.gather(
            *(http.get(f"{fleet_q.gateways[i % 2]}/connectors", headers=fleet_q.key) for i in range(12))
        )
        ok = [a for a in answers if a.status_code == 200]
        limited = [a for a in answers if a.status_code == 429]
        assert len(ok) == HTTP_BURST and len(limited) == 12 - HTTP_BURST, [a.status_code for a in answers]
        body = limited[0].json()
        assert body["error"]["code"] == "RATE_LIMITED" and body["error"]["retry_after"] > 0
        wait = max(int(a.headers["Retry-After"]) for a in limited[-1:])
        assert 1 <= wait <= 1 / HTTP_RATE + 1
        await asyncio.sleep(wait)
        retried = await http.get(f"{fleet_q.gateways[1]}/connectors", headers=fleet_q.key)
        assert retried.status_code == 200, retried.text


async def test_fast_path_calls_over_two_workers_share_the_principals_quota(fleet_q: Fleet) -> None:
    async with await FleetClient.connect(url_of(fleet_q.vhost, fleet_q.admin_user), timeout=30) as admin:
        name = f"quota_csv_{uuid.uuid4().hex[:6]}"
        body = {"service_type": "csv", "service_name": name, "test_on_create": False}
        await admin.create_connector(body)
    async with await FleetClient.connect(url_of(fleet_q.vhost, fleet_q.client_user), timeout=30) as client:
        results = [await client.execute_operation(name, PREVIEW) for _ in range(3)]
        results += await asyncio.gather(*(client.execute_operation(name, PREVIEW) for _ in range(12)))
        fast = client.counts.fast
    succeeded = [r for r in results if r.status == "success"]
    limited = [r for r in results if r.error is not None and r.error.code == "RATE_LIMITED"]
    # the client's own route lookups (connector.status, for the fast path) are requests too, so they
    # take their share of the burst: at most AMQP_BURST operations ran, the rest were refused
    assert 1 <= len(succeeded) <= AMQP_BURST, [r.error for r in results]
    assert len(limited) == len(results) - len(succeeded)
    assert all(r.error is not None and (r.error.retry_after or 0) > 0 for r in limited)
    assert fast > 0  # the calls took the fast path, where the workers charge them
    # both workers took some (each writes an audit line per operation): the quota held across them
    assert all('"what": "operation.execute"' in w.own_output() for w in fleet_q.workers)


async def test_the_fleets_own_login_acting_for_itself_needs_no_policy_entry(fleet_q: Fleet) -> None:
    """Health tests and discovery are the fleet's own calls: this fleet's policy does not name its
    login (guest), and its calls are still answered (a client given that login could name anyone
    anyway, docs/broker-users.md)."""
    async with await FleetClient.connect(fleet_q.vhost.amqp_url, timeout=30) as fleet_itself:
        listed = await fleet_itself.list_connectors()
    assert isinstance(listed, list)
