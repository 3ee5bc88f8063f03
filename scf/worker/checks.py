"""A connection test (`connector.test`) run by a worker: the connector's own check, within the deadline."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage

from scf.fleet.health import HealthStore
from scf.fleet.replies import failure_reply
from scf.schemas.access import Principal
from scf.schemas.control import CheckEnvelope
from scf.schemas.errors import ConnectorError, ErrorCode, PermanentError, TransientError
from scf.schemas.operation import SKIPPED_VERDICTS, ConnectionTestResult, TestVerdict
from scf.worker.cache import ConnectorCache
from scf.worker.door import MASKED, shown_to

log = structlog.get_logger(__name__)

#: The longest a connection test may take here (the dispatcher asks for at most 10 s).
MAX_CHECK_SECONDS = 60.0


async def run_check(
    message: AbstractIncomingMessage,
    cache: ConnectorCache,
    health: HealthStore,
    principal: Principal | None = None,
) -> bytes:
    """The reply body of one connection test; its verdict is recorded as the connector's health.
    A caller without `connectors:admin` is told any failed connection as one masked answer, the same
    body after the test's full time (a refused port answers no sooner than a silent one)."""
    started = time.monotonic()
    try:
        envelope = CheckEnvelope.model_validate_json(message.body)
    except ValueError:
        return failure_reply(
            message, PermanentError("unreadable test request", code=ErrorCode.INVALID_REQUEST)
        )
    # A raw publisher writes its own deadline: a test never holds this worker's slot past the cap
    budget = min(max(0.1, envelope.deadline - time.time()), MAX_CHECK_SECONDS)
    try:
        connector = await cache.get(envelope.service_name, envelope.connector_version, allow_paused=True)
    except ConnectorError as exc:  # unknown, unreadable: nothing was connected to
        return failure_reply(message, exc)
    pad = min(budget, connector.connection.connection_timeout)  # what a masked answer waits out
    try:
        async with asyncio.timeout(budget):
            result = await connector.check()
    except TimeoutError:
        failed = TransientError("the connection test did not finish in time", code=ErrorCode.TIMEOUT)
        return await _failed(message, principal, failed, envelope.service_name, (started, pad))
    except ConnectorError as exc:
        return await _failed(message, principal, exc, envelope.service_name, (started, pad))
    try:
        await health.record(result)
    except ConnectorError as exc:
        log.warning("record_failed", service_name=result.service_name, code=exc.code)
    if shown_to(principal, result.error) is MASKED:
        return await _masked(result.service_name, pad - _since(started), pad)
    return _dump(result)


async def _failed(
    message: AbstractIncomingMessage,
    principal: Principal | None,
    error: ConnectorError,
    service_name: str,
    timing: tuple[float, float],
) -> bytes:
    """A test that raised: as is, or masked (`timing`: when it started, its whole time)."""
    started, budget = timing
    if shown_to(principal, error.to_info()) is MASKED:
        return await _masked(service_name, budget - _since(started), budget)
    return failure_reply(message, error)


async def _masked(service_name: str, left: float, budget: float) -> bytes:
    """The one answer a failed connection gets without `connectors:admin`, once the test's time is up."""
    await asyncio.sleep(max(0.0, left))
    verdicts: dict[str, TestVerdict] = {**SKIPPED_VERDICTS, "connection_test": "failed"}
    masked = ConnectionTestResult(
        service_name=service_name,
        status="failed",
        response_time=round(max(0.0, budget), 1),
        test_results=verdicts,
        error=MASKED,
    )
    return _dump(masked)


def _since(started: float) -> float:
    return time.monotonic() - started


def _dump(result: ConnectionTestResult) -> bytes:
    body: dict[str, Any] = result.model_dump(mode="json", exclude_none=True)
    return json.dumps(body).encode()
