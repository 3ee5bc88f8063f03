"""The messages of the AsyncAPI document (`components.messages`), one builder per family.

Each builder adds its messages to `messages` (and their bodies to `schemas`) and returns their names,
which the channels then reference.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from scf.schemas.asyncapi.bindings import message, properties
from scf.schemas.asyncapi.components import health_event_schema, model_schema
from scf.schemas.asyncapi.contract import (
    EVENT_TYPE,
    FAST_PATH_NOTE,
    FORWARDED_AT_HEADER,
    REPLY_BODIES,
    REPLY_TYPE_SUFFIX,
    REQUEST_BODIES,
    SUMMARIES,
    WORK_BODIES,
    reply_type,
)
from scf.schemas.control import WORKER_CALLS, FailedReply, MessageType

Schemas = dict[str, Any]
Messages = dict[str, Any]


def request_messages(schemas: Schemas, messages: Messages) -> list[str]:
    """Requests on scf.requests: one message per MessageType, named after it."""
    for message_type in MessageType:
        body = REQUEST_BODIES[message_type]
        answered_by = "a worker of the connector's type" if message_type in WORKER_CALLS else "the dispatcher"
        messages[message_type.value] = message(
            message_type.value,
            summary=SUMMARIES.get(message_type, f"The {message_type.value} call."),
            description=f"Body: `{body.__name__}`. Answered by {answered_by} with "
            + " or ".join(f"`{m.__name__}`" for m in REPLY_BODIES[message_type])
            + f", AMQP type `{reply_type(message_type.value)}`.",
            payload=model_schema(schemas, body),
            headers=properties({"const": message_type.value}, persistent=True, reply_to=True),
            amqp_type=message_type.value,
            extensions={"x-replies": sorted({m.__name__ for m in REPLY_BODIES[message_type]})},
        )
    return [message_type.value for message_type in MessageType]


FORWARDED_AT = {
    FORWARDED_AT_HEADER: {
        "type": "string",
        "pattern": "^[0-9]+(\\.[0-9]+)?$",
        "description": "Unix time the dispatcher forwarded the request (or a client published it on the "
        "fast path), as decimal text (a float header would travel as 32 bits, a minute off).",
    }
}


def work_messages(schemas: Schemas, messages: Messages) -> list[str]:
    """What the dispatcher (or a client on the fast path) puts on scf.ops.<type>."""
    for message_type, envelope in WORK_BODIES.items():
        messages[envelope.__name__] = message(
            envelope.__name__,
            summary=f"A {message_type.value} request forwarded to the workers of one service type.",
            description="Keeps the request's correlation_id, reply_to and type: the worker replies to the "
            "caller directly." + (FAST_PATH_NOTE if message_type is MessageType.OPERATION_EXECUTE else ""),
            payload=model_schema(schemas, envelope),
            headers=properties(
                {"const": message_type.value}, persistent=True, reply_to=True, headers=FORWARDED_AT
            ),
            amqp_type=message_type.value,
        )
    return [envelope.__name__ for envelope in WORK_BODIES.values()]


def reply_classes() -> dict[str, type[BaseModel]]:
    return {m.__name__: m for models in REPLY_BODIES.values() for m in models}


def _reply_type_schema(model: type[BaseModel], reply_types: list[str]) -> dict[str, Any]:
    if model is FailedReply:
        return {
            "type": "string",
            "pattern": f"\\{REPLY_TYPE_SUFFIX}$",
            "description": "The request's type plus `.reply` (also for a request of unknown type).",
            "examples": reply_types,
        }
    return {"enum": reply_types} if len(reply_types) > 1 else {"const": reply_types[0]}


def reply_messages(schemas: Schemas, messages: Messages) -> list[str]:
    """Replies on the caller's queue, one message per reply model."""
    reply_models: dict[str, list[str]] = {}
    for message_type in MessageType:
        for model in REPLY_BODIES[message_type]:
            reply_models.setdefault(model.__name__, []).append(reply_type(message_type.value))
    classes = reply_classes()
    for name, reply_types in reply_models.items():
        messages[name] = message(
            name,
            summary=f"Reply: {(classes[name].__doc__ or name).strip().splitlines()[0]}",
            payload=model_schema(schemas, classes[name]),
            headers=properties(
                _reply_type_schema(classes[name], reply_types), persistent=False, reply_to=False
            ),
            amqp_type=reply_types[0] if len(reply_types) == 1 else None,
        )
    return list(reply_models)


DEATH_HEADERS = {
    "x-first-death-reason": {"enum": ["rejected", "expired", "maxlen", "delivery_limit"]},
    "x-first-death-queue": {"type": "string"},
    "x-first-death-exchange": {"type": "string"},
    "x-death": {"type": "array", "items": {"type": "object"}},
}


def dead_letter_message(schemas: Schemas, messages: Messages) -> None:
    """Anything a work queue (or scf.requests) gave up on."""
    dead_payloads = [model_schema(schemas, REQUEST_BODIES[t]) for t in MessageType]
    dead_payloads += [model_schema(schemas, m) for m in WORK_BODIES.values()]
    unique_dead = [dict(p) for p in {p["$ref"]: p for p in dead_payloads}.values()]
    messages["DeadLetter"] = message(
        "DeadLetter",
        summary="A request or forwarded envelope that exhausted its delivery limit or was rejected.",
        description="The original body and properties, plus the broker's dead-lettering headers.",
        payload={"anyOf": unique_dead},
        headers=properties(
            {"enum": [t.value for t in MessageType]}, persistent=True, reply_to=True, headers=DEATH_HEADERS
        ),
        amqp_type=None,
    )


def event_messages(schemas: Schemas, messages: Messages) -> None:
    """Events on scf.events: registry changes and health changes."""
    event_headers = properties({"const": EVENT_TYPE}, persistent=False, reply_to=False, correlated=False)
    messages["ConnectorEvent"] = message(
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
    messages["HealthEvent"] = message(
        "HealthEvent",
        summary="A connector's health status changed (published by the dispatchers' health monitor).",
        payload=health_event_schema(schemas),
        headers=event_headers,
        amqp_type=EVENT_TYPE,
    )
