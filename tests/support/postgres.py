"""PostgreSQL helpers for tests: a connection body for the real server, admin fixtures, one-call runners.

Fixtures here are imported by the test modules that use them (`from tests.support.postgres import ...`).
Every table a test makes has a unique name and is dropped afterwards. Locally PostgreSQL being down
skips; under CI (`CI` set) it fails.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import asyncpg
import pytest

from scf.connectors.postgresql import PostgreSQLOutputConnector
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError
from scf.schemas.operation import OperationOutcome, OperationRequest

PG_HOST, PG_PORT, PG_DATABASE, PG_USER = "127.0.0.1", 5432, "test", "postgres"

Admin: TypeAlias = "asyncpg.Connection[asyncpg.Record]"
MakeTable = Callable[[str], Awaitable[str]]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def pg_body(**fields: Any) -> dict[str, Any]:
    """A create body for a postgresql connector on this machine's PostgreSQL (fields override)."""
    return {
        "service_type": "postgresql",
        "service_name": "analytics_db",
        "host": PG_HOST,
        "port": PG_PORT,
        "database": PG_DATABASE,
        "username": PG_USER,
        "connection_timeout": 5,
        **fields,
    }


def pg_connection(**fields: Any) -> ServiceConnection:
    return ServiceConnection.model_validate(pg_body(**fields))


@pytest.fixture
async def admin() -> AsyncIterator[Admin]:
    try:
        conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_DATABASE, timeout=5
        )
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}: {exc}")
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def make_table(admin: Admin) -> AsyncIterator[MakeTable]:
    """Create `CREATE TABLE <unique name> (<columns>)` in public; every one is dropped afterwards."""
    created: list[str] = []

    async def make(columns: str) -> str:
        name = unique("scf_pg")
        await admin.execute(f"CREATE TABLE public.{name} ({columns})")
        created.append(name)
        return name

    yield make
    for name in created:
        await admin.execute(f"DROP TABLE IF EXISTS public.{name}")


@pytest.fixture
async def connector(admin: Admin) -> AsyncIterator[PostgreSQLOutputConnector]:
    pg = PostgreSQLOutputConnector(pg_connection())
    try:
        yield pg
    finally:
        await pg.close()


async def run(
    pg: PostgreSQLOutputConnector,
    operation: str,
    data: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> OperationOutcome:
    request = OperationRequest(operation=operation, data=data or {}, parameters=parameters or {})
    return await pg.execute(request)


async def refused(
    pg: PostgreSQLOutputConnector,
    operation: str,
    data: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        await run(pg, operation, data, parameters)
    return caught.value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
