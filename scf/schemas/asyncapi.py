"""The fleet's AMQP contract (docs/architecture.md) as an AsyncAPI 2.6.0 document, generated, never written.

Every name comes from `topology`, every queue argument from its argument helpers, every message type
from `MessageType`, every body from the pydantic models of this package, so the document cannot drift
from what the processes declare and send. `build_asyncapi()` is pure: no I/O, the same dict each call.

How the AMQP topology maps onto AsyncAPI 2.x (whose AMQP channel binding is *either* an exchange with a
routing key *or* a queue, never both):

* a channel per queue the fleet declares, named after the queue (`scf.requests`, `scf.ops.<type>`,
  `scf.dead`, `scf.retry.<tier>`). Its `bindings.amqp` is `is: routingKey` with the exchange publishers
  address; the routing key and the queue (durability, `x-` arguments) are in the `x-routing-key` and
  `x-queue` extensions of that binding;
* the topic channels of `scf.events` (`connector.{action}.{service_name}`, `health.{service_name}`);
  subscribers bind queues of their own;
* `{reply_to}`: the caller's exclusive auto-delete queue (`is: queue`), reached through the default
  exchange, which receives the one reply of each call.

Two routes reach a worker: the dispatcher forwards `operation.execute` from `scf.requests`, and a client
that knows the connector's type (the fast path) publishes the same `OperationEnvelope` to `scf.ops`
itself. Both are documented on the `scf.ops.<type>` channels; the worker answers both identically.

Operations follow AsyncAPI 2.x's point of view of the fleet as the application: `publish` is what the
fleet receives (requests, and its internal hops), `subscribe` is what it sends (replies, events, dead
letters). The AMQP `type` property of each message is in its `bindings.amqp.messageType` and, with the
other basic properties the fleet relies on (`correlation_id`, `reply_to`, `content_type`,
`delivery_mode`), in its `headers` schema.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Final, get_args

from pydantic import AliasChoices, BaseModel

from scf.schemas import topology
from scf.schemas.connection import SERVICE_NAME_PATTERN, ServiceConnection
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
    HealthStatus,
    ListFilter,
    MessageType,
    OperationRef,
)
from scf.schemas.dead_letters import DeadLetterOutcome, DeadLetterPage, DeadLetterQuery, DeadLetterSelection
from scf.schemas.errors import ErrorInfo
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

_SUMMARIES: Final[Mapping[MessageType, str]] = {
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


# --- pydantic schemas -> components.schemas --------------------------------------------------------------

_DEFS_PREFIX = "#/$defs/"


def _rewrite_refs(node: Any) -> Any:
    """A copy of `node` whose local `#/$defs/X` references point at `#/components/schemas/X`."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_DEFS_PREFIX):
                out[key] = SCHEMA_REF.format(model=value.removeprefix(_DEFS_PREFIX))
            else:
                out[key] = _rewrite_refs(value)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _pop_defs(node: Any, found: dict[str, Any]) -> None:
    """Remove every (possibly nested) `$defs` from `node`, collecting its entries into `found`."""
    if isinstance(node, dict):
        defs = node.pop("$defs", None)
        if isinstance(defs, dict):
            for name, schema in defs.items():
                _pop_defs(schema, found)
                found[name] = schema
        for value in node.values():
            _pop_defs(value, found)
    elif isinstance(node, list):
        for item in node:
            _pop_defs(item, found)


def merge_schema(schemas: dict[str, Any], name: str, schema: Mapping[str, Any]) -> dict[str, str]:
    """Hoist `schema` and all its `$defs` into `schemas` (components.schemas) under their names.

    References are rewritten to `#/components/schemas/<name>`. Two different schemas under one name
    raise `ValueError` instead of one silently replacing the other. Returns a `$ref` to `name`.
    """
    body = copy.deepcopy(dict(schema))
    found: dict[str, Any] = {}
    _pop_defs(body, found)
    found[name] = body
    for def_name, def_schema in found.items():
        rewritten = _rewrite_refs(def_schema)
        existing = schemas.setdefault(def_name, rewritten)
        if existing != rewritten:
            raise ValueError(f"two different JSON schemas are both named {def_name!r}")
    return {"$ref": SCHEMA_REF.format(model=name)}


