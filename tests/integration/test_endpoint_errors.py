"""A newcomer's wrong port, user or database: the error names the host, port, user and database it was
about (never the password), on the connector and through the fleet's typed error body."""

from __future__ import annotations

import uuid

import pytest

from scf.connectors.postgresql import PostgreSQLOutputConnector
from scf.connectors.redis import RedisConnector
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCode
from tests.integration.conftest import free_port
from tests.support.postgres import pg_body

pytestmark = pytest.mark.integration

PASSWORD = "canary-pw-" + uuid.uuid4().hex[:6]


def pg(**over: object) -> PostgreSQLOutputConnector:
    body = pg_body(service_name="newcomer_db", password=PASSWORD, connection_timeout=3, **over)
    return PostgreSQLOutputConnector(ServiceConnection.parse(body))


async def failure(connector: PostgreSQLOutputConnector | RedisConnector) -> ConnectorError:
    try:
        with pytest.raises(ConnectorError) as caught:
            await connector.open()
        return caught.value
    finally:
        await connector.close()


async def test_a_closed_port_names_host_port_user_and_database() -> None:
    port = free_port()
    error = await failure(pg(port=port))
    assert error.code == ErrorCode.CONNECTION_FAILED
    shown = error.to_info().message
    assert f"127.0.0.1:{port}" in shown and "user 'postgres'" in shown and "database 'test'" in shown
    assert PASSWORD not in shown


async def test_an_unknown_user_is_access_denied_naming_the_user() -> None:
    user = f"nobody_{uuid.uuid4().hex[:6]}"
    error = await failure(pg(username=user))
    assert error.code == ErrorCode.AUTHENTICATION_FAILED
    shown = error.to_info().message
    assert shown.startswith("access denied (") and f"user '{user}'" in shown and "127.0.0.1:5432" in shown
    assert PASSWORD not in shown and "does not exist" not in shown  # the server's own words stay out


async def test_an_unknown_database_is_named() -> None:
    database = f"nodb_{uuid.uuid4().hex[:6]}"
    error = await failure(pg(database=database))
    assert error.code == ErrorCode.INVALID_CONFIG
    assert f"database '{database}'" in error.to_info().message


async def test_redis_on_a_closed_port_names_it() -> None:
    port = free_port()
    connector = RedisConnector(
        ServiceConnection.parse(
            {
                "service_type": "redis",
                "service_name": "newcomer_cache",
                "host": "127.0.0.1",
                "port": port,
                "password": PASSWORD,
                "connection_timeout": 2,
            }
        )
    )
    try:
        tested = await connector.check()
    finally:
        await connector.close()
    assert tested.status == "failed" and tested.error is not None
    assert tested.error.code in (ErrorCode.CONNECTION_FAILED, ErrorCode.TIMEOUT)
    shown = tested.error.message
    assert f"127.0.0.1:{port}" in shown and PASSWORD not in shown
