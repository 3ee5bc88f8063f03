"""The gateway in front of a real fleet, access control on everywhere: the gateway refuses early, names
the principal to the fleet, and the fleet decides the rest (a read grant does not run a write)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.integration.conftest import free_port
from tests.support.access_gateway import SECRET_KEY, make_key
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.services import claim_redis_db, create_vhost, delete_vhost
from tests.support.spec import SPEC_INSERT_REQUEST

pytestmark = pytest.mark.integration

PG = {
    "service_name": "e2e_db",
    "service_type": "postgresql",
    "host": "127.0.0.1",
    "database": "test",
    "username": "postgres",
    "password": "e2e-canary-pw",
    "custom_config": {"schema": "public"},
}
QUERY = {"operation": "query", "parameters": {"query": "SELECT 1 AS one"}}


@dataclass
class Door:
    url: str
    writer: dict[str, str]
    runner: dict[str, str]
    reader: dict[str, str]


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    vhost, db = create_vhost(), claim_redis_db()
    data = tmp_path_factory.mktemp("scf-data-auth")
    env = {**fleet_env(vhost.amqp_url, db.url, SECRET_KEY, data), "SCF_AUTH": "on"}
    logs = tmp_path_factory.mktemp("auth-logs")
    port = free_port()
    procs = [
        FleetProcess(["dispatcher"], env, logs / "dispatcher.log"),
        FleetProcess(["worker", "--concurrency", "4"], env, logs / "worker.log"),
        FleetProcess(["gateway"], {**env, "SERVICE_CONNECTOR_FACTORY_PORT": str(port)}, logs / "gateway.log"),
    ]
    try:
        for proc in procs:
            proc.wait_ready()
        yield Door(
            f"http://127.0.0.1:{port}",
            {"X-API-Key": make_key(db.url, "e2e-writer", ["connectors:write", "connectors:read"])},
            {"X-API-Key": make_key(db.url, "e2e-runner", ["execute:read:e2e_*"])},
            {"X-API-Key": make_key(db.url, "e2e-reader", ["connectors:read"])},
        )
    finally:
        for proc in procs:
            proc.stop()
        db.release()
        delete_vhost(vhost)


@pytest.fixture
async def http(door: Door) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=door.url, timeout=30) as client:
        yield client


async def test_each_principal_does_what_it_was_granted_and_no_more(
    door: Door, http: httpx.AsyncClient
) -> None:
    created = await http.post("/connectors", json=PG, headers=door.writer)
    assert created.status_code == 201, created.text

    ran = await http.post("/connectors/e2e_db/execute", json=QUERY, headers=door.runner)
    assert ran.status_code == 200, ran.text
    assert ran.json()["result_data"]["rows"] == [{"one": 1}]

    # the gateway cannot tell a write from a read: the worker refuses it, for the principal named to it
    write = {**SPEC_INSERT_REQUEST, "connection_id": "e2e_db"}
    refused_by_fleet = await http.post("/connectors/e2e_db/execute", json=write, headers=door.runner)
    assert refused_by_fleet.status_code == 403, refused_by_fleet.text
    assert refused_by_fleet.json()["error"]["code"] == "FORBIDDEN"

    refused_at_door = await http.post("/connectors/e2e_db/execute", json=QUERY, headers=door.reader)
    nobody = await http.post("/connectors/e2e_db/execute", json=QUERY)
    assert refused_at_door.status_code == 403 and nobody.status_code == 401

    own = await http.get(f"/operations/{ran.json()['operation_id']}", headers=door.runner)
    others = await http.get(f"/operations/{ran.json()['operation_id']}", headers=door.reader)
    assert own.status_code == 200, own.text
    assert others.status_code in (403, 404)  # scoped to its owner by the fleet

    deleted = await http.delete("/connectors/e2e_db", headers=door.writer)
    assert deleted.status_code == 200
