"""RabbitMQ as a data service through the fleet: spec bodies over AMQP to a worker process.

The connector talks to the same broker the fleet runs on, but in a vhost of its own and on a connection
of its own, named after the connector; the fleet's own vhost and topology stay out of its reach.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from scf.fleet.client import FleetClient
from scf.schemas.operation import OperationResult
from tests.support.services import Vhost, create_vhost, delete_vhost

pytestmark = pytest.mark.integration

SERVICE = "fleet_mq"


@pytest.fixture(scope="module")
def mq_vhost(real_services: None) -> Iterator[Vhost]:
    created = create_vhost()
    yield created
    delete_vhost(created)


@pytest.fixture(scope="module")
async def created(client: FleetClient, mq_vhost: Vhost) -> dict[str, Any]:
    connector = await client.create_connector(
        {
            "service_type": "rabbitmq",
            "service_name": SERVICE,
            "host": "127.0.0.1",
            "port": 5672,
            "username": "guest",
            "password": "guest",
            "connection_timeout": 5,
            "custom_config": {"vhost": mq_vhost.name, "max_batch": 500},
        }
    )
    return connector.created.model_dump(mode="json")


async def run(client: FleetClient, operation: str, **request: Any) -> OperationResult:
    return await client.execute_operation(SERVICE, {"operation": operation, **request}, timeout=20)


async def ok(client: FleetClient, operation: str, **request: Any) -> Any:
    result = await run(client, operation, **request)
    assert result.status == "success", result.error
    return result.result_data


def connection_names(vhost: Vhost) -> str:
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "vhost", "client_properties"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return "\n".join(line for line in listed.splitlines() if line.startswith(vhost.name + "\t"))


async def test_the_connector_connects_on_a_connection_and_vhost_of_its_own(
    client: FleetClient, created: dict[str, Any], mq_vhost: Vhost, vhost: Vhost
) -> None:
    tested = await client.test_connection(SERVICE)

    assert created["connector_info"]["service_type"] == "rabbitmq"
    assert created["connector_info"]["connection_status"] == "connected", created
    assert tested.status == "success", tested.error
    assert f"scf-connector:{SERVICE}" in connection_names(mq_vhost)
    assert f"scf-connector:{SERVICE}" not in connection_names(vhost)  # never on the fleet's vhost


async def test_publish_consume_declare_and_stats_through_the_fleet(
    client: FleetClient, created: dict[str, Any]
) -> None:
    exchange, queue, jobs = f"orders-{uuid.uuid4().hex[:6]}", f"billing-{uuid.uuid4().hex[:6]}", "fleet-jobs"
    await ok(client, "declare_exchange", parameters={"exchange": exchange, "type": "topic"})
    declared = await ok(
        client, "declare_queue", parameters={"queue": queue, "arguments": {"x-max-length": 1000}}
    )
    await ok(client, "bind", parameters={"queue": queue, "exchange": exchange, "routing_key": "order.*"})

    published = await ok(
        client,
        "publish",
        data={"messages": [{"order": i} for i in range(300)]},
        parameters={"exchange": exchange, "routing_key": "order.created", "headers": {"source": "fleet"}},
        idempotency_key="orders-300",
    )
    stats = await ok(client, "queue_stats", parameters={"queue": queue})
    consumed = await ok(client, "consume", parameters={"queue": queue, "max_messages": 300})
    enqueued = await ok(client, "enqueue", data={"jobs": ["resize", "notify"]}, parameters={"queue": jobs})
    taken = await ok(client, "consume", parameters={"queue": jobs, "max_messages": 10, "wait": 1})
    purged = await ok(client, "purge_queue", parameters={"queue": queue})
    deleted = await ok(client, "delete_queue", parameters={"queue": jobs})

    assert declared["queue"] == queue
    assert published["published"] == 300 and len(published["message_ids"]) == 300
    assert stats == {"queue": queue, "message_count": 300, "consumer_count": 0}
    assert [m["body"] for m in consumed["messages"]] == [{"order": i} for i in range(300)]
    assert [m["message_id"] for m in consumed["messages"]] == published["message_ids"]
    assert consumed["messages"][0]["headers"] == {"source": "fleet"}
    assert enqueued["enqueued"] == 2
    assert [m["body"] for m in taken["messages"]] == ["resize", "notify"]
    assert purged == {"queue": queue, "purged": 0}
    assert deleted["deleted"] is True


async def test_typed_errors_cross_the_fleet(client: FleetClient, created: dict[str, Any]) -> None:
    missing = await run(client, "queue_stats", parameters={"queue": "no-such-queue"})
    fleet_queue = await run(client, "consume", parameters={"queue": "scf.requests"})
    misspelt = await run(client, "publish", data={"message": 1}, parameters={"routing_kye": "x"})
    too_many = await run(
        client, "publish", data={"messages": list(range(501))}, parameters={"routing_key": "x"}
    )
    unroutable = await run(client, "publish", data={"message": 1}, parameters={"routing_key": "nobody-home"})
    after = await ok(client, "declare_queue", parameters={"queue": "still-working", "durable": False})

    assert missing.error is not None
    assert (missing.error.category, missing.error.code) == ("permanent", "NOT_FOUND")
    assert "no queue 'no-such-queue'" in missing.error.message
    assert fleet_queue.error is not None
    assert (fleet_queue.error.category, fleet_queue.error.code) == ("security", "PERMISSION_DENIED")
    assert misspelt.error is not None and misspelt.error.code == "INVALID_REQUEST"
    assert "routing_kye" in misspelt.error.message
    assert too_many.error is not None and too_many.error.code == "LIMIT_EXCEEDED"
    assert unroutable.error is not None and unroutable.error.code == "NOT_FOUND"
    assert after["queue"] == "still-working"
