"""The deployment egress policy in a real fleet (own vhost, own Redis db, dispatcher and worker processes
started with SCF_EGRESS_DENY=127.0.0.2): creates are refused with EGRESS_DENIED before anything is stored,
and an API connector's allowed_hosts cannot re-allow what the deployment denies (the worker's SSRF guard).

Needs the roles to install the policy: the dispatcher passes `egress=EgressPolicy.from_settings(settings)`
to its ControlPlane and the worker calls `scf.connectors.egress.install(EgressPolicy.from_settings(...))`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet

from scf.fleet.client import FleetClient
from scf.schemas.errors import ConnectorError, ErrorCode
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.services import Vhost, claim_redis_db, create_vhost, delete_vhost

pytestmark = pytest.mark.integration

DENIED_HOST = "127.0.0.2"


@pytest.fixture(scope="module")
def egress_vhost(real_services: None) -> Iterator[Vhost]:
    created = create_vhost()
    yield created
    delete_vhost(created)


@pytest.fixture(scope="module")
def egress_fleet(egress_vhost: Vhost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A fleet of its own (the session fleet runs without a deny list)."""
    redis = claim_redis_db()
    logs = tmp_path_factory.mktemp("egress-logs")
    data = tmp_path_factory.mktemp("egress-data")
    env = fleet_env(egress_vhost.amqp_url, redis.url, Fernet.generate_key().decode(), data)
    env["SCF_EGRESS_DENY"] = DENIED_HOST
    procs: list[FleetProcess] = []
    try:
        procs.append(FleetProcess(["dispatcher"], env, logs / "dispatcher.log"))
        procs.append(FleetProcess(["worker", "--concurrency", "4"], env, logs / "worker.log"))
        for proc in procs:
            proc.wait_ready()
        yield
    finally:
        for proc in procs:
            proc.stop()
        redis.release()


@pytest.fixture
async def egress_client(egress_fleet: None, egress_vhost: Vhost) -> AsyncIterator[FleetClient]:
    async with await FleetClient.connect(egress_vhost.amqp_url, timeout=30) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def refused_create(client: FleetClient, body: dict[str, Any]) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        await client.create_connector(body)
    with pytest.raises(ConnectorError) as missing:  # refused before anything was stored
        await client.get_connector(body["service_name"])
    assert missing.value.code == ErrorCode.CONNECTOR_NOT_FOUND
    return caught.value


async def test_a_postgresql_connector_at_the_metadata_address_is_refused(egress_client: FleetClient) -> None:
    body = {"service_type": "postgresql", "service_name": unique("pg_metadata"), "host": "169.254.169.254"}
    error = await refused_create(egress_client, body)
    assert error.code == ErrorCode.EGRESS_DENIED
    assert error.category == "security"


async def test_a_deny_rule_refuses_create_and_update(egress_client: FleetClient) -> None:
    name = unique("pg_denied")
    body = {"service_type": "postgresql", "service_name": name, "host": DENIED_HOST, "port": 5432}
    assert (await refused_create(egress_client, body)).code == ErrorCode.EGRESS_DENIED
    failover = {**body, "host": "127.0.0.1", "failover_hosts": [f"{DENIED_HOST}:5432"]}
    assert (await refused_create(egress_client, failover)).code == ErrorCode.EGRESS_DENIED

    allowed = {**body, "host": "127.0.0.1", "username": "postgres", "database": "test"}
    created = await egress_client.create_connector(allowed)
    assert created.created.connector_info.connection_status == "connected", created.created
    with pytest.raises(ConnectorError) as caught:
        await egress_client.update_connector({**allowed, "host": DENIED_HOST})
    assert caught.value.code == ErrorCode.EGRESS_DENIED
    await egress_client.delete_connector(name)


async def test_allowed_hosts_cannot_re_allow_a_denied_host(egress_client: FleetClient) -> None:
    body = {
        "service_type": "api",
        "service_name": unique("api_denied"),
        "custom_config": {"base_url": f"http://{DENIED_HOST}:8080/", "allowed_hosts": [DENIED_HOST]},
    }
    assert (await refused_create(egress_client, body)).code == ErrorCode.EGRESS_DENIED

    # no base URL: the create passes, and the worker's SSRF guard refuses the absolute URL at call time
    name = unique("api_absolute")
    await egress_client.create_connector(
        {
            "service_type": "api",
            "service_name": name,
            "test_on_create": False,
            "custom_config": {"allowed_hosts": [DENIED_HOST]},
        }
    )
    result = await egress_client.execute_operation(
        name, {"operation": "validate", "parameters": {"endpoint": f"http://{DENIED_HOST}:8080/records"}}
    )
    assert result.status == "failed" and result.error is not None, result
    assert result.error.code == ErrorCode.EGRESS_DENIED, result.error
    await egress_client.delete_connector(name)
