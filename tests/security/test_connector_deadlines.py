"""A silent host must not hold a connection test or an operation past its bound (issue 11 item 9).

Every connector points at a `HungServer` (accepts TCP, never answers). A connection test with
`connection_timeout: 2` and an operation with a 2 s deadline must each end within that bound plus a
margin, with a typed TIMEOUT or DEADLINE_EXCEEDED. Before the fix, MinIO's test took its read_timeout
(60 s) and the API's its total timeout (30 s), through the fleet 30 s; MinIO's SDK thread also stayed
on the silent socket for read_timeout after the operation had answered.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from scf.factory import ServiceConnectorFactory
from scf.fleet.client import FleetClient
from tests.support.hung import HungServer

pytestmark = pytest.mark.integration

BOUND = 2.0
#: Scheduling on a shared two-core machine, the client's own teardown, the reply's trip.
MARGIN = 1.5
SLOW_CODES = frozenset({"TIMEOUT", "DEADLINE_EXCEEDED"})


@pytest.fixture
async def hung() -> AsyncIterator[HungServer]:
    async with HungServer() as server:
        yield server


def config(kind: str, hung: HungServer) -> dict[str, Any]:
    """A connector of `kind` whose service is the silent host."""
    where: dict[str, Any] = {"host": hung.host, "port": hung.port}
    url = f"http://{hung.host}:{hung.port}"
    bodies: dict[str, dict[str, Any]] = {
        "minio": where
        | {"username": "access", "password": "secret-key"}
        | {"custom_config": {"bucket_name": "bucket", "region": "us-east-1"}},
        "elasticsearch": {"custom_config": {"hosts": [url]}},
        "api": {
            "custom_config": {
                "base_url": url,
                "allowed_hosts": [f"{hung.host}:{hung.port}"],
                "health_path": "/health",
            }
        },
        "rabbitmq": where | {"username": "guest", "password": "guest"},
        "redis": where,
        "qdrant": {"custom_config": {"url": url, "collection_name": "c", "vector_dimension": 3}},
    }
    return bodies[kind] | {"service_type": kind, "retry_attempts": 0}


OPERATIONS: dict[str, dict[str, Any]] = {
    "minio": {"operation": "list_objects"},
    "elasticsearch": {"operation": "count", "parameters": {"index": "anything"}},
    "api": {"operation": "preview", "data": {"api_endpoint": "/records"}},
    "rabbitmq": {"operation": "queue_stats", "parameters": {"queue": "anything"}},
    "redis": {"operation": "get", "data": {"key": "anything"}},
    "qdrant": {"operation": "list_collections"},
}
KINDS = sorted(OPERATIONS)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_connection_test_ends_within_connection_timeout(kind: str, hung: HungServer) -> None:
    async with ServiceConnectorFactory() as factory:
        await factory.create_connector(
            config(kind, hung) | {"service_name": f"hung_{kind}", "connection_timeout": BOUND}, connect=False
        )
        started = time.monotonic()
        result = await factory.test_connection(f"hung_{kind}")
        took = time.monotonic() - started

    assert result.status == "failed" and result.error is not None
    assert result.error.code in SLOW_CODES, result.error
    assert took <= BOUND + MARGIN, f"{kind}: the test took {took:.2f} s"


@pytest.mark.parametrize("kind", KINDS)
async def test_an_operation_ends_within_its_deadline_whatever_the_timeouts(
    kind: str, hung: HungServer
) -> None:
    """The connector's own timeouts are 30 s (connect) and more (MinIO reads 60 s): the deadline wins."""
    async with ServiceConnectorFactory() as factory:
        await factory.create_connector(
            config(kind, hung) | {"service_name": f"hung_{kind}", "connection_timeout": 30}, connect=False
        )
        started = time.monotonic()
        result = await factory.execute_operation(f"hung_{kind}", OPERATIONS[kind] | {"timeout": BOUND})
        took = time.monotonic() - started

    assert result.error is not None and result.error.code in SLOW_CODES, result.error
    assert took <= BOUND + MARGIN, f"{kind}: the operation took {took:.2f} s"


async def wait_until(condition: Callable[[], bool], within: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within, "not within the bound"
        await asyncio.sleep(0.05)  # polling a condition, with a bound
    return time.monotonic() - started


async def test_minio_lets_go_of_the_silent_socket_when_the_deadline_passes(hung: HungServer) -> None:
    """The SDK runs in the connector's own threads: an operation that answered DEADLINE_EXCEEDED must
    not leave its thread reading for read_timeout (60 s), or a few such calls fill the pool."""
    body = config("minio", hung) | {"service_name": "hung_minio", "connection_timeout": 30}
    body["custom_config"] |= {"thread_pool_size": 1, "read_timeout": 60}
    async with ServiceConnectorFactory() as factory:
        await factory.create_connector(body, connect=False)
        request = {"operation": "list_objects", "timeout": BOUND}
        result = await factory.execute_operation("hung_minio", request)
        assert result.error is not None and result.error.code in SLOW_CODES, result.error
        released = await wait_until(lambda: hung.open_connections == 0, within=MARGIN)

    assert hung.accepted >= 1
    assert released <= MARGIN


@pytest.mark.parametrize("service_type", ["csv", "pdf"])
async def test_a_file_url_on_a_silent_host_ends_within_the_deadline(
    service_type: str, hung: HungServer, tmp_path: Path
) -> None:
    """`url_timeout` is 60 s; the request's 2 s deadline bounds the fetch."""
    custom = {"url_allowed_hosts": [f"{hung.host}:{hung.port}"], "url_timeout": 60}
    async with ServiceConnectorFactory() as factory:
        await factory.create_connector(
            {"service_type": service_type, "service_name": "hung_url", "custom_config": custom}
        )
        started = time.monotonic()
        result = await factory.execute_operation(
            "hung_url",
            {"operation": "preview", "data": {"url": f"http://{hung.host}:{hung.port}/f"}, "timeout": BOUND},
        )
        took = time.monotonic() - started

    assert result.error is not None and result.error.code in SLOW_CODES, result.error
    assert took <= BOUND + MARGIN


async def test_through_the_fleet_a_minio_test_against_a_silent_host_honours_connection_timeout(
    client: FleetClient, hung: HungServer
) -> None:
    """The issue's case: `test` against a silent host took 30 s and ignored connection_timeout."""
    name = f"hung_s3_{uuid.uuid4().hex[:6]}"
    await client.create_connector(
        config("minio", hung) | {"service_name": name, "connection_timeout": BOUND, "test_on_create": False}
    )
    started = time.monotonic()
    tested = await client.test_connection(name)
    took_test = time.monotonic() - started
    started = time.monotonic()
    ran = await client.execute_operation(name, {"operation": "list_objects", "timeout": BOUND})
    took_op = time.monotonic() - started
    await client.delete_connector(name)

    assert tested.status == "failed" and tested.error is not None and tested.error.code in SLOW_CODES
    assert took_test <= BOUND + MARGIN + 1.0, f"the test took {took_test:.2f} s"  # + the RPC round trips
    assert ran.error is not None and ran.error.code in SLOW_CODES, ran.error
    assert took_op <= BOUND + MARGIN + 1.0, f"the operation took {took_op:.2f} s"
