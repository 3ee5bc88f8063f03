"""The HTTP gateway driven with httpx against a running fleet: every endpoint, status codes, no secrets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.pg_schema import own_schema
from tests.support.services import PG_DSN
from tests.support.spec import SPEC_CREATE_BODY, SPEC_INSERT_REQUEST

pytestmark = pytest.mark.integration

CANARY = "gateway-canary-pw-91c2"
PG = {
    "service_type": "postgresql",
    "host": "127.0.0.1",
    "database": "test",
    "username": "postgres",
    "password": CANARY,
    "custom_config": {"schema": "public"},
}


class Recorder(httpx.AsyncClient):
    """An httpx client that keeps every response body, to prove no secret ever leaves."""

    bodies: list[str]

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = await super().send(request, **kwargs)
        await response.aread()
        self.bodies.append(response.text)
        return response


@pytest.fixture(scope="module")
async def http(gateway_url: str) -> AsyncIterator[Recorder]:
    async with Recorder(base_url=gateway_url, timeout=30) as client:
        client.bodies = []
        yield client
        assert client.bodies, "no response was recorded"
        assert not [b for b in client.bodies if CANARY in b], "a response carried the canary password"


@pytest.fixture(scope="module")
async def gw_db(http: Recorder) -> str:
    response = await http.post("/connectors", json={**PG, "service_name": "gw_db"})
    assert response.status_code == 201, response.text
    return "gw_db"


async def test_create_returns_201_with_the_spec_shape(http: Recorder) -> None:
    body = {
        **SPEC_CREATE_BODY,
        "service_name": "gw_spec",
        "host": "127.0.0.1",
        "database": "test",
        "username": "postgres",
        "password": CANARY,
        "ssl_enabled": False,
    }

    response = await http.post("/connectors", json=body)

    assert response.status_code == 201
    assert response.json() == {
        "service_name": "gw_spec",
        "status": "created",
        "connection_ok": True,
        "connector_info": {
            "service_type": "postgresql",
            "host": "127.0.0.1",
            "port": 5432,
            "connection_status": "connected",
            "test_error": None,
        },
    }


async def test_create_twice_is_409_and_bad_body_is_422(http: Recorder, gw_db: str) -> None:
    again = await http.post("/connectors", json={**PG, "service_name": gw_db})
    bad = await http.post("/connectors", json={**PG, "service_name": "x", "port": "not-a-port"})
    unknown_field = await http.post("/connectors", json={**PG, "service_name": "y", "surprise": True})

    assert again.status_code == 409 and again.json()["error"]["code"] == "CONNECTOR_EXISTS"
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "INVALID_REQUEST"
    assert "port" in bad.json()["error"]["message"]
    assert unknown_field.status_code == 422


async def test_list_and_get_mask_secrets(http: Recorder, gw_db: str) -> None:
    listed = await http.get("/connectors")
    fetched = await http.get(f"/connectors/{gw_db}")

    assert listed.status_code == 200
    assert gw_db in [c["service_name"] for c in listed.json()["connectors"]]
    assert fetched.status_code == 200
    assert fetched.json()["config"]["password"] == "**********"


@pytest.fixture(scope="module")
async def spec_rows(http: Recorder) -> AsyncIterator[tuple[str, str]]:
    """The spec's `user_analytics`, in a schema of this module's own (a user's table is never touched)."""
    async with own_schema(PG_DSN) as schema:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(
                f"CREATE TABLE {schema}.user_analytics "
                "(user_id int PRIMARY KEY, action text, timestamp timestamptz)"
            )
        finally:
            await conn.close()
        body = {**PG, "service_name": "gw_spec_rows", "custom_config": {"schema": schema}}
        response = await http.post("/connectors", json=body)
        assert response.status_code == 201, response.text
        try:
            yield "gw_spec_rows", schema
        finally:
            await http.delete("/connectors/gw_spec_rows")


async def test_execute_the_spec_insert_and_fetch_its_stored_result(
    http: Recorder, spec_rows: tuple[str, str]
) -> None:
    service, schema = spec_rows
    request = {**SPEC_INSERT_REQUEST, "connection_id": service}

    response = await http.post(f"/connectors/{service}/execute", json=request)
    stored = await http.get(f"/operations/{response.json()['operation_id']}")
    conn = await asyncpg.connect(PG_DSN)
    try:
        count = await conn.fetchval(f"SELECT count(*) FROM {schema}.user_analytics")
    finally:
        await conn.close()

    assert response.status_code == 200, response.text
    assert response.json()["result_data"] == {"inserted_rows": 1, "updated_rows": 0}
    assert stored.status_code == 200 and stored.json() == response.json()
    assert count == 1


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/connectors/gw_db/execute", {"operation": "teleport"}, 400, "UNKNOWN_OPERATION"),
        ("/connectors/nope_db/execute", {"operation": "query"}, 404, "CONNECTOR_NOT_FOUND"),
        ("/connectors/gw_db/execute", {"operation": "query", "extra": 1}, 422, "INVALID_REQUEST"),
        (
            "/connectors/gw_db/execute",
            {"operation": "query", "connection_id": "other"},
            422,
            "INVALID_REQUEST",
        ),
        (
            "/connectors/gw_db/execute",
            {"operation": "query", "parameters": {"query": "SELECT * FROM no_such_table_gw"}},
            400,
            None,
        ),
    ],
)
async def test_status_codes_follow_the_error_category(
    http: Recorder, gw_db: str, path: str, body: dict[str, Any], status: int, code: str | None
) -> None:
    response = await http.post(path, json=body)

    assert response.status_code == status, response.text
    assert response.json()["status"] == "failed"
    if code is not None:
        assert response.json()["error"]["code"] == code


