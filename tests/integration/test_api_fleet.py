"""The API connector through the fleet: real dispatcher and worker processes, a local HTTP API.

Every operation (ingest with pagination, preview, validate) and the connection test run as a caller
would run them (AMQP RPC through `FleetClient`); the worker subprocess reaches the server this test
process started, admitted by `allowed_hosts`. Secrets never come back, SSRF refusals arrive typed.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from scf.fleet.client import FleetClient
from scf.schemas.operation import OperationResult
from tests.support.http_servers import ITEMS, RunningApi, running_api

pytestmark = pytest.mark.integration

SERVICE = "fleet_api"
SECURED = "fleet_api_secured"
PAGINATION = {"type": "page", "size_param": "per_page", "page_size": 3}


@pytest.fixture(scope="module")
def demo() -> Iterator[RunningApi]:
    yield from running_api()


def body(demo: RunningApi, name: str, **custom: Any) -> dict[str, Any]:
    return {
        "service_type": "api",
        "service_name": name,
        "connection_timeout": 5,
        "retry_attempts": 2,
        "custom_config": {
            "base_url": demo.url,
            "allowed_hosts": [demo.server.host_port],
            "records_path": "items",
            "pagination": PAGINATION,
            **custom,
        },
    }


@pytest.fixture(scope="module")
async def service(client: FleetClient, demo: RunningApi) -> AsyncIterator[str]:
    created = await client.create_connector(body(demo, SERVICE))
    assert created.created.connector_info.connection_status == "connected", created.created
    yield SERVICE
    await client.delete_connector(SERVICE)


async def call(client: FleetClient, service: str, operation: str, **request: Any) -> OperationResult:
    return await client.execute_operation(service, {"operation": operation, **request}, timeout=30)


async def ok(client: FleetClient, service: str, operation: str, **request: Any) -> Any:
    result = await call(client, service, operation, **request)
    assert result.status == "success", result.error
    return result


async def test_the_connection_test_passes(client: FleetClient, service: str) -> None:
    tested = await client.test_connection(service)

    assert tested.status == "success", tested.error
    assert tested.test_results["connection_test"] == "passed"


async def test_ingest_collects_every_page_through_the_fleet(client: FleetClient, service: str) -> None:
    result = await ok(
        client, service, "ingest", data={"api_endpoint": "/pages/page"}, parameters={"pagination": True}
    )

    assert result.records_processed == 7
    assert result.result_data == {"records": ITEMS, "pages": 3, "truncated": False}


async def test_ingest_with_the_spec_example_shape(
    client: FleetClient, service: str, demo: RunningApi
) -> None:
    """The spec's "API Data Fetching" example: an absolute endpoint, GET, a caller's header, pagination."""
    result = await ok(
        client,
        service,
        "ingest",
        data={"api_endpoint": f"{demo.url}/pages/page"},
        parameters={
            "method": "GET",
            "headers": {"Authorization": "Bearer caller-token-4411"},
            "pagination": True,
        },
    )

    assert result.result_data["records"] == ITEMS
    assert demo.server.seen("/pages/page")[-1].headers["authorization"] == "Bearer caller-token-4411"
    assert "caller-token-4411" not in result.model_dump_json()


async def test_preview_and_validate_through_the_fleet(client: FleetClient, service: str) -> None:
    preview = await ok(
        client,
        service,
        "preview",
        data={"api_endpoint": "/pages/offset"},
        parameters={
            "records_path": "results",
            "pagination": {"type": "offset", "size_param": "limit", "page_size": 3},
            "limit": 4,
        },
    )
    valid = await ok(
        client,
        service,
        "validate",
        data={"api_endpoint": "/pages/cursor"},
        parameters={
            "records_path": "data",
            "pagination": {"type": "cursor", "param": "after", "cursor_path": "meta.next"},
        },
    )
    invalid = await ok(client, service, "validate", data={"api_endpoint": "/not-json"})

    assert preview.result_data["records"] == ITEMS[:4] and preview.result_data["truncated"] is True
    assert preview.result_data["fields"] == ["id", "name", "even"]
    assert (valid.result_data["valid"], valid.result_data["has_next_page"]) == (True, True)
    assert invalid.result_data["valid"] is False


async def test_errors_arrive_as_typed_replies(client: FleetClient, service: str) -> None:
    missing = await call(client, service, "ingest", data={"api_endpoint": "/missing"})
    metadata = await call(
        client, service, "ingest", data={"api_endpoint": "http://169.254.169.254/latest/meta-data/"}
    )
    unknown = await call(client, service, "query", data={})

    assert missing.error is not None and (missing.error.category, missing.error.code) == (
        "permanent",
        "NOT_FOUND",
    )
    assert metadata.error is not None
    assert (metadata.error.category, metadata.error.message) == ("security", "access denied")
    assert unknown.error is not None and unknown.error.code == "UNKNOWN_OPERATION"


async def test_the_fleet_retries_a_429_after_its_retry_after(
    client: FleetClient, service: str, demo: RunningApi
) -> None:
    demo.api.throttle_next = 1
    before = len(demo.server.seen("/limited"))
    started = time.monotonic()

    result = await ok(
        client,
        service,
        "ingest",
        data={"api_endpoint": "/limited?wait=1"},
        parameters={"records_path": "data", "pagination": False},
    )

    assert result.result_data["records"] == ITEMS[:1]
    assert len(demo.server.seen("/limited")) - before == 2
    assert time.monotonic() - started >= 1.0


async def test_credentials_work_and_are_never_returned(client: FleetClient, demo: RunningApi) -> None:
    token = demo.api.creds.bearer
    created = await client.create_connector(
        body(demo, SECURED, auth={"type": "bearer", "token": token}, health_path="/auth/bearer")
    )
    try:
        fetched = await client.get_connector(SECURED)
        listed = await client.list_connectors("api")
        result = await call(
            client,
            SECURED,
            "ingest",
            data={"api_endpoint": "/auth/bearer"},
            parameters={"records_path": "data", "pagination": False},
        )
    finally:
        await client.delete_connector(SECURED)

    assert created.created.connector_info.connection_status == "connected", created.created
    assert result.status == "success", result.error
    shown = (
        fetched.model_dump_json()
        + json.dumps([c.model_dump(mode="json") for c in listed])
        + result.model_dump_json()
    )
    assert token not in shown
    assert fetched.config["custom_config"]["auth"]["token"] == "**********"
