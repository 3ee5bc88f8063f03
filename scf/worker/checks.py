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
from scf.schemas.operation import ConnectionTestResult
from scf.worker.cache import ConnectorCache
from scf.worker.door import MASKED, shown_to

log = structlog.get_logger(__name__)


async def run_check(
    message: AbstractIncomingMessage,
    cache: ConnectorCache,
    health: HealthStore,
    principal: Principal | None = None,
) -> bytes:
    """The reply body of one connection test; its verdict is recorded as the connector's health.
    A caller without `connectors:admin` is told a failed connection as one masked error, after the
    test's full time (a refused port answers no sooner than a silent one)."""
    started = time.monotonic()
    budget = 0.0
    try:
        envelope = CheckEnvelope.model_validate_json(message.body)
        budget = max(0.1, envelope.deadline - time.time())
        connector = await cache.get(envelope.service_name, envelope.connector_version, allow_paused=True)
        budget = min(budget, connector.connection.connection_timeout)
        async with asyncio.timeout(budget):
            result = await connector.check()
    except TimeoutError:
        error = TransientError("the connection test did not finish in time", code=ErrorCode.TIMEOUT)
        if shown_to(principal, error.to_info()) is MASKED:
            return failure_reply(message, MASKED)
        return failure_reply(message, error)
    except ValueError:
        return failure_reply(
            message, PermanentError("unreadable test request", code=ErrorCode.INVALID_REQUEST)
        )
    except ConnectorError as exc:
        return failure_reply(message, exc)
    try:
        await health.record(result)
    except ConnectorError as exc:
        log.warning("record_failed", service_name=result.service_name, code=exc.code)
    shown = shown_to(principal, result.error)
    if shown is not result.error:
        await asyncio.sleep(max(0.0, budget - (time.monotonic() - started) - 0.05))
        result = result.model_copy(update={"error": shown, "response_time": round(budget, 3)})
    return _dump(result)


def _dump(result: ConnectionTestResult) -> bytes:
    body: dict[str, Any] = result.model_dump(mode="json", exclude_none=True)
    return json.dumps(body).encode()
