"""AMQP bindings, headers and message objects of the AsyncAPI document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scf.schemas.asyncapi.contract import AMQP_BINDING_VERSION, JSON, MESSAGE_REF

# --- building blocks -------------------------------------------------------------------------------------


def exchange(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "type": kind, "durable": True, "autoDelete": False, "vhost": "/"}


def queue(name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "durable": True,
        "exclusive": False,
        "autoDelete": False,
        "vhost": "/",
        "arguments": dict(arguments),
    }


def routed_queue_binding(exchange: dict[str, Any], routing_key: str, queue: dict[str, Any]) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "routingKey",
            "exchange": exchange,
            "bindingVersion": AMQP_BINDING_VERSION,
            "x-routing-key": routing_key,
            "x-queue": queue,
        }
    }


def operation_binding(*, persistent: bool, ack: bool) -> dict[str, Any]:
    return {
        "amqp": {
            "deliveryMode": 2 if persistent else 1,
            "mandatory": True,
            "ack": ack,
            "bindingVersion": AMQP_BINDING_VERSION,
        }
    }


def one_or_many(names: list[str]) -> dict[str, Any]:
    refs = [{"$ref": MESSAGE_REF.format(name=n)} for n in names]
    return refs[0] if len(refs) == 1 else {"oneOf": refs}


def properties(
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


def message(
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


def drop_shared_message_ids(channels: Mapping[str, Any], messages: dict[str, Any]) -> None:
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
