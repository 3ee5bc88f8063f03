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

from collections.abc import Iterable, Mapping
from typing import Any

from scf._version import __version__
from scf.schemas import topology
from scf.schemas.asyncapi.bindings import drop_shared_message_ids
from scf.schemas.asyncapi.channels import (
    dead_and_retry_channels,
    event_channels,
    reply_channel,
    request_channel,
    work_channels,
)
from scf.schemas.asyncapi.components import (
    add_alias_properties,
    merge_schema,
    model_schema,
    restrict_service_types,
)
from scf.schemas.asyncapi.contract import (
    AMQP_BINDING_VERSION,
    ASYNCAPI_VERSION,
    DEFAULT_SERVER_URL,
    JSON,
    REPLY_BODIES,
    REPLY_CHANNEL,
    REQUEST_BODIES,
    SERVER_NAME,
    WORK_BODIES,
    check_complete,
    declared_queues,
    reply_type,
)
from scf.schemas.asyncapi.messages import (
    dead_letter_message,
    event_messages,
    reply_classes,
    reply_messages,
    request_messages,
    work_messages,
)
from scf.schemas.connection_rules import declare_connection_rules
from scf.schemas.plugins import known_types

DESCRIPTION = (
    "The AMQP 0-9-1 contract of the fleet: requests on `scf.requests`, work on `scf.ops.<service_type>` "
    "(forwarded by the dispatcher, or published there directly by a client that knows the connector's "
    "type: the fast path), replies on the caller's queue, dead letters, delayed retries and events. JSON "
    "bodies; generated from `scf.schemas`."
)


def build_asyncapi(
    version: str = __version__,
    *,
    server_url: str = DEFAULT_SERVER_URL,
    limits: topology.QueueLimits | None = None,
    service_types: Iterable[str] | None = None,
    operations: Mapping[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 2.6.0 document of the fleet's AMQP contract (JSON-ready dict).

    `limits` are the work queues' (`Settings.queue_limits`); `service_types` default to every type this
    installation knows (built-in and plugins), the types `fleet.amqp.declare_topology` declares queues for.
    `operations` (type -> `Operation.describe()` rows, from `scf.connectors.registry.operation_catalog`)
    are published on each `scf.ops.<type>` channel as `x-operations`.
    """
    check_complete()
    work_types = list(known_types() if service_types is None else service_types)
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    request_names = request_messages(schemas, messages)
    work_names = work_messages(schemas, messages)
    reply_names = reply_messages(schemas, messages)
    dead_letter_message(schemas, messages)
    event_messages(schemas, messages)
    # only now: the comparisons above must see pydantic's schemas unchanged
    top_level = {*REQUEST_BODIES.values(), *WORK_BODIES.values(), *reply_classes().values()}
    for model in sorted(top_level, key=lambda m: m.__name__):
        add_alias_properties(schemas, model)
    restrict_service_types(schemas, work_types)
    declare_connection_rules(schemas, work_types)  # custom_config per type, cross-field rules
    work_args = topology.work_queue_arguments(limits or topology.QueueLimits())
    channels = {
        **request_channel(work_args, request_names),
        **work_channels(work_types, work_args, work_names, operations or {}),
        **dead_and_retry_channels(work_names),
        **event_channels(),
        **reply_channel(reply_names),
    }
    drop_shared_message_ids(channels, messages)
    return _document(version, server_url, channels, schemas, messages)


def _document(
    version: str, server_url: str, channels: dict[str, Any], schemas: dict[str, Any], messages: dict[str, Any]
) -> dict[str, Any]:
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:scf:fleet",
        "info": {"title": "Service Connector Factory fleet", "version": version, "description": DESCRIPTION},
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
                "userPassword": {
                    "type": "userPassword",
                    "description": (
                        "RabbitMQ user and password. Every request must carry the AMQP `user_id` "
                        "property set to that login (RabbitMQ verifies it): it names the principal whose "
                        "permissions (SCF_POLICY_FILE and the admin API) the dispatcher and the worker "
                        "check. No user_id or an unknown principal: UNAUTHENTICATED; a missing "
                        "permission: FORBIDDEN; over the principal's rate: RATE_LIMITED with "
                        "retry_after. Only a trusted forwarder (SCF_TRUSTED_FORWARDERS, e.g. the "
                        "gateway) may name another principal in the x-scf-principal header."
                    ),
                }
            },
        },
    }


__all__ = [
    "AMQP_BINDING_VERSION",
    "DEFAULT_SERVER_URL",
    "REPLY_BODIES",
    "REPLY_CHANNEL",
    "REQUEST_BODIES",
    "WORK_BODIES",
    "build_asyncapi",
    "declared_queues",
    "merge_schema",
    "model_schema",
    "reply_type",
]