def model_schema(schemas: dict[str, Any], model: type[BaseModel]) -> dict[str, str]:
    """Add `model` (and the models it uses) to `schemas`; returns a `$ref` to it."""
    return merge_schema(schemas, model.__name__, model.model_json_schema(ref_template=SCHEMA_REF))


def _add_alias_properties(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    """Document the alternative names a field accepts (`AliasChoices`), e.g. `connection_id`.

    pydantic's JSON schema names only the first choice, and with `extra="forbid"` a strict reader of the
    schema would refuse a body the fleet accepts.
    """
    schema = schemas[model.__name__]
    properties: dict[str, Any] = schema.get("properties", {})
    for field_name, field in model.model_fields.items():
        if not isinstance(field.validation_alias, AliasChoices):
            continue
        names = [c for c in field.validation_alias.choices if isinstance(c, str)]
        primary = next((n for n in [*names, field_name] if n in properties), None)
        if primary is None:
            continue
        for alias in names:
            if alias not in properties:
                properties[alias] = {
                    **copy.deepcopy(properties[primary]),
                    "title": alias,
                    "description": f"Alias of `{primary}`.",
                }


# --- building blocks -------------------------------------------------------------------------------------


def _exchange(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "type": kind, "durable": True, "autoDelete": False, "vhost": "/"}


def _queue(name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "durable": True,
        "exclusive": False,
        "autoDelete": False,
        "vhost": "/",
        "arguments": dict(arguments),
    }


def _routed_queue_binding(
    exchange: dict[str, Any], routing_key: str, queue: dict[str, Any]
) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "routingKey",
            "exchange": exchange,
            "bindingVersion": AMQP_BINDING_VERSION,
            "x-routing-key": routing_key,
            "x-queue": queue,
        }
    }


def _operation_binding(*, persistent: bool, ack: bool) -> dict[str, Any]:
    return {
        "amqp": {
            "deliveryMode": 2 if persistent else 1,
            "mandatory": True,
            "ack": ack,
            "bindingVersion": AMQP_BINDING_VERSION,
        }
    }


def _one_or_many(names: list[str]) -> dict[str, Any]:
    refs = [{"$ref": MESSAGE_REF.format(name=n)} for n in names]
    return refs[0] if len(refs) == 1 else {"oneOf": refs}


