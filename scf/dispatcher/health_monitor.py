"""The health monitor: tests every connector through the fleet on a schedule and raises alerts.

One instance is active across all dispatcher replicas (a Redis lease). Each sweep sends `connector.test`
through the real path (a worker of the type), lets `decide_status` turn the recorded results into
healthy/unhealthy, and on every change publishes `health.<name>` on `scf.events` and, if configured,
posts the same JSON to an alert webhook.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import structlog

from scf.dispatcher.control import EventPublisher
from scf.dispatcher.worker_check import check_through_worker
from scf.fleet import keys
from scf.fleet.health import HealthStore, decide_status
from scf.fleet.metrics import CONNECTOR_HEALTHY
from scf.fleet.rpc import RpcClient
from scf.fleet.state import StateStore
from scf.schemas import topology
from scf.schemas.control import ConnectorState, HealthStatus
from scf.schemas.errors import ConnectorError, ErrorCode, ErrorInfo, TransientError
from scf.schemas.operation import SKIPPED_VERDICTS, ConnectionTestResult

log = structlog.get_logger(__name__)

# Extend the lease if we hold it, take it if nobody does: one atomic step.
_LEASE_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

LEASE_NAME = "health-monitor"
MAX_PARALLEL_CHECKS = 16


class HealthMonitor:
    def __init__(
        self,
        state: StateStore,
        rpc: RpcClient,
        publish_event: EventPublisher,
        *,
        interval: float,
        threshold: float,
        webhook: str | None = None,
    ) -> None:
        self.state = state
        self.health = HealthStore(state)
        self.rpc = rpc
        self.publish_event = publish_event
        self.interval = interval
        self.threshold = threshold
        self.webhook = webhook
        self.holder = f"monitor-{uuid.uuid4().hex[:12]}"
        self._lease = state.script(_LEASE_SCRIPT)

    async def run(self) -> None:
        """Sweep every interval while this instance holds the lease; never raises."""
        while True:
            try:
                if await self.hold_lease():
                    await self.sweep()
            except ConnectorError as exc:
                log.warning("health_sweep_failed", code=exc.code, detail=exc.detail)
            except Exception:
                log.exception("health_sweep_crashed")
            await asyncio.sleep(self.interval)

    async def hold_lease(self) -> bool:
        ttl_ms = int(self.interval * 3 * 1000)
        try:
            return bool(await self._lease(keys=[keys.lease(LEASE_NAME)], args=[self.holder, ttl_ms]))
        except Exception as exc:
            log.warning("health_lease_failed", error=repr(exc))
            return False

    async def sweep(self) -> None:
        connectors = [c for c in await self.state.list_connectors() if not c.paused]
        gate = asyncio.Semaphore(MAX_PARALLEL_CHECKS)

        async def one(connector: ConnectorState) -> None:
            async with gate:
                await self.check(connector)

        await asyncio.gather(*(one(c) for c in connectors))

    async def check(self, connector: ConnectorState) -> HealthStatus | None:
        """Test one connector through the fleet and publish a status change. None if it was not tested."""
        if await self.state.live_workers(connector.service_type) == 0:
            log.info("health_check_skipped", service_name=connector.service_name, reason="no live worker")
            return None
        reply = await self._test(connector)
        now = time.time()
        health = (
            await self.health.state(connector.service_name)
            if reply
            else await self.health.record(_unanswered(connector.service_name), now)
        )
        previous = health.status
        status = decide_status(health, previous, now, self.threshold)
        if status != "unknown":
            CONNECTOR_HEALTHY.labels(connector.service_name).set(1 if status == "healthy" else 0)
        if status != previous:
            await self.health.set_status(connector.service_name, status)
            await self._alert(connector, status, previous, health.response_time, health.last_error)
        return status

    async def _test(self, connector: ConnectorState) -> bool:
        """Ask a worker for a connection test (it records the result). False when nobody answered."""
        timeout = min(self.interval, 30.0)
        try:
            await check_through_worker(
                self.rpc, connector.service_name, connector.service_type, connector.version, timeout
            )
        except ConnectorError as exc:
            log.info("health_check_unanswered", service_name=connector.service_name, code=exc.code)
            return False
        return True

    async def _alert(
        self,
        connector: ConnectorState,
        status: HealthStatus,
        previous: HealthStatus,
        response_time: float | None,
        error: ErrorInfo | None,
    ) -> None:
        event = {
            "service_name": connector.service_name,
            "service_type": connector.service_type,
            "status": status,
            "previous": previous,
            "at": time.time(),
            "response_time": response_time,
            "error": error.model_dump(mode="json") if error is not None else None,
        }
        # getting better (or first seen healthy) is news, not a warning; getting worse is
        level = log.info if status == "healthy" else log.warning
        level("health_changed", service_name=connector.service_name, status=status, previous=previous)
        try:
            await self.publish_event(topology.health_event(connector.service_name), event)
        except Exception as exc:
            log.warning("health_event_failed", error=repr(exc))
        if self.webhook:
            await self._post_webhook(event)

    async def _post_webhook(self, event: dict[str, Any]) -> None:
        # The webhook is operator configuration, not user input; it gets a short timeout and no retries.
        try:
            async with httpx.AsyncClient(timeout=5.0, trust_env=False) as http:
                response = await http.post(self.webhook or "", json=event)
            log.info("alert_posted", status_code=response.status_code)
        except httpx.HTTPError as exc:
            log.warning("alert_post_failed", error=repr(exc))


def _unanswered(service_name: str) -> ConnectionTestResult:
    """What a test that no worker answered in time counts as."""
    error = TransientError("no worker answered the health check in time", code=ErrorCode.TIMEOUT)
    return ConnectionTestResult(
        service_name=service_name,
        status="failed",
        response_time=0.0,
        test_results={**SKIPPED_VERDICTS, "connection_test": "failed"},
        error=error.to_info(),
    )
