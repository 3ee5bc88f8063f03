"""One request, one trace: client -> dispatcher -> worker -> connector, linked across the real AMQP hops
by the `traceparent` header (OpenTelemetry SDK, in-memory exporter).

The dispatcher and worker run in this process (so one exporter sees every span) on their own vhost
and Redis database; each role consumes in tasks the broker connection started, not in the caller's
context, so the only way a span finds its parent is the header it was sent with.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import structlog.testing
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from scf.app.runner import Roles, assemble, open_state
from scf.fleet import amqp, tracing
from scf.fleet.client import FleetClient
from scf.fleet.settings import Settings
from tests.integration.conftest import free_port
from tests.support.fleet import fleet_env
from tests.support.postgres import pg_body
from tests.support.services import claim_redis_db, create_vhost, delete_vhost

pytestmark = pytest.mark.integration


@pytest.fixture
async def traced_fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, InMemorySpanExporter]]:
    vhost, db = create_vhost(), claim_redis_db()
    for key, value in fleet_env(vhost.amqp_url, db.url, "", tmp_path / "data").items():
        if key.startswith("SCF_"):
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("SCF_SECRET_KEY", raising=False)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    settings = Settings()
    state = await open_state(settings)
    connection = await amqp.connect(settings.amqp_url, "scf-traced")
    services = assemble(settings, Roles(dispatcher=True, worker_types=["postgresql"]), state, connection)
    try:
        for service in services:
            await service.start()
        yield vhost.amqp_url, exporter
    finally:
        tracing.use(None)
        for service in services:
            await service.stop(5)
        await connection.close()
        await state.close()
        db.release()
        delete_vhost(vhost)


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


async def test_one_request_gives_four_linked_spans(traced_fleet: tuple[str, InMemorySpanExporter]) -> None:
    url, exporter = traced_fleet
    name = f"traced_{uuid.uuid4().hex[:8]}"
    body = pg_body(service_name=name)
    async with await FleetClient.connect(url, fast_path=False) as client:
        await client.create_connector(body)
        exporter.clear()
        result = await client.execute_operation(
            name, {"operation": "query", "parameters": {"query": "SELECT 1 AS one"}}
        )
        assert result.status == "success", result.error
        # the worker's span ends once the message is settled, a moment after the reply went out
        for _ in range(100):
            spans = exporter.get_finished_spans()
            if any(s.name == "scf.worker operation.execute" for s in spans):
                break
            await asyncio.sleep(0.05)
        await client.delete_connector(name)

    client_span = by_name(spans, "scf.client operation.execute")
    dispatcher = by_name(spans, "scf.dispatcher operation.execute")
    worker = by_name(spans, "scf.worker operation.execute")
    connector = by_name(spans, "scf.connector postgresql.query")

    trace_id = client_span.context.trace_id
    assert {s.context.trace_id for s in (dispatcher, worker, connector)} == {trace_id}
    assert client_span.parent is None
    assert dispatcher.parent is not None and dispatcher.parent.span_id == client_span.context.span_id
    assert worker.parent is not None and worker.parent.span_id == dispatcher.context.span_id
    assert connector.parent is not None and connector.parent.span_id == worker.context.span_id
    assert connector.attributes is not None and connector.attributes["scf.service_name"] == name


async def test_tracing_off_adds_no_header(traced_fleet: tuple[str, InMemorySpanExporter]) -> None:
    tracing.use(None)
    headers: dict[str, Any] = {}
    assert tracing.inject(headers) == {} and not tracing.active()


async def test_every_log_line_of_an_operation_names_it(
    traced_fleet: tuple[str, InMemorySpanExporter],
) -> None:
    url, _ = traced_fleet
    name = f"traced_down_{uuid.uuid4().hex[:8]}"
    # nothing listens there: the connector retries, and logs each retry
    body = pg_body(
        service_name=name, port=free_port(), connection_timeout=1, retry_attempts=2, test_on_create=False
    )
    async with await FleetClient.connect(url, fast_path=False) as client:
        await client.create_connector(body)
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            result = await client.execute_operation(
                name, {"operation": "query", "parameters": {"query": "SELECT 1"}, "timeout": 10}
            )
        await client.delete_connector(name)
    assert result.status == "failed"
    retries = [line for line in logs if line["event"] == "operation_retry"]
    assert retries, [line["event"] for line in logs]
    for line in retries:
        assert line["operation_id"] == result.operation_id
        assert line["service_name"] == name and line["service_type"] == "postgresql"
        assert "trace_id" in line  # tracing is on in this fleet
