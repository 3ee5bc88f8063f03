"""The RabbitMQ connector's typed failures and recoveries, against a real RabbitMQ in a vhost of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from scf.connectors.rabbitmq import RabbitMQConnector
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError
from tests.support.rabbitmq import build, call, new_queue, ok, rabbitmqctl, unique
from tests.support.services import Vhost, create_vhost, delete_vhost, require

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mq_vhost() -> Iterator[Vhost]:
    require("RabbitMQ", "127.0.0.1", 5672)
    created = create_vhost()
    yield created
    delete_vhost(created)


@pytest.fixture(scope="module")
async def mq(mq_vhost: Vhost) -> AsyncIterator[RabbitMQConnector]:
    connector = build(mq_vhost)
    yield connector
    await connector.close()


async def test_a_missing_queue_is_a_typed_error_and_the_channel_is_replaced(mq: RabbitMQConnector) -> None:
    queue = await new_queue(mq)
    opened_before = mq.pool_stats().opened_total

    missing = await call(mq, "consume", parameters={"queue": unique("nowhere")})
    also_missing = await call(mq, "publish", {"message": 1}, parameters={"exchange": unique("nox")})
    after = await ok(mq, "publish", {"message": "still works"}, routing_key=queue)

    assert missing.error is not None
    assert (missing.error.category, missing.error.code) == ("permanent", "NOT_FOUND")
    assert "no queue" in missing.error.message
    assert also_missing.error is not None and "no exchange" in also_missing.error.message
    assert after["published"] == 1
    assert mq.pool_stats().opened_total >= opened_before + 1


async def test_redeclaring_with_other_arguments_is_a_permanent_error(mq: RabbitMQConnector) -> None:
    queue = await new_queue(mq)

    result = await call(mq, "declare_queue", parameters={"queue": queue, "durable": True})

    assert result.error is not None
    assert (result.error.category, result.error.code) == ("permanent", "INVALID_REQUEST")
    assert "inequivalent arg 'durable'" in result.error.message


async def test_a_full_queue_that_rejects_publishes_is_a_resource_error(mq: RabbitMQConnector) -> None:
    queue = await new_queue(mq, **{"x-max-length": 1, "x-overflow": "reject-publish"})
    await ok(mq, "publish", {"message": 1}, routing_key=queue)

    refused = await call(mq, "publish", {"message": 2}, parameters={"routing_key": queue})

    assert refused.error is not None
    assert (refused.error.category, refused.error.code) == ("resource", "QUEUE_FULL")
    assert refused.error.retryable


async def test_fleet_names_are_refused_unless_the_config_allows_them(
    mq_vhost: Vhost, mq: RabbitMQConnector
) -> None:
    refused = [
        await call(mq, "declare_queue", parameters={"queue": "scf.requests"}),
        await call(mq, "consume", parameters={"queue": "scf.ops.rabbitmq"}),
        await call(mq, "purge_queue", parameters={"queue": "scf.dead"}),
        await call(mq, "publish", {"message": 1}, parameters={"routing_key": "scf.requests"}),
    ]
    trusted = build(mq_vhost, allow_fleet_names=True)
    try:
        declared = await ok(trusted, "declare_queue", queue="scf.connector-test", durable=False)
        await ok(trusted, "delete_queue", queue="scf.connector-test")
    finally:
        await trusted.close()

    assert all(
        r.error is not None and (r.error.category, r.error.code) == ("security", "PERMISSION_DENIED")
        for r in refused
    )
    assert declared["queue"] == "scf.connector-test"


@pytest.fixture
def restricted_user(mq_vhost: Vhost) -> Iterator[tuple[str, str]]:
    """A user who may read and write in the vhost but configure nothing."""
    user, password = unique("scf-test-user"), uuid.uuid4().hex

    rabbitmqctl("add_user", user, password)
    try:
        rabbitmqctl("set_permissions", "-p", mq_vhost.name, user, "^$", ".*", ".*")
        yield user, password
    finally:
        rabbitmqctl("delete_user", user, check=False)


async def test_a_user_without_configure_permission_gets_permission_denied(
    mq_vhost: Vhost, restricted_user: tuple[str, str]
) -> None:
    user, password = restricted_user
    connector = RabbitMQConnector(
        ServiceConnection.model_validate(
            {
                "service_type": "rabbitmq",
                "service_name": "mq_restricted",
                "host": "127.0.0.1",
                "username": user,
                "password": password,
                "custom_config": {"vhost": mq_vhost.name},
            }
        )
    )
    try:
        checked = await connector.check()
        denied = await call(connector, "declare_queue", parameters={"queue": unique("q")})
    finally:
        await connector.close()

    assert checked.status == "success"
    assert denied.error is not None
    assert (denied.error.category, denied.error.code, denied.error.message) == (
        "security",
        "PERMISSION_DENIED",
        "access denied",
    )


async def test_an_unknown_vhost_is_a_configuration_error(mq_vhost: Vhost) -> None:
    connector = build(Vhost(unique("no-such-vhost")))
    try:
        with pytest.raises(ConnectorError) as caught:
            await connector.open()
    finally:
        await connector.close()

    assert (caught.value.category, caught.value.code) == ("configuration", "INVALID_CONFIG")


async def test_a_connection_the_broker_closed_is_replaced_on_next_use(mq_vhost: Vhost) -> None:
    connector = build(mq_vhost)
    try:
        queue = await new_queue(connector)
        rabbitmqctl("close_all_connections", "--vhost", mq_vhost.name, "test")
        await asyncio.sleep(0.5)
        after = await call(connector, "publish", {"message": "after"}, parameters={"routing_key": queue})
        stats = await ok(connector, "queue_stats", queue=queue)
    finally:
        await connector.close()

    assert after.status == "success", after.error
    assert stats["message_count"] == 1
