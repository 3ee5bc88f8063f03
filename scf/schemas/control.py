"""Control-plane bodies: message types, connector references and the spec's REST response shapes.

AMQP and HTTP callers get the same JSON, so these models are the single definition of both.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from scf.schemas.connection import SERVICE_NAME_PATTERN
from scf.schemas.errors import ConnectorError, ErrorInfo


class MessageType(StrEnum):
    """The AMQP `type` property of every request (docs/architecture.md, the message path)."""

    OPERATION_EXECUTE = "operation.execute"
    OPERATION_RESULT = "operation.result"
    CONNECTOR_CREATE = "connector.create"
    CONNECTOR_UPDATE = "connector.update"
    CONNECTOR_GET = "connector.get"
    CONNECTOR_DELETE = "connector.delete"
    CONNECTOR_PAUSE = "connector.pause"
    CONNECTOR_RESUME = "connector.resume"
    CONNECTOR_LIST = "connector.list"
    CONNECTOR_TEST = "connector.test"
    CONNECTOR_METRICS = "connector.metrics"
    CONNECTOR_STATUS = "connector.status"
    FLEET_METRICS = "fleet.metrics"
    OPERATION_CANCEL = "operation.cancel"
    DLQ_LIST = "dlq.list"
    DLQ_REPLAY = "dlq.replay"
    DLQ_PURGE = "dlq.purge"


#: Calls a worker of the connector's service type answers; the dispatcher answers all the others.
WORKER_CALLS = frozenset({MessageType.OPERATION_EXECUTE, MessageType.CONNECTOR_TEST})


class ConnectorRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_name: str = Field(pattern=SERVICE_NAME_PATTERN)


class OperationRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operation_id: str = Field(min_length=1, max_length=128)


class ListFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_type: str | None = None


class CheckEnvelope(BaseModel):
    """What the dispatcher forwards to a worker for `connector.test`."""

    model_config = ConfigDict(extra="forbid")

    service_name: str
    service_type: str
    connector_version: int
    deadline: float


ConnectionStatus = Literal["connected", "failed", "untested"]


class ConnectorInfo(BaseModel):
    service_type: str
    host: str | None
    port: int | None
    connection_status: ConnectionStatus
    test_error: ErrorInfo | None = None


class ConnectorCreated(BaseModel):
    """The spec's `POST /connectors` response.

    `connection_ok` says how the connection test a worker ran at create/update went: true (it
    connected), false (it failed: the connector is stored all the same, fix it with an update; the
    reason is `connector_info.test_error`), null (not tested: `test_on_create` off, or no worker of
    the type was alive). Always present, so a caller cannot miss a connector that cannot connect.
    """

    service_name: str
    status: Literal["created", "updated"]
    connection_ok: bool | None
    connector_info: ConnectorInfo


class ConnectorState(BaseModel):
    """One registry entry as callers see it: config with secrets masked, plus fleet state."""

    service_name: str
    service_type: str
    version: int
    paused: bool
    config: dict[str, Any]


class ConnectorList(BaseModel):
    connectors: list[ConnectorState]
    total: int


class Acknowledged(BaseModel):
    service_name: str
    status: Literal["deleted", "paused", "resumed"]


class CancelRequested(BaseModel):
    """`operation.cancel`: a queued operation will not run; a running one stops at its next batch.

    `already_finished`: the operation had finished, nothing was stopped (its result stands). An id the
    fleet does not know (or another caller's) is refused NOT_FOUND instead.
    """

    operation_id: str
    status: Literal["cancel_requested", "already_finished"] = "cancel_requested"


class ConnectorMetrics(BaseModel):
    """Every key of the spec's performance-metrics dict."""

    service_name: str
    total_connections: int = 0
    active_connections: int = 0
    total_operations: int = 0
    successful_operations: int = 0
    failed_operations: int = 0
    average_response_time: float = 0.0
    uptime_percentage: float | None = None
    error_count: int = 0
    # beyond the spec's keys: the last minute, from every worker
    p50_response_time: float | None = None
    p95_response_time: float | None = None
    operations_per_second: float = 0.0
    error_rate: float = Field(default=0.0, description="failed_operations / total_operations")


HealthStatus = Literal["healthy", "unhealthy", "unknown"]


class HealthState(BaseModel):
    """What the health monitor last saw of a connector."""

    status: HealthStatus = "unknown"
    last_check_at: float | None = None
    last_ok_at: float | None = None
    first_check_at: float | None = None
    response_time: float | None = None
    consecutive_failures: int = 0
    last_error: ErrorInfo | None = None


class ConnectorStatus(BaseModel):
    """`GET /connectors/{name}/status`: health, last error and who can serve the connector."""

    service_name: str
    service_type: str
    version: int
    paused: bool
    health: HealthState
    last_error: ErrorInfo | None = None
    last_error_at: float | None = None
    live_workers: int


class FleetMetrics(BaseModel):
    connectors: list[ConnectorMetrics]
    total_operations: int
    successful_operations: int
    failed_operations: int
    average_response_time: float
    live_workers: dict[str, int]


class FailedReply(BaseModel):
    """Any control-plane failure."""

    status: Literal["failed"] = "failed"
    error: ErrorInfo

    @classmethod
    def of(cls, error: ConnectorError) -> FailedReply:
        return cls(error=error.to_info())
