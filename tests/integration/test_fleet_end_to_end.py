"""The fleet end to end: spec bodies through real RabbitMQ, Redis, PostgreSQL and fleet processes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from scf.fleet.client import FleetClient
from scf.fleet.rpc import RpcClient
from scf.schemas.control import MessageType
from scf.schemas.errors import ConfigurationError, PermanentError
from tests.support.pg_schema import own_schema
from tests.support.services import PG_DSN, Vhost
from tests.support.spec import SPEC_CREATE_BODY, SPEC_INSERT_REQUEST, SPEC_METRICS_KEYS

pytestmark = pytest.mark.integration

CANARY_PASSWORD = "secure_password-canary-7f3a9"

# The spec's create body with three adjustments for this machine: the password is a canary we can search
# for, the local PostgreSQL serves no TLS, so ssl_enabled is false, and the schema is one this module
# created (a user who tried the spec has their own `analytics.public.user_analytics`: never touched).
CREATE_BODY: dict[str, Any] = {**SPEC_CREATE_BODY, "password": CANARY_PASSWORD, "ssl_enabled": False}
ANALYTICS_DSN = PG_DSN.rsplit("/", 1)[0] + "/analytics"


@pytest.fixture(scope="module")
async def analytics_db() -> AsyncIterator[str]:
    """The spec's database and role (created if missing, never dropped: a user may own them), and the
    spec's tables in a schema of this module's own, dropped at the end (trust auth: no password check)."""
    admin = await asyncpg.connect(PG_DSN)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'analyst'"):
            await admin.execute("CREATE ROLE analyst LOGIN")
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = 'analytics'"):
            await admin.execute("CREATE DATABASE analytics OWNER analyst")
    finally:
        await admin.close()
    async with own_schema(ANALYTICS_DSN, owner="analyst") as schema:
        db = await asyncpg.connect(ANALYTICS_DSN, user="analyst", server_settings={"search_path": schema})
        try:
            await db.execute(
                "CREATE TABLE user_analytics (user_id int PRIMARY KEY, action text, timestamp timestamptz)"
            )
            await db.execute(
                "CREATE TABLE user_events (id serial PRIMARY KEY, user_id int, date date, kind text)"
            )
            await db.execute(
                "INSERT INTO user_events (user_id, date, kind) VALUES (1, '2023-12-31', 'old'), "
                "(2, '2024-01-01', 'new'), (3, '2024-02-01', 'new')"
            )
        finally:
            await db.close()
        yield schema


@pytest.fixture(scope="module")
async def registered(client: FleetClient, analytics_db: str) -> AsyncIterator[dict[str, Any]]:
    custom_config = {**SPEC_CREATE_BODY["custom_config"], "schema": analytics_db}
    connector = await client.create_connector({**CREATE_BODY, "custom_config": custom_config})
    try:
        yield connector.created.model_dump(mode="json")
    finally:  # its pool must let go of the schema before the schema is dropped
        await client.delete_connector("analytics_db")


async def test_spec_create_body_registers_and_reports_connected(registered: dict[str, Any]) -> None:
    assert registered == {
        "service_name": "analytics_db",
        "status": "created",
        "connection_ok": True,
        "connector_info": {
            "service_type": "postgresql",
            "host": "localhost",
            "port": 5432,
            "connection_status": "connected",
            "test_error": None,
        },
    }


async def test_spec_insert_reply_has_spec_shape_and_row_is_stored(
    client: FleetClient, registered: dict[str, Any], analytics_db: str
) -> None:
    result = await client.execute_operation("analytics_db", SPEC_INSERT_REQUEST)

    assert result.status == "success", result.error
    assert result.operation_id.startswith("op_")
    assert (result.records_processed, result.records_affected) == (1, 1)
    assert result.result_data == {"inserted_rows": 1, "updated_rows": 0}
    assert result.execution_time > 0
    db = await asyncpg.connect(ANALYTICS_DSN, user="analyst")
    try:
        row = await db.fetchrow(
            f"SELECT user_id, action, timestamp FROM {analytics_db}.user_analytics WHERE user_id = 123"
        )
    finally:
        await db.close()
    assert row is not None
    assert row["action"] == "login"
    assert row["timestamp"].isoformat() == "2024-01-01T10:00:00+00:00"


async def test_spec_query_example_with_query_params(client: FleetClient, registered: dict[str, Any]) -> None:
    result = await client.execute_operation(
        "analytics_db",
        {
            "connection_id": "analytics_db",
            "operation": "query",
            "data": {},
            "parameters": {
                "query": "SELECT * FROM user_events WHERE date >= $1",
                "query_params": ["2024-01-01"],
            },
        },
    )

    assert result.status == "success", result.error
    rows = result.result_data["rows"]
    assert sorted(r["user_id"] for r in rows) == [2, 3]
    assert {r["date"] for r in rows} == {"2024-01-01", "2024-02-01"}
    assert result.records_processed == 2


async def test_csv_ingest_of_a_real_multiline_file(client: FleetClient) -> None:
    await client.create_connector({"service_type": "csv", "service_name": "data_ingest"})
    csv_content = 'id,name,score\n1,Ada,9.5\n2,"Lovelace, Ada",8\n3,"multi\nline",7.25\n'

    result = await client.execute_operation(
        "data_ingest",
        {
            "connection_id": "data_ingest",
            "operation": "ingest",
            "data": {"file_data": csv_content},
            "parameters": {"has_headers": True, "delimiter": ","},
        },
    )

    assert result.status == "success", result.error
    assert result.records_processed == 3
    assert result.result_data["records"] == [
        {"id": 1, "name": "Ada", "score": 9.5},
        {"id": 2, "name": "Lovelace, Ada", "score": 8.0},
        {"id": 3, "name": "multi\nline", "score": 7.25},
    ]


async def test_200_concurrent_calls_from_one_client_are_all_answered_correctly(
    client: FleetClient, registered: dict[str, Any]
) -> None:
    requests = [
        {"operation": "query", "parameters": {"query": "SELECT $1::int * 2 AS doubled", "query_params": [i]}}
        for i in range(200)
    ]

    results = await asyncio.gather(*(client.execute_operation("analytics_db", r) for r in requests))

    assert all(r.status == "success" for r in results), [r.error for r in results if r.error][:3]
    assert [r.result_data["rows"][0]["doubled"] for r in results] == [2 * i for i in range(200)]
    assert len({r.operation_id for r in results}) == 200


async def _raw_call(vhost: Vhost, message_type: str, body: bytes) -> dict[str, Any]:
    async with await RpcClient.connect(vhost.amqp_url) as rpc:
        return await rpc.call_raw(message_type, body, timeout=1.0)


async def test_malformed_json_gets_a_typed_error_reply_within_a_second(vhost: Vhost, fleet: object) -> None:
    reply = await _raw_call(vhost, MessageType.OPERATION_EXECUTE, b'{"operation": "query", ')

    assert reply["status"] == "failed"
    assert reply["error"]["category"] == "permanent"
    assert reply["error"]["code"] == "INVALID_JSON"


async def test_unknown_message_type_gets_a_typed_error_reply(vhost: Vhost, fleet: object) -> None:
    reply = await _raw_call(vhost, "connector.explode", b"{}")

    assert reply["error"]["code"] == "UNKNOWN_MESSAGE_TYPE"


async def test_unknown_operation_gets_a_permanent_error_within_a_second(
    client: FleetClient, registered: dict[str, Any]
) -> None:
    result = await client.execute_operation("analytics_db", {"operation": "teleport"}, timeout=1.0)

    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.category, result.error.code) == ("permanent", "UNKNOWN_OPERATION")
    assert result.error.retryable is False


async def test_unknown_service_name_is_a_configuration_error_within_a_second(
    vhost: Vhost, fleet: object
) -> None:
    body = json.dumps({"service_name": "no_such_db", "operation": "query"}).encode()

    reply = await _raw_call(vhost, MessageType.OPERATION_EXECUTE, body)

    assert reply["status"] == "failed"
    assert (reply["error"]["category"], reply["error"]["code"]) == ("configuration", "CONNECTOR_NOT_FOUND")


async def test_unknown_top_level_field_is_refused(client: FleetClient, registered: dict[str, Any]) -> None:
    result = await client.execute_operation("analytics_db", {"operation": "query", "surprise": 1})

    assert result.error is not None and result.error.code == "INVALID_REQUEST"


async def test_secrets_are_never_stored_or_returned_in_clear(
    client: FleetClient, registered: dict[str, Any], redis_url: str
) -> None:
    listed = await client.list_connectors()
    fetched = await client.get_connector("analytics_db")
    assert CANARY_PASSWORD not in json.dumps([c.model_dump() for c in listed])
    assert CANARY_PASSWORD not in fetched.model_dump_json()
    assert fetched.config["password"] == "**********"

    store = aioredis.Redis.from_url(redis_url)
    try:
        # DUMP gives every key's serialized value whatever its type: the bytes Redis itself holds.
        dumped = [repr(await store.dump(key)) async for key in store.scan_iter("scf:*")]
    finally:
        await store.aclose()
    assert dumped, "the registry wrote nothing to Redis"
    assert not any(CANARY_PASSWORD in d for d in dumped)


async def test_connector_metrics_have_every_spec_key(client: FleetClient, registered: dict[str, Any]) -> None:
    await client.execute_operation(
        "analytics_db", {"operation": "query", "parameters": {"query": "SELECT 1"}}
    )

    # Workers flush their tallies about once a second (SCF_METRICS_FLUSH_INTERVAL): poll, bounded.
    for _ in range(100):
        metrics = (await client.get_metrics("analytics_db")).model_dump()
        if metrics["total_operations"] >= 1:
            break
        await asyncio.sleep(0.05)

    assert set(metrics) >= SPEC_METRICS_KEYS
    assert metrics["total_operations"] >= 1
    assert metrics["successful_operations"] >= 1
    assert metrics["uptime_percentage"] == 100.0  # the create-time test passed


async def test_stored_result_is_fetchable_by_operation_id(
    client: FleetClient, registered: dict[str, Any]
) -> None:
    result = await client.execute_operation(
        "analytics_db", {"operation": "query", "parameters": {"query": "SELECT 7"}}
    )

    stored = await client.get_result(result.operation_id)

    assert stored.model_dump() == result.model_dump()


async def test_deleted_connector_is_gone_for_callers(client: FleetClient) -> None:
    await client.create_connector(
        {"service_type": "csv", "service_name": "short_lived", "test_on_create": False}
    )
    await client.delete_connector("short_lived")

    with pytest.raises(ConfigurationError):
        await client.get_connector("short_lived")
    result = await client.execute_operation("short_lived", {"operation": "preview"})
    assert result.error is not None and result.error.code == "CONNECTOR_NOT_FOUND"


async def test_updated_connector_is_picked_up_by_workers(client: FleetClient) -> None:
    body: dict[str, Any] = {
        "service_type": "postgresql",
        "service_name": "moving_db",
        "host": "127.0.0.1",
        "database": "test",
        "username": "postgres",
    }
    await client.create_connector(body)
    before = await client.execute_operation(
        "moving_db", {"operation": "query", "parameters": {"query": "SELECT current_database() AS db"}}
    )

    updated = await client.update_connector({**body, "database": "postgres"})
    after = await client.execute_operation(
        "moving_db", {"operation": "query", "parameters": {"query": "SELECT current_database() AS db"}}
    )

    assert updated.status == "updated"
    assert before.result_data["rows"] == [{"db": "test"}]
    assert after.result_data["rows"] == [{"db": "postgres"}]


async def test_paused_connector_answers_connector_paused_until_resumed(client: FleetClient) -> None:
    await client.create_connector(
        {"service_type": "csv", "service_name": "pausable", "test_on_create": False}
    )
    request = {"operation": "preview", "data": {"file_data": "a\n1\n"}}

    await client.pause_connector("pausable")
    paused = await client.execute_operation("pausable", request)
    await client.resume_connector("pausable")
    resumed = await client.execute_operation("pausable", request)

    assert paused.error is not None and paused.error.code == "CONNECTOR_PAUSED"
    assert resumed.status == "success", resumed.error


async def test_creating_an_existing_name_is_refused(client: FleetClient) -> None:
    await client.create_connector({"service_type": "csv", "service_name": "twice", "test_on_create": False})

    with pytest.raises(PermanentError) as caught:
        await client.create_connector({"service_type": "csv", "service_name": "twice"})

    assert caught.value.code == "CONNECTOR_EXISTS"


async def test_bad_connector_config_is_a_configuration_error_naming_the_field(client: FleetClient) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await client.create_connector(
            {
                "service_type": "postgresql",
                "service_name": "bad",
                "port": 99999,
                "host": "h",
                "password": "pw-canary-31",
            }
        )

    assert "port" in caught.value.message
    assert "pw-canary-31" not in caught.value.message


async def test_unreachable_database_reports_failed_connection_status(client: FleetClient) -> None:
    created = await client.create_connector(
        {
            "service_type": "postgresql",
            "service_name": "nowhere_db",
            "host": "127.0.0.1",
            "port": 1,
            "username": "postgres",
            "connection_timeout": 2,
            "retry_attempts": 0,
        }
    )
    tested = await client.test_connection("nowhere_db")

    info = created.created.connector_info
    assert info.connection_status == "failed"
    assert info.test_error is not None and info.test_error.category == "transient"
    assert tested.status == "failed"
    assert tested.test_results["connection_test"] == "failed"
