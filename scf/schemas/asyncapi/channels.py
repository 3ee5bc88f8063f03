"""The channels of the AsyncAPI document: one per queue the fleet declares, the event topics, replies."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from scf.schemas import topology
from scf.schemas.asyncapi.bindings import (
    exchange,
    one_or_many,
    operation_binding,
    queue,
    routed_queue_binding,
)
from scf.schemas.asyncapi.contract import (
    AMQP_BINDING_VERSION,
    CONNECTOR_EVENT_ACTIONS,
    FAST_PATH_NOTE,
    REPLY_CHANNEL,
)
from scf.schemas.connection import SERVICE_NAME_PATTERN

Channels = dict[str, Any]


def request_channel(work_args: Mapping[str, Any], request_names: list[str]) -> Channels:
    return {
        topology.REQUEST_QUEUE: {
            "description": f"Every request: exchange `{topology.REQUEST_EXCHANGE}` (direct), routing key "
            f"`{topology.REQUEST_ROUTING_KEY}`, consumed by the dispatchers.",
            "bindings": routed_queue_binding(
                exchange(topology.REQUEST_EXCHANGE, "direct"),
                topology.REQUEST_ROUTING_KEY,
                queue(topology.REQUEST_QUEUE, work_args),
            ),
            "publish": {
                "operationId": "request",
                "summary": "Call the fleet: persistent, with correlation_id, reply_to and the type property.",
                "description": "Publish with publisher confirms and mandatory=True. Every request gets "
                f"exactly one reply on its reply_to queue (channel `{REPLY_CHANNEL}`).",
                "bindings": operation_binding(persistent=True, ack=True),
                "message": one_or_many(request_names),
            },
        }
    }


def work_channels(
    work_types: list[str],
    work_args: Mapping[str, Any],
    work_names: list[str],
    operations: Mapping[str, list[dict[str, Any]]],
) -> Channels:
    """`scf.ops.<type>`; `x-operations` lists the type's declared operations (schemas and traits)."""
    channels: Channels = {}
    for service_type in work_types:
        name = topology.work_queue(service_type)
        channels[name] = {
            "description": f"Work for the `{service_type}` workers: exchange `{topology.OPS_EXCHANGE}` "
            f"(direct), routing key `{service_type}`.",
            "bindings": routed_queue_binding(
                exchange(topology.OPS_EXCHANGE, "direct"), service_type, queue(name, work_args)
            ),
            "publish": {
                "operationId": f"work.{service_type}",
                "summary": "The dispatcher forwards a worker call, or a client that knows the connector's "
                "type publishes an operation.execute envelope here itself (the fast path); a worker acks it "
                "after its reply is confirmed.",
                "description": FAST_PATH_NOTE.strip(),
                "bindings": operation_binding(persistent=True, ack=True),
                "message": one_or_many(work_names),
            },
        }
        if service_type in operations:
            channels[name]["x-operations"] = operations[service_type]
    return channels


def dead_and_retry_channels(work_names: list[str]) -> Channels:
    channels: Channels = {
        topology.DEAD_LETTER_QUEUE: {
            "description": "Poison and exhausted messages: the `x-dead-letter-exchange` "
            f"`{topology.DEAD_LETTER_EXCHANGE}` (fanout) of every work queue and of the request queue. "
            "The dispatcher answers the caller once for each and keeps it inspectable and replayable.",
            "bindings": routed_queue_binding(
                exchange(topology.DEAD_LETTER_EXCHANGE, "fanout"),
                "",
                queue(topology.DEAD_LETTER_QUEUE, topology.dead_letter_queue_arguments()),
            ),
            "subscribe": {
                "operationId": "deadLetter",
                "summary": "What a reader of the dead-letter queue receives.",
                "bindings": operation_binding(persistent=True, ack=True),
                "message": one_or_many(["DeadLetter"]),
            },
        }
    }
    for tier, ttl in topology.RETRY_TIERS.items():
        name = topology.retry_queue(tier)
        channels[name] = {
            "description": f"Delayed retry after {ttl} ms: exchange `{topology.retry_exchange(tier)}` "
            f"(fanout); on expiry the message goes back to `{topology.OPS_EXCHANGE}` with its original "
            "routing key (its service type).",
            "bindings": routed_queue_binding(
                exchange(topology.retry_exchange(tier), "fanout"),
                "",
                queue(name, topology.retry_queue_arguments(tier)),
            ),
            "publish": {
                "operationId": f"retry.{tier}",
                "summary": "Park a forwarded call for a retry that must outlive an in-process backoff.",
                "bindings": operation_binding(persistent=True, ack=True),
                "message": one_or_many(work_names),
            },
        }
    return channels


SERVICE_NAME_PARAMETER = {
    "description": "The connector's service name.",
    "schema": {"type": "string", "pattern": SERVICE_NAME_PATTERN},
}


def event_channels() -> Channels:
    events = {
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": exchange(topology.EVENTS_EXCHANGE, "topic"),
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        }
    }
    actions = {"description": "What changed.", "schema": {"enum": list(CONNECTOR_EVENT_ACTIONS)}}
    return {
        topology.connector_event("{action}", "{service_name}"): {
            "description": f"Registry changes on `{topology.EVENTS_EXCHANGE}` (topic); "
            "bind e.g. `connector.#`.",
            "parameters": {"action": actions, "service_name": SERVICE_NAME_PARAMETER},
            **copy.deepcopy(events),
            "subscribe": {
                "operationId": "connectorEvent",
                "bindings": operation_binding(persistent=False, ack=False),
                "message": one_or_many(["ConnectorEvent"]),
            },
        },
        topology.health_event("{service_name}"): {
            "description": f"Health status changes and alerts on `{topology.EVENTS_EXCHANGE}` (topic).",
            "parameters": {"service_name": SERVICE_NAME_PARAMETER},
            **copy.deepcopy(events),
            "subscribe": {
                "operationId": "healthEvent",
                "bindings": operation_binding(persistent=False, ack=False),
                "message": one_or_many(["HealthEvent"]),
            },
        },
    }


def reply_channel(reply_names: list[str]) -> Channels:
    return {
        REPLY_CHANNEL: {
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
                "bindings": operation_binding(persistent=False, ack=False),
                "message": one_or_many(reply_names),
            },
        }
    }