async def test_idempotency_key_header_must_agree_with_the_body(http: Recorder, gw_db: str) -> None:
    response = await http.post(
        f"/connectors/{gw_db}/execute",
        json={"operation": "query", "parameters": {"query": "SELECT 1"}, "idempotency_key": "a"},
        headers={"Idempotency-Key": "b"},
    )
    agreed = await http.post(
        f"/connectors/{gw_db}/execute",
        json={"operation": "query", "parameters": {"query": "SELECT 1"}},
        headers={"Idempotency-Key": "k-1"},
    )

    assert response.status_code == 422
    assert agreed.status_code == 200


async def test_pause_answers_409_until_resume(http: Recorder, gw_db: str) -> None:
    query = {"operation": "query", "parameters": {"query": "SELECT 1"}}

    paused = await http.post(f"/connectors/{gw_db}/pause")
    refused = await http.post(f"/connectors/{gw_db}/execute", json=query)
    resumed = await http.post(f"/connectors/{gw_db}/resume")
    served = await http.post(f"/connectors/{gw_db}/execute", json=query)

    assert paused.json() == {"service_name": gw_db, "status": "paused"}
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "CONNECTOR_PAUSED"
    assert resumed.status_code == 200 and served.status_code == 200


async def test_put_updates_and_workers_pick_it_up(http: Recorder) -> None:
    await http.post("/connectors", json={**PG, "service_name": "gw_move"})
    put = await http.put(
        "/connectors/gw_move", json={**PG, "service_name": "gw_move", "database": "postgres"}
    )
    mismatch = await http.put("/connectors/gw_move", json={**PG, "service_name": "other"})
    result = await http.post(
        "/connectors/gw_move/execute",
        json={"operation": "query", "parameters": {"query": "SELECT current_database() AS d"}},
    )

    assert put.status_code == 200 and put.json()["status"] == "updated"
    assert mismatch.status_code == 422
    assert result.json()["result_data"]["rows"] == [{"d": "postgres"}]


async def test_test_status_and_metrics_endpoints(http: Recorder, gw_db: str) -> None:
    tested = await http.post(f"/connectors/{gw_db}/test")
    status = await http.get(f"/connectors/{gw_db}/status")
    # Workers flush their tallies about once a second (SCF_METRICS_FLUSH_INTERVAL): earlier operations
    # on this connector show up within a few flushes.
    for _ in range(100):
        metrics = await http.get(f"/connectors/{gw_db}/metrics")
        if metrics.json()["total_operations"] >= 1:
            break
        await asyncio.sleep(0.05)
    fleet = await http.get("/metrics")
    prometheus = await http.get("/metrics/prometheus")

    assert tested.json()["status"] == "success"
    assert set(tested.json()["test_results"]) == {
        "connection_test",
        "authentication_test",
        "permissions_test",
    }
    assert status.json()["live_workers"] >= 1
    assert status.json()["health"]["last_check_at"] is not None
    assert status.json()["health"]["status"] == "healthy"  # the test just passed
    assert metrics.json()["total_operations"] >= 1
    assert metrics.json()["p50_response_time"] is not None
    assert fleet.json()["total_operations"] >= metrics.json()["total_operations"]
    assert prometheus.status_code == 200 and "scf_inflight_operations" in prometheus.text


async def test_delete_then_404(http: Recorder) -> None:
    await http.post(
        "/connectors", json={"service_type": "csv", "service_name": "gw_gone", "test_on_create": False}
    )

    deleted = await http.delete("/connectors/gw_gone")
    missing = await http.get("/connectors/gw_gone")
    missing_result = await http.get("/operations/op_does_not_exist")

    assert deleted.json() == {"service_name": "gw_gone", "status": "deleted"}
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "CONNECTOR_NOT_FOUND"
    assert missing_result.status_code == 404


