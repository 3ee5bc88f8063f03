"""The fleet's AMQP contract as data: every message type's bodies, names and fixed values.

What `build_asyncapi` (this package) documents; checked complete at build time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from pydantic import BaseModel

from scf.schemas import topology
from scf.schemas.connection import ServiceConnection
from scf.schemas.control import (
    WORKER_CALLS,
    Acknowledged,
    CancelRequested,
    CheckEnvelope,
    ConnectorCreated,
    ConnectorList,
    ConnectorMetrics,
    ConnectorRef,
    ConnectorState,
    ConnectorStatus,
    FailedReply,
    FleetMetrics,
    ListFilter,
    MessageType,
    OperationRef,
)
from scf.schemas.dead_letters import DeadLetterOutcome, DeadLetterPage, DeadLetterQuery, DeadLetterSelection
from scf.schemas.operation import ConnectionTestResult, OperationEnvelope, OperationRequest, OperationResult
from scf.schemas.plugins import known_types

ASYNCAPI_VERSION: Final = "2.6.0"
AMQP_BINDING_VERSION: Final = "0.2.0"
DEFAULT_SERVER_URL: Final = "amqp://127.0.0.1:5672/"
SERVER_NAME: Final = "rabbitmq"
JSON: Final = "application/json"
SCHEMA_REF: Final = "#/components/schemas/{model}"
MESSAGE_REF: Final = "#/components/messages/{name}"
REPLY_CHANNEL: Final = "{reply_to}"
#: The AMQP `type` of a reply is the request's type plus this suffix (what `fleet.amqp.reply` sends).
REPLY_TYPE_SUFFIX: Final = ".reply"
#: `type` property of everything published on `scf.events`.
EVENT_TYPE: Final = "event"
#: The actions of `connector.<action>.<name>` events (see `topology.connector_event`).
CONNECTOR_EVENT_ACTIONS: Final = ("created", "updated", "deleted", "paused", "resumed")
#: Header on what reaches `scf.ops` (Unix time the dispatcher forwarded it, or a client published it).
FORWARDED_AT_HEADER: Final = topology.FORWARDED_AT_HEADER

#: The body of each request on `scf.requests` (docs/architecture.md, the message path).
REQUEST_BODIES: Final[Mapping[MessageType, type[BaseModel]]] = {
    MessageType.OPERATION_EXECUTE: OperationRequest,
    MessageType.OPERATION_RESULT: OperationRef,
    MessageType.CONNECTOR_CREATE: ServiceConnection,
    MessageType.CONNECTOR_UPDATE: ServiceConnection,
    MessageType.CONNECTOR_GET: ConnectorRef,
    MessageType.CONNECTOR_DELETE: ConnectorRef,
    MessageType.CONNECTOR_PAUSE: ConnectorRef,
    MessageType.CONNECTOR_RESUME: ConnectorRef,
    MessageType.CONNECTOR_LIST: ListFilter,
    MessageType.CONNECTOR_TEST: ConnectorRef,
    MessageType.CONNECTOR_METRICS: ConnectorRef,
    MessageType.CONNECTOR_STATUS: ConnectorRef,
    MessageType.FLEET_METRICS: ListFilter,
    MessageType.OPERATION_CANCEL: OperationRef,
    MessageType.DLQ_LIST: DeadLetterQuery,
    MessageType.DLQ_REPLAY: DeadLetterSelection,
    MessageType.DLQ_PURGE: DeadLetterSelection,
}

#: The replies each request can get. A data operation always answers with an `OperationResult` (failed
#: ones included); every other call answers with its own body or a `FailedReply`.
REPLY_BODIES: Final[Mapping[MessageType, tuple[type[BaseModel], ...]]] = {
    MessageType.OPERATION_EXECUTE: (OperationResult,),
    MessageType.OPERATION_RESULT: (OperationResult, FailedReply),
    MessageType.CONNECTOR_CREATE: (ConnectorCreated, FailedReply),
    MessageType.CONNECTOR_UPDATE: (ConnectorCreated, FailedReply),
    MessageType.CONNECTOR_GET: (ConnectorState, FailedReply),
    MessageType.CONNECTOR_DELETE: (Acknowledged, FailedReply),
    MessageType.CONNECTOR_PAUSE: (Acknowledged, FailedReply),
    MessageType.CONNECTOR_RESUME: (Acknowledged, FailedReply),
    MessageType.CONNECTOR_LIST: (ConnectorList, FailedReply),
    MessageType.CONNECTOR_TEST: (ConnectionTestResult, FailedReply),
    MessageType.CONNECTOR_METRICS: (ConnectorMetrics, FailedReply),
    MessageType.CONNECTOR_STATUS: (ConnectorStatus, FailedReply),
    MessageType.FLEET_METRICS: (FleetMetrics, FailedReply),
    MessageType.OPERATION_CANCEL: (CancelRequested, FailedReply),
    MessageType.DLQ_LIST: (DeadLetterPage, FailedReply),
    MessageType.DLQ_REPLAY: (DeadLetterOutcome, FailedReply),
    MessageType.DLQ_PURGE: (DeadLetterOutcome, FailedReply),
}

#: What the dispatcher forwards to `scf.ops` for the calls a worker answers (and, for
#: `operation.execute`, what a client on the fast path publishes there itself).
WORK_BODIES: Final[Mapping[MessageType, type[BaseModel]]] = {
    MessageType.OPERATION_EXECUTE: OperationEnvelope,
    MessageType.CONNECTOR_TEST: CheckEnvelope,
}

SUMMARIES: Final[Mapping[MessageType, str]] = {
    MessageType.OPERATION_EXECUTE: "Run a data operation on a connector.",
    MessageType.OPERATION_RESULT: "Fetch the stored result of an earlier operation by its id.",
    MessageType.CONNECTOR_CREATE: "Register a connector; a worker of its type tests the connection.",
    MessageType.CONNECTOR_UPDATE: "Replace a connector's configuration.",
    MessageType.CONNECTOR_GET: "One connector, secrets masked.",
    MessageType.CONNECTOR_DELETE: "Remove a connector.",
    MessageType.CONNECTOR_PAUSE: "Stop routing operations to a connector.",
    MessageType.CONNECTOR_RESUME: "Route operations to a paused connector again.",
    MessageType.CONNECTOR_LIST: "Every connector, secrets masked, optionally of one service type.",
    MessageType.CONNECTOR_TEST: "Test a connector's connection, authentication and permissions.",
    MessageType.CONNECTOR_METRICS: "A connector's performance metrics.",
    MessageType.CONNECTOR_STATUS: "A connector's health, last error and live workers.",
    MessageType.FLEET_METRICS: "Metrics of every connector and the live workers per service type.",
    MessageType.OPERATION_CANCEL: "Cancel an operation: not run if still queued, stopped at its next batch.",
    MessageType.DLQ_LIST: "Dead letters, newest first, secrets redacted.",
    MessageType.DLQ_REPLAY: "Re-publish dead letters to the queue they came from, with a fresh deadline.",
    MessageType.DLQ_PURGE: "Delete dead letters.",
}


#: How a client may publish `operation.execute` to `scf.ops` itself (the fast path, docs/resilience.md).
FAST_PATH_NOTE: Final = (
    " Fast path: a client that knows the connector's service type (from `connector.get` or "
    "`connector.status`, kept current by `connector.{action}.{service_name}` events) may publish this "
    f"envelope itself to exchange `{topology.OPS_EXCHANGE}` with routing key = service type: message_id = "
    "operation id, the request's correlation_id, reply_to and type `operation.execute`, `expiration` = the "
    f"remaining budget, header `{topology.FORWARDED_AT_HEADER}`, persistent, publisher confirms, "
    "mandatory=True. The worker checks everything the dispatcher would have (CONNECTOR_NOT_FOUND, "
    "CONNECTOR_PAUSED, the registry version, DEADLINE_EXCEEDED) and replies exactly as on the dispatcher "
    "path. With no live worker the request waits until its deadline, then the dead-letter desk answers "
    "DEADLINE_EXCEEDED."
)


def reply_type(message_type: str) -> str:
    """The AMQP `type` of the reply to a request of `message_type`."""
    return f"{message_type}{REPLY_TYPE_SUFFIX}"


def declared_queues(service_types: Iterable[str] | None = None) -> set[str]:
    """Every named queue the fleet declares at start (`fleet.amqp.declare_topology`) for these types."""
    return {
        topology.REQUEST_QUEUE,
        topology.DEAD_LETTER_QUEUE,
        *(topology.work_queue(t) for t in (known_types() if service_types is None else service_types)),
        *(topology.retry_queue(tier) for tier in topology.RETRY_TIERS),
    }


def check_complete() -> None:
    """Every message type must have a body and replies here: a new type must not go undocumented."""
    for table_name, table in (("REQUEST_BODIES", REQUEST_BODIES), ("REPLY_BODIES", REPLY_BODIES)):
        missing = [t.value for t in MessageType if t not in table]
        if missing:
            raise ValueError(f"scf.schemas.asyncapi.{table_name} lacks message types: {', '.join(missing)}")
    if set(WORK_BODIES) != set(WORKER_CALLS):
        raise ValueError("scf.schemas.asyncapi.WORK_BODIES must cover exactly control.WORKER_CALLS")