def _properties(
    type_schema: dict[str, Any],
    *,
    persistent: bool,
    reply_to: bool,
    correlated: bool = True,
    headers: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `headers` schema of a message: the AMQP basic properties the fleet sets, and its headers."""
    properties: dict[str, Any] = {
        "type": type_schema,
        "content_type": {"const": JSON},
        "correlation_id": {
            "type": "string",
            "description": "Chosen by the caller; every reply carries the request's value.",
        },
        "message_id": {"type": "string"},
        "delivery_mode": {"const": 2 if persistent else 1},
    }
    required = ["type", "content_type"]
    if correlated:
        required.append("correlation_id")
    if reply_to:
        properties["reply_to"] = {
            "type": "string",
            "description": "The caller's queue: the one reply is published there via the default exchange.",
        }
        required.append("reply_to")
    properties.update(headers or {})
    return {
        "type": "object",
        "description": "AMQP basic properties (type, content_type, correlation_id, reply_to, message_id, "
        "delivery_mode) and application headers of the message.",
        "properties": properties,
        "required": required,
    }


def _message(
    name: str,
    *,
    summary: str,
    payload: dict[str, Any],
    headers: dict[str, Any],
    amqp_type: str | None,
    description: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    binding: dict[str, Any] = {"bindingVersion": AMQP_BINDING_VERSION}
    if amqp_type is not None:
        binding["messageType"] = amqp_type
    message: dict[str, Any] = {
        "messageId": name,
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": JSON,
        "correlationId": {
            "location": "$message.header#/correlation_id",
            "description": "The AMQP correlation_id property: it pairs each reply with its request.",
        },
        "headers": headers,
        "payload": payload,
        "bindings": {"amqp": binding},
    }
    if description is not None:
        message["description"] = description
    message.update(extensions or {})
    return message


def _restrict_service_types(schemas: dict[str, Any], types: list[str]) -> None:
    """`ServiceConnection.service_type` is a plain string checked by a validator: name the accepted values."""
    field = schemas[ServiceConnection.__name__]["properties"]["service_type"]
    if field.get("type") == "string" and "enum" not in field:
        field["enum"] = list(types)


def _health_event_schema(schemas: dict[str, Any]) -> dict[str, Any]:
    """The body of `health.<name>` events (built as a dict by `dispatcher.health_monitor`)."""
    statuses = list(get_args(HealthStatus))
    nullable_number = {"anyOf": [{"type": "number"}, {"type": "null"}]}
    return {
        "type": "object",
        "properties": {
            "service_name": {"type": "string", "pattern": SERVICE_NAME_PATTERN},
            "service_type": {"type": "string"},
            "status": {"enum": statuses},
            "previous": {"enum": statuses},
            "at": {"type": "number", "description": "Unix time of the change."},
            "response_time": nullable_number,
            "error": {"anyOf": [model_schema(schemas, ErrorInfo), {"type": "null"}]},
        },
        "required": ["service_name", "status", "previous", "at"],
    }


def _drop_shared_message_ids(channels: Mapping[str, Any], messages: dict[str, Any]) -> None:
    """Keep `messageId` only on messages that one operation uses.

    AsyncAPI 2.x wants a messageId to be unique across the resolved document, so a message several
    channels carry (the envelopes on every `scf.ops.<type>` and `scf.retry.<tier>`) is known by its
    component key and `name` only.
    """
    uses: dict[str, int] = {}
    for channel in channels.values():
        for operation in (channel[verb] for verb in ("publish", "subscribe") if verb in channel):
            message = operation["message"]
            for ref in message.get("oneOf", [message]):
                name = ref["$ref"].removeprefix(MESSAGE_REF.format(name=""))
                uses[name] = uses.get(name, 0) + 1
    for name, message in messages.items():
        if uses.get(name, 0) > 1:
            del message["messageId"]


def _check_complete() -> None:
    """Every message type must have a body and replies here: a new type must not go undocumented."""
    for table_name, table in (("REQUEST_BODIES", REQUEST_BODIES), ("REPLY_BODIES", REPLY_BODIES)):
        missing = [t.value for t in MessageType if t not in table]
        if missing:
            raise ValueError(f"scf.schemas.asyncapi.{table_name} lacks message types: {', '.join(missing)}")
    if set(WORK_BODIES) != set(WORKER_CALLS):
        raise ValueError("scf.schemas.asyncapi.WORK_BODIES must cover exactly control.WORKER_CALLS")


# --- the document ----------------------------------------------------------------------------------------


def build_asyncapi(
    version: str = "0.1.0",
    *,
    server_url: str = DEFAULT_SERVER_URL,
    limits: topology.QueueLimits | None = None,
    service_types: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 2.6.0 document of the fleet's AMQP contract (JSON-ready dict).

    `limits` are the work queues' (`Settings.queue_limits`); `service_types` default to every type this
    installation knows (built-in and plugins), the types `fleet.amqp.declare_topology` declares queues for.
    """
    _check_complete()
    limits = limits or topology.QueueLimits()
    work_types = list(known_types() if service_types is None else service_types)
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    # requests on scf.requests: one message per MessageType, named after it
    request_names: list[str] = []
    for message_type in MessageType:
        body = REQUEST_BODIES[message_type]
        answered_by = "a worker of the connector's type" if message_type in WORKER_CALLS else "the dispatcher"
        messages[message_type.value] = _message(
            message_type.value,
            summary=_SUMMARIES.get(message_type, f"The {message_type.value} call."),
            description=f"Body: `{body.__name__}`. Answered by {answered_by} with "
            + " or ".join(f"`{m.__name__}`" for m in REPLY_BODIES[message_type])
            + f", AMQP type `{reply_type(message_type.value)}`.",
            payload=model_schema(schemas, body),
            headers=_properties({"const": message_type.value}, persistent=True, reply_to=True),
            amqp_type=message_type.value,
            extensions={"x-replies": sorted({m.__name__ for m in REPLY_BODIES[message_type]})},
        )
        request_names.append(message_type.value)

    # what the dispatcher forwards to scf.ops.<type>
    work_names: list[str] = []
    for message_type, envelope in WORK_BODIES.items():
        messages[envelope.__name__] = _message(
            envelope.__name__,
            summary=f"A {message_type.value} request forwarded to the workers of one service type.",
            description="Keeps the request's correlation_id, reply_to and type: the worker replies to the "
            "caller directly." + (FAST_PATH_NOTE if message_type is MessageType.OPERATION_EXECUTE else ""),
            payload=model_schema(schemas, envelope),
            headers=_properties(
                {"const": message_type.value},
                persistent=True,
                reply_to=True,
                headers={
                    FORWARDED_AT_HEADER: {
                        "type": "string",
                        "pattern": "^[0-9]+(\\.[0-9]+)?$",
                        "description": "Unix time the dispatcher forwarded the request (or a client "
                        "published it on the fast path), as decimal text (a float header would travel as "
                        "32 bits, a minute off).",
                    }
                },
            ),
            amqp_type=message_type.value,
        )
        work_names.append(envelope.__name__)

    # replies on the caller's queue
    reply_models: dict[str, list[str]] = {}
    for message_type in MessageType:
        for model in REPLY_BODIES[message_type]:
            reply_models.setdefault(model.__name__, []).append(reply_type(message_type.value))
    reply_classes = {m.__name__: m for models in REPLY_BODIES.values() for m in models}
    reply_names: list[str] = []
    for name, reply_types in reply_models.items():
        if reply_classes[name] is FailedReply:
            type_schema: dict[str, Any] = {
                "type": "string",
                "pattern": f"\\{REPLY_TYPE_SUFFIX}$",
                "description": "The request's type plus `.reply` (also for a request of unknown type).",
                "examples": reply_types,
            }
        else:
            type_schema = {"enum": reply_types} if len(reply_types) > 1 else {"const": reply_types[0]}
        messages[name] = _message(
            name,
            summary=f"Reply: {(reply_classes[name].__doc__ or name).strip().splitlines()[0]}",
            payload=model_schema(schemas, reply_classes[name]),
            headers=_properties(type_schema, persistent=False, reply_to=False),
            amqp_type=reply_types[0] if len(reply_types) == 1 else None,
        )
        reply_names.append(name)

    # dead letters: anything a work queue (or scf.requests) gave up on
    dead_payloads = [model_schema(schemas, REQUEST_BODIES[t]) for t in MessageType]
    dead_payloads += [model_schema(schemas, m) for m in WORK_BODIES.values()]
    unique_dead = [dict(p) for p in {p["$ref"]: p for p in dead_payloads}.values()]
    messages["DeadLetter"] = _message(
        "DeadLetter",
        summary="A request or forwarded envelope that exhausted its delivery limit or was rejected.",
        description="The original body and properties, plus the broker's dead-lettering headers.",
        payload={"anyOf": unique_dead},
        headers=_properties(
            {"enum": [t.value for t in MessageType]},
            persistent=True,
            reply_to=True,
            headers={
                "x-first-death-reason": {"enum": ["rejected", "expired", "maxlen", "delivery_limit"]},
                "x-first-death-queue": {"type": "string"},
                "x-first-death-exchange": {"type": "string"},
                "x-death": {"type": "array", "items": {"type": "object"}},
            },
        ),
        amqp_type=None,
    )

    # events on scf.events
    event_headers = _properties({"const": EVENT_TYPE}, persistent=False, reply_to=False, correlated=False)
    messages["ConnectorEvent"] = _message(
        "ConnectorEvent",
        summary="A registry change: workers drop their cached connector, dispatchers their cached route.",
        payload={
            "type": "object",
            "properties": {"version": {"type": "integer", "minimum": 0}},
            "description": "`version` is the registry version after a create or update; empty otherwise.",
        },
        headers=event_headers,
        amqp_type=EVENT_TYPE,
    )
    messages["HealthEvent"] = _message(
        "HealthEvent",
        summary="A connector's health status changed (published by the dispatchers' health monitor).",
        payload=_health_event_schema(schemas),
        headers=event_headers,
        amqp_type=EVENT_TYPE,
    )

    # only now: the comparisons above must see pydantic's schemas unchanged
    top_level = {*REQUEST_BODIES.values(), *WORK_BODIES.values(), *reply_classes.values()}
    for model in sorted(top_level, key=lambda m: m.__name__):
        _add_alias_properties(schemas, model)
    _restrict_service_types(schemas, work_types)

    work_args = topology.work_queue_arguments(limits)
    channels: dict[str, Any] = {
        topology.REQUEST_QUEUE: {
            "description": f"Every request: exchange `{topology.REQUEST_EXCHANGE}` (direct), routing key "
            f"`{topology.REQUEST_ROUTING_KEY}`, consumed by the dispatchers.",
            "bindings": _routed_queue_binding(
                _exchange(topology.REQUEST_EXCHANGE, "direct"),
                topology.REQUEST_ROUTING_KEY,
                _queue(topology.REQUEST_QUEUE, work_args),
            ),
            "publish": {
                "operationId": "request",
                "summary": "Call the fleet: persistent, with correlation_id, reply_to and the type property.",
                "description": "Publish with publisher confirms and mandatory=True. Every request gets "
                f"exactly one reply on its reply_to queue (channel `{REPLY_CHANNEL}`).",
                "bindings": _operation_binding(persistent=True, ack=True),
                "message": _one_or_many(request_names),
            },
        }
    }
    for service_type in work_types:
        queue = topology.work_queue(service_type)
        channels[queue] = {
            "description": f"Work for the `{service_type}` workers: exchange `{topology.OPS_EXCHANGE}` "
            f"(direct), routing key `{service_type}`.",
            "bindings": _routed_queue_binding(
                _exchange(topology.OPS_EXCHANGE, "direct"), service_type, _queue(queue, work_args)
            ),
            "publish": {
                "operationId": f"work.{service_type}",
                "summary": "The dispatcher forwards a worker call, or a client that knows the connector's "
                "type publishes an operation.execute envelope here itself (the fast path); a worker acks it "
                "after its reply is confirmed.",
                "description": FAST_PATH_NOTE.strip(),
                "bindings": _operation_binding(persistent=True, ack=True),
                "message": _one_or_many(work_names),
            },
        }
    channels[topology.DEAD_LETTER_QUEUE] = {
        "description": "Poison and exhausted messages: the `x-dead-letter-exchange` "
        f"`{topology.DEAD_LETTER_EXCHANGE}` (fanout) of every work queue and of the request queue. "
        "The dispatcher answers the caller once for each and keeps it inspectable and replayable.",
        "bindings": _routed_queue_binding(
            _exchange(topology.DEAD_LETTER_EXCHANGE, "fanout"),
            "",
            _queue(topology.DEAD_LETTER_QUEUE, topology.dead_letter_queue_arguments()),
        ),
        "subscribe": {
            "operationId": "deadLetter",
            "summary": "What a reader of the dead-letter queue receives.",
            "bindings": _operation_binding(persistent=True, ack=True),
            "message": _one_or_many(["DeadLetter"]),
        },
    }
    for tier, ttl in topology.RETRY_TIERS.items():
        queue = topology.retry_queue(tier)
        channels[queue] = {
            "description": f"Delayed retry after {ttl} ms: exchange `{topology.retry_exchange(tier)}` "
            f"(fanout); on expiry the message goes back to `{topology.OPS_EXCHANGE}` with its original "
            "routing key (its service type).",
            "bindings": _routed_queue_binding(
                _exchange(topology.retry_exchange(tier), "fanout"),
                "",
                _queue(queue, topology.retry_queue_arguments(tier)),
            ),
            "publish": {
                "operationId": f"retry.{tier}",
                "summary": "Park a forwarded call for a retry that must outlive an in-process backoff.",
                "bindings": _operation_binding(persistent=True, ack=True),
                "message": _one_or_many(work_names),
            },
        }
    events = {
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": _exchange(topology.EVENTS_EXCHANGE, "topic"),
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        }
    }
    service_name_parameter = {
        "description": "The connector's service name.",
        "schema": {"type": "string", "pattern": SERVICE_NAME_PATTERN},
    }
    connector_key = topology.connector_event("{action}", "{service_name}")
    channels[connector_key] = {
        "description": f"Registry changes on `{topology.EVENTS_EXCHANGE}` (topic); bind e.g. `connector.#`.",
        "parameters": {
            "action": {"description": "What changed.", "schema": {"enum": list(CONNECTOR_EVENT_ACTIONS)}},
            "service_name": service_name_parameter,
        },
        **copy.deepcopy(events),
        "subscribe": {
            "operationId": "connectorEvent",
            "bindings": _operation_binding(persistent=False, ack=False),
            "message": _one_or_many(["ConnectorEvent"]),
        },
    }
    channels[topology.health_event("{service_name}")] = {
        "description": f"Health status changes and alerts on `{topology.EVENTS_EXCHANGE}` (topic).",
        "parameters": {"service_name": service_name_parameter},
        **copy.deepcopy(events),
        "subscribe": {
            "operationId": "healthEvent",
            "bindings": _operation_binding(persistent=False, ack=False),
            "message": _one_or_many(["HealthEvent"]),
        },
    }
    channels[REPLY_CHANNEL] = {
        "description": "The caller's own exclusive, auto-delete queue (one per client connection, shared "
        "by all its calls; replies are matched by correlation_id), reached through the default exchange "
        "with the queue name as routing key. Results are also kept in Redis under the operation id.",
        "parameters": {
            "reply_to": {
                "description": "The request's reply_to property.",
                "schema": {"type": "string"},
                "location": "$message.header#/reply_to",
            }
        },
        "bindings": {
            "amqp": {
                "is": "queue",
                "queue": {"durable": False, "exclusive": True, "autoDelete": True, "vhost": "/"},
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
        "subscribe": {
            "operationId": "reply",
            "summary": "The one reply of a request, with the request's correlation_id.",
            "bindings": _operation_binding(persistent=False, ack=False),
            "message": _one_or_many(reply_names),
        },
    }

    _drop_shared_message_ids(channels, messages)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:scf:fleet",
        "info": {
            "title": "Service Connector Factory fleet",
            "version": version,
            "description": "The AMQP 0-9-1 contract of the fleet: requests on `scf.requests`, work on "
            "`scf.ops.<service_type>` (forwarded by the dispatcher, or published there directly by a client "
            "that knows the connector's type: the fast path), replies on the caller's queue, dead letters, "
            "delayed retries and events. JSON bodies; generated from `scf.schemas`.",
        },
        "servers": {
            SERVER_NAME: {
                "url": server_url,
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "description": "RabbitMQ (quorum queues, publisher confirms).",
                "security": [{"userPassword": []}],
            }
        },
        "defaultContentType": JSON,
        "tags": [{"name": "amqp"}, {"name": "rabbitmq"}, {"name": "scf"}],
        "channels": channels,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "messages": messages,
            "securitySchemes": {
                "userPassword": {"type": "userPassword", "description": "RabbitMQ user and password."}
            },
        },
    }