async def test_connector_types_and_dry_run_validation(http: Recorder) -> None:
    types = await http.get("/connector-types")
    good = await http.post("/connector-types/postgresql/validate", json={**PG, "service_name": "v"})
    bad = await http.post(
        "/connector-types/postgresql/validate",
        json={**PG, "service_name": "v", "port": 99999, "custom_config": {"schema": "a b"}},
    )
    unknown = await http.post("/connector-types/oracle/validate", json={})

    by_type = {t["service_type"]: t["config_schema"] for t in types.json()}
    assert {"postgresql", "csv"} <= set(by_type)
    assert "schema" in by_type["postgresql"]["properties"]["custom_config"]["properties"]
    assert good.json() == {"service_type": "postgresql", "valid": True, "errors": []}
    assert {e["field"] for e in bad.json()["errors"]} == {"port", "custom_config.schema"}
    assert unknown.status_code == 404
    # every type publishes its declared operations, with schemas and traits
    operations = {t["service_type"]: {o["name"]: o for o in t["operations"]} for t in types.json()}
    assert all(operations[t] for t in by_type)
    query = operations["postgresql"]["query"]
    assert query["traits"] == {
        "reads": True,
        "writes": False,
        "idempotent": True,
        "long_running": False,
        "pages": True,
    }
    assert {"query", "page_size"} <= set(query["parameters_schema"]["properties"])
    insert = operations["postgresql"]["insert"]
    assert {"from": "data.table_name", "to": "parameters.table", "deprecated": False} in insert["aliases"]


async def test_probes_and_docs(http: Recorder) -> None:
    assert (await http.get("/healthz")).json() == {"status": "alive"}
    assert (await http.get("/readyz")).json() == {"status": "ready"}
    assert (await http.get("/docs")).status_code == 200
    asyncapi = (await http.get("/asyncapi.json")).json()
    declared = {o["name"] for o in asyncapi["channels"]["scf.ops.redis"]["x-operations"]}
    assert {"get", "set", "scan"} <= declared
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert {
        "/connectors",
        "/connectors/{service_name}/execute",
        "/metrics",
        "/operations/{operation_id}",
    } <= set(paths)


async def test_audit_trail_names_the_http_caller_and_logs_hold_no_secret(
    http: Recorder, gw_db: str, logs: Path
) -> None:
    executed = await http.post(
        f"/connectors/{gw_db}/execute", json={"operation": "query", "parameters": {"query": "SELECT 2"}}
    )
    operation_id = executed.json()["operation_id"]

    lines: list[str] = []
    for _ in range(50):  # until the worker's audit line for this operation is on disk
        lines = [line for path in logs.glob("*.log") for line in path.read_text().splitlines()]
        if any(operation_id in line and '"event": "audit"' in line for line in lines):
            break
        await asyncio.sleep(0.05)
    audits = [json.loads(line) for line in lines if '"event": "audit"' in line]

    assert not [line for line in lines if CANARY in line], "a log line carried the canary password"
    assert any(
        a["what"] == "connector.create" and a["caller"] == "http:127.0.0.1" and a["user"] == "guest"
        for a in audits
    )
    assert any(
        a["what"] == "operation.execute" and a["service_name"] == gw_db and a["outcome"] == "success"
        for a in audits
    )


async def test_dead_letters_and_cancel_over_http(http: Recorder, gw_db: str) -> None:
    unknown = await http.post("/operations/op_gw_cancel_1/cancel")  # a cancel binds to an operation
    executed = await http.post(
        f"/connectors/{gw_db}/execute",
        json={"operation": "query", "operation_id": "op_gw_cancel_1", "parameters": {"query": "SELECT 1"}},
    )
    cancelled = await http.post("/operations/op_gw_cancel_1/cancel")
    listed = await http.get("/dead-letters", params={"service_name": gw_db, "reason": "expired", "limit": 5})
    bad_reason = await http.get("/dead-letters", params={"reason": "bored"})
    nothing_chosen = await http.post("/dead-letters/purge", json={})
    absent = "dl_" + "0" * 32
    missing = await http.post("/dead-letters/replay", json={"ids": [absent]})
    malformed = await http.post("/dead-letters/replay", json={"ids": ["dl_nope:sealed"]})

    assert unknown.status_code == 404 and executed.status_code == 200
    # it ran to the end before the cancel came: nothing was left to stop, and the answer says so
    assert (cancelled.status_code, cancelled.json()) == (
        202,
        {"operation_id": "op_gw_cancel_1", "status": "already_finished"},
    )
    assert listed.status_code == 200 and listed.json()["total"] == len(listed.json()["dead_letters"])
    assert bad_reason.status_code == 422
    assert nothing_chosen.status_code == 422
    assert (missing.status_code, missing.json()["missing"], missing.json()["done"]) == (200, [absent], 0)
    assert malformed.status_code == 422
