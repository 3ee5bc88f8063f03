"""Control-plane calls the dispatcher answers itself: the connector registry, metrics and stored results.

Each handler takes the decoded body and returns the reply model; errors are typed and become a
`FailedReply`. A create asks a worker of the connector's type for a connection test (the real path).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel

from scf.connectors.egress import EgressPolicy, connection_endpoints
from scf.connectors.registry import available_types, is_available
from scf.dispatcher.worker_check import check_through_worker
from scf.fleet.access import ACTING_FOR
from scf.fleet.health import HealthStore, decide_status
from scf.fleet.rpc import RpcClient
from scf.fleet.state import StateStore
from scf.schemas import topology
from scf.schemas.connection import ServiceConnection
from scf.schemas.control import (
    Acknowledged,
    CancelRequested,
    ConnectionStatus,
    ConnectorCreated,
    ConnectorInfo,
    ConnectorList,
    ConnectorRef,
    ConnectorStatus,
    FleetMetrics,
    ListFilter,
    MessageType,
    OperationRef,
)
from scf.schemas.errors import ConfigurationError, ConnectorError, ErrorCode, ErrorInfo
from scf.schemas.validation import parse_model

log = structlog.get_logger(__name__)

#: How long a cancel mark waits for a queued operation (longer than any deadline).
CANCEL_MARK_TTL = 2 * 3600

EventPublisher = Callable[[str, dict[str, Any]], Awaitable[None]]
Handler = Callable[[dict[str, Any]], Awaitable[BaseModel]]
M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], body: dict[str, Any]) -> M:
    return parse_model(model, body, "request")


class ControlPlane:
    def __init__(
        self,
        state: StateStore,
        rpc: RpcClient,
        publish_event: EventPublisher,
        test_timeout: float,
        health_threshold: float = 60.0,
        *,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.health_threshold = health_threshold
        self.egress = egress
        self.state = state
        self.rpc = rpc
        self.publish_event = publish_event
        self.test_timeout = test_timeout
        self.health = HealthStore(state)
        self.handlers: dict[MessageType, Handler] = {
            MessageType.CONNECTOR_CREATE: self.create,
            MessageType.CONNECTOR_UPDATE: self.update,
            MessageType.CONNECTOR_GET: self.get,
            MessageType.CONNECTOR_LIST: self.list,
            MessageType.CONNECTOR_DELETE: self.delete,
            MessageType.CONNECTOR_PAUSE: self.pause,
            MessageType.CONNECTOR_RESUME: self.resume,
            MessageType.CONNECTOR_METRICS: self.metrics,
            MessageType.CONNECTOR_STATUS: self.status,
            MessageType.FLEET_METRICS: self.fleet_metrics,
            MessageType.OPERATION_RESULT: self.result,
            MessageType.OPERATION_CANCEL: self.cancel,
        }

    async def create(self, body: dict[str, Any]) -> ConnectorCreated:
        """Store a new connector; its endpoints must pass the egress policy first (EGRESS_DENIED).

        A name that does not resolve yet is judged by its name here; the worker's connect-time check
        judges its addresses."""
        if self.egress is not None:
            endpoints = connection_endpoints(ServiceConnection.parse(body))
            await self.egress.check(endpoints, require_resolution=False)
        return await self._save(body, create=True)

    async def update(self, body: dict[str, Any]) -> ConnectorCreated:
        """Replace a connector's configuration; the new endpoints pass the egress policy first."""
        if self.egress is not None:
            endpoints = connection_endpoints(ServiceConnection.parse(body))
            await self.egress.check(endpoints, require_resolution=False)
        return await self._save(body, create=False)

    async def _save(self, body: dict[str, Any], *, create: bool) -> ConnectorCreated:
        connection = ServiceConnection.parse(body)
        service_type = connection.service_type
        if not is_available(service_type):
            raise ConfigurationError(
                f"service type {service_type!r} has no connector in this build; available: "
                + ", ".join(available_types()),
                code=ErrorCode.INVALID_CONFIG,
            )
        version = await self.state.save_connector(connection, create=create)
        action = "created" if create else "updated"
        await self.publish_event(
            topology.connector_event(action, connection.service_name), {"version": version}
        )
        log.info(
            f"connector_{action}",
            service_name=connection.service_name,
            service_type=service_type,
            version=version,
        )
        status, error = (
            await self._initial_test(connection, version) if connection.test_on_create else ("untested", None)
        )
        return ConnectorCreated(
            service_name=connection.service_name,
            status=action,
            connection_ok={"connected": True, "failed": False}.get(status),
            connector_info=ConnectorInfo(
                service_type=service_type,
                host=connection.host,
                port=connection.port,
                connection_status=status,
                test_error=error,
            ),
        )

    async def _initial_test(
        self, connection: ServiceConnection, version: int
    ) -> tuple[ConnectionStatus, ErrorInfo | None]:
        service_type = connection.service_type
        if await self.state.live_workers(service_type) == 0:
            return "untested", None
        timeout = min(self.test_timeout, connection.connection_timeout)
        try:
            result = await check_through_worker(
                self.rpc, connection.service_name, service_type, version, timeout
            )
        except ConnectorError as exc:
            return "untested", exc.to_info()
        return ("connected", None) if result.status == "success" else ("failed", result.error)

    async def get(self, body: dict[str, Any]) -> BaseModel:
        return await self.state.connector_state(parse(ConnectorRef, body).service_name)

    async def list(self, body: dict[str, Any]) -> BaseModel:
        connectors = await self.state.list_connectors(parse(ListFilter, body).service_type)
        return ConnectorList(connectors=connectors, total=len(connectors))

    async def delete(self, body: dict[str, Any]) -> BaseModel:
        name = parse(ConnectorRef, body).service_name
        await self.state.delete_connector(name)
        await self.publish_event(topology.connector_event("deleted", name), {})
        log.info("connector_deleted", service_name=name)
        return Acknowledged(service_name=name, status="deleted")

    async def pause(self, body: dict[str, Any]) -> BaseModel:
        name = parse(ConnectorRef, body).service_name
        await self.state.set_paused(name, True)
        await self.publish_event(topology.connector_event("paused", name), {})
        return Acknowledged(service_name=name, status="paused")

    async def resume(self, body: dict[str, Any]) -> BaseModel:
        name = parse(ConnectorRef, body).service_name
        await self.state.set_paused(name, False)
        await self.publish_event(topology.connector_event("resumed", name), {})
        return Acknowledged(service_name=name, status="resumed")

    async def metrics(self, body: dict[str, Any]) -> BaseModel:
        return await self.state.metrics(parse(ConnectorRef, body).service_name)

    async def status(self, body: dict[str, Any]) -> BaseModel:
        name = parse(ConnectorRef, body).service_name
        entry = await self.state.entry(name)
        last_error, last_error_at = await self.state.last_error(name)
        health = await self.health.state(name)
        # The monitor sets the status on its sweeps; tests run in between (create, explicit) count too.
        health.status = decide_status(health, health.status, time.time(), self.health_threshold)
        return ConnectorStatus(
            service_name=name,
            service_type=entry.service_type,
            version=entry.version,
            paused=entry.paused,
            health=health,
            last_error=last_error,
            last_error_at=last_error_at,
            live_workers=await self.state.live_workers(entry.service_type),
        )

    async def fleet_metrics(self, body: dict[str, Any]) -> BaseModel:
        parse(ListFilter, body)
        per_connector = [await self.state.metrics(c.service_name) for c in await self.state.list_connectors()]
        total = sum(m.total_operations for m in per_connector)
        weighted = sum(m.average_response_time * m.total_operations for m in per_connector)
        workers = {t: await self.state.live_workers(t) for t in available_types()}
        return FleetMetrics(
            connectors=per_connector,
            total_operations=total,
            successful_operations=sum(m.successful_operations for m in per_connector),
            failed_operations=sum(m.failed_operations for m in per_connector),
            average_response_time=round(weighted / total, 6) if total else 0.0,
            live_workers=workers,
        )

    async def result(self, body: dict[str, Any]) -> BaseModel:
        return await self.state.get_result(parse(OperationRef, body).operation_id, _owner())

    async def cancel(self, body: dict[str, Any]) -> BaseModel:
        """Mark it (for a worker yet to start it) and tell the workers (for one running it). With access
        control on, only the caller's own operation (an admin's: any)."""
        operation_id = parse(OperationRef, body).operation_id
        if not await self.state.cancel(operation_id, CANCEL_MARK_TTL, _owner()):
            return CancelRequested(operation_id=operation_id, status="already_finished")
        await self.publish_event(topology.cancel_event(operation_id), {"operation_id": operation_id})
        return CancelRequested(operation_id=operation_id)


def _owner() -> str | None:
    """The principal whose stored results and operations a call may reach (None: any, access control
    off or an admin's `*`)."""
    principal = ACTING_FOR.get()
    return None if principal is None or principal.is_admin else principal.name
