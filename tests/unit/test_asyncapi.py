"""The AsyncAPI document of the fleet: valid AsyncAPI 2.6.0, complete, and true to `scf.schemas`."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from scf.schemas import topology
from scf.schemas.asyncapi import (
    DEFAULT_SERVER_URL,
    REPLY_BODIES,
    REPLY_CHANNEL,
    REQUEST_BODIES,
    build_asyncapi,
    declared_queues,
    merge_schema,
)
from scf.schemas.connection import ServiceType
from scf.schemas.control import WORKER_CALLS, FailedReply, MessageType
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationEnvelope, OperationRequest, OperationResult
from scf.schemas.plugins import known_types
from tests.support.asyncapi_schema import AsyncApiSchemas, require_asyncapi_schemas
from tests.support.spec import SPEC_CREATE_BODY, SPEC_INSERT_REQUEST

DOC_URI = "urn:scf:test:asyncapi"


@pytest.fixture(scope="module")
def schemas() -> AsyncApiSchemas:
    return require_asyncapi_schemas()


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build_asyncapi()


def expected_queues() -> set[str]:
    """The queues `fleet.amqp.declare_topology` declares, from the topology helpers themselves."""
    return {
        topology.REQUEST_QUEUE,
        topology.DEAD_LETTER_QUEUE,
        *(topology.work_queue(t) for t in known_types()),
        *(topology.retry_queue(tier) for tier in topology.RETRY_TIERS),
    }


def amqp_channel_bindings(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: channel["bindings"]["amqp"] for name, channel in doc["channels"].items()}


def queue_channels(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """queue name -> the `x-queue` object of the channel that documents it."""
    return {
        binding["x-queue"]["name"]: binding["x-queue"]
        for binding in amqp_channel_bindings(doc).values()
        if "x-queue" in binding
    }


def message_names(message: dict[str, Any]) -> list[str]:
    refs = message.get("oneOf", [message])
    return [ref["$ref"].removeprefix("#/components/messages/") for ref in refs]


def walk(node: Any, path: str = "#") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}/{i}")


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} is not a local reference"
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve (at {part!r})"
        node = node[part]
    return node


def payload_validator(doc: dict[str, Any], schema_name: str) -> Draft202012Validator:
    """Validates a body against `components.schemas.<name>` (pydantic emits JSON Schema 2020-12)."""
    registry: Registry[Any] = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(doc))
    return Draft202012Validator({"$ref": f"{DOC_URI}#/components/schemas/{schema_name}"}, registry=registry)


# --- (a) valid AsyncAPI 2.6.0 ---------------------------------------------------------------------------


def test_document_validates_against_the_official_asyncapi_2_6_0_schema(
    schemas: AsyncApiSchemas, doc: dict[str, Any]
) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in schemas.document_validator().iter_errors(doc)
    ]

    assert errors == []


def test_every_amqp_binding_validates_against_the_amqp_binding_schemas(
    schemas: AsyncApiSchemas, doc: dict[str, Any]
) -> None:
    validators = {kind: schemas.amqp_binding_validator(kind) for kind in ("channel", "operation", "message")}
    bindings: list[tuple[str, str, dict[str, Any]]] = []
    for name, channel in doc["channels"].items():
        bindings.append(("channel", name, channel["bindings"]["amqp"]))
        for verb in ("publish", "subscribe"):
            if verb in channel:
                bindings.append(("operation", f"{name} {verb}", channel[verb]["bindings"]["amqp"]))
    for name, message in doc["components"]["messages"].items():
        bindings.append(("message", name, message["bindings"]["amqp"]))

    errors = [
        f"{kind} binding of {where}: {e.message}"
        for kind, where, binding in bindings
        for e in validators[kind].iter_errors(binding)
    ]

    assert errors == []
    assert len(bindings) > 2 * len(doc["channels"])


def test_the_validators_do_reject_broken_documents(schemas: AsyncApiSchemas, doc: dict[str, Any]) -> None:
    # Guard against validators that pass because they check nothing.
    no_info = {k: v for k, v in doc.items() if k != "info"}
    bad_version = {**doc, "asyncapi": "2.5.0"}
    bad_message = copy.deepcopy(doc)
    bad_message["components"]["messages"]["connector.get"]["correlationId"] = {"location": "header.id"}
    both = {**doc["channels"][topology.REQUEST_QUEUE]["bindings"]["amqp"], "queue": {"name": "x"}}

    for broken in (no_info, bad_version, bad_message):
        assert not schemas.document_validator().is_valid(broken)
    assert not schemas.amqp_binding_validator("channel").is_valid(both)
    assert not schemas.amqp_binding_validator("operation").is_valid({"deliveryMode": 3})


# --- (b) complete: every queue, exchange, message type and reply -----------------------------------------


def test_every_declared_queue_is_documented(doc: dict[str, Any]) -> None:
    assert set(queue_channels(doc)) == expected_queues()
    assert expected_queues() <= set(doc["channels"])
    assert declared_queues() == declared_queues(known_types()) == expected_queues()
    assert {topology.work_queue(t) for t in ServiceType} <= expected_queues()  # every built-in type


def test_queue_arguments_are_the_topology_arguments(doc: dict[str, Any]) -> None:
    queues = queue_channels(doc)
    work_args = topology.work_queue_arguments(topology.QueueLimits())

    assert queues[topology.REQUEST_QUEUE]["arguments"] == work_args
    for service_type in known_types():
        assert queues[topology.work_queue(service_type)]["arguments"] == work_args
    assert queues[topology.DEAD_LETTER_QUEUE]["arguments"] == topology.dead_letter_queue_arguments()
    for tier in topology.RETRY_TIERS:
        assert queues[topology.retry_queue(tier)]["arguments"] == topology.retry_queue_arguments(tier)
    assert all(q["durable"] and not q["exclusive"] for q in queues.values())
    assert work_args["x-queue-type"] == "quorum" and "x-delivery-limit" in work_args


def test_service_types_are_a_parameter_defaulting_to_the_known_types(doc: dict[str, Any]) -> None:
    with_plugin = build_asyncapi(service_types=[*known_types(), "echo"])
    service_type = doc["components"]["schemas"]["ServiceConnection"]["properties"]["service_type"]

    assert set(queue_channels(with_plugin)) == expected_queues() | {topology.work_queue("echo")}
    assert service_type["enum"] == known_types()  # what ServiceConnection's validator accepts
    assert (
        "echo"
        in with_plugin["components"]["schemas"]["ServiceConnection"]["properties"]["service_type"]["enum"]
    )


def test_queue_limits_are_a_parameter() -> None:
    limits = topology.QueueLimits(delivery_limit=9, max_length=123)
    queues = queue_channels(build_asyncapi(limits=limits))

    assert queues[topology.work_queue("csv")]["arguments"]["x-delivery-limit"] == 9
    assert queues[topology.REQUEST_QUEUE]["arguments"]["x-max-length"] == 123


def test_exchanges_and_routing_keys_are_the_topology_names(doc: dict[str, Any]) -> None:
    bindings = amqp_channel_bindings(doc)
    requests = bindings[topology.REQUEST_QUEUE]

    assert requests["is"] == "routingKey"
    assert (requests["exchange"]["name"], requests["exchange"]["type"]) == (
        topology.REQUEST_EXCHANGE,
        "direct",
    )
    assert requests["x-routing-key"] == topology.REQUEST_ROUTING_KEY
    for service_type in known_types():
        ops = bindings[topology.work_queue(service_type)]
        assert (ops["exchange"]["name"], ops["x-routing-key"]) == (topology.OPS_EXCHANGE, service_type)
    assert bindings[topology.DEAD_LETTER_QUEUE]["exchange"]["name"] == topology.DEAD_LETTER_EXCHANGE
    for tier in topology.RETRY_TIERS:
        assert bindings[topology.retry_queue(tier)]["exchange"]["name"] == topology.retry_exchange(tier)
    for key in (
        topology.connector_event("{action}", "{service_name}"),
        topology.health_event("{service_name}"),
    ):
        assert bindings[key]["exchange"] == {**bindings[key]["exchange"], "name": topology.EVENTS_EXCHANGE}
        assert bindings[key]["exchange"]["type"] == "topic"
    assert all(b["exchange"]["durable"] for b in bindings.values() if "exchange" in b)
    reply = bindings[REPLY_CHANNEL]
    assert reply["is"] == "queue" and reply["queue"]["exclusive"] and reply["queue"]["autoDelete"]


def test_every_message_type_is_a_request_message_named_after_it(doc: dict[str, Any]) -> None:
    messages = doc["components"]["messages"]
    published = message_names(doc["channels"][topology.REQUEST_QUEUE]["publish"]["message"])

    assert published == [t.value for t in MessageType]
    for message_type in MessageType:
        message = messages[message_type.value]
        assert message["name"] == message["messageId"] == message_type.value
        assert message["bindings"]["amqp"]["messageType"] == message_type.value
        assert message["headers"]["properties"]["type"] == {"const": message_type.value}
        assert {"type", "correlation_id", "reply_to"} <= set(message["headers"]["required"])
        body = REQUEST_BODIES[message_type].__name__
        assert message["payload"] == {"$ref": f"#/components/schemas/{body}"}


def test_work_queues_carry_the_envelopes_of_the_worker_calls(doc: dict[str, Any]) -> None:
    messages = doc["components"]["messages"]
    for service_type in known_types():
        carried = message_names(doc["channels"][topology.work_queue(service_type)]["publish"]["message"])
        assert carried == ["OperationEnvelope", "CheckEnvelope"]
    assert {messages[n]["bindings"]["amqp"]["messageType"] for n in carried} == {
        t.value for t in WORKER_CALLS
    }


def test_replies_cover_every_reply_body(doc: dict[str, Any]) -> None:
    replies = message_names(doc["channels"][REPLY_CHANNEL]["subscribe"]["message"])
    expected = {
        "OperationResult",
        "ConnectionTestResult",
        "ConnectorCreated",
        "ConnectorList",
        "ConnectorState",
        "ConnectorMetrics",
        "ConnectorStatus",
        "FleetMetrics",
        "Acknowledged",
        "FailedReply",
        "CancelRequested",
        "DeadLetterPage",
        "DeadLetterOutcome",
    }

    assert set(replies) == expected == {m.__name__ for models in REPLY_BODIES.values() for m in models}
    for message_type in MessageType:
        assert set(doc["components"]["messages"][message_type.value]["x-replies"]) <= expected
    result_types = doc["components"]["messages"]["OperationResult"]["headers"]["properties"]["type"]
    assert set(result_types["enum"]) == {"operation.execute.reply", "operation.result.reply"}


def test_every_message_is_json_with_the_correlation_id(doc: dict[str, Any]) -> None:
    for name, message in doc["components"]["messages"].items():
        assert message["contentType"] == "application/json", name
        assert message["correlationId"]["location"] == "$message.header#/correlation_id", name
        assert message["headers"]["type"] == "object", name


def test_every_message_is_used_by_a_channel(doc: dict[str, Any]) -> None:
    used = {
        name
        for channel in doc["channels"].values()
        for verb in ("publish", "subscribe")
        if verb in channel
        for name in message_names(channel[verb]["message"])
    }

    assert used == set(doc["components"]["messages"])


def test_message_ids_are_unique_across_the_resolved_document(doc: dict[str, Any]) -> None:
    # The AsyncAPI parser rejects a messageId seen twice once references are resolved, which is what a
    # message shared by several channels (the envelopes) would be.
    seen = [
        doc["components"]["messages"][name]["messageId"]
        for channel in doc["channels"].values()
        for verb in ("publish", "subscribe")
        if verb in channel
        for name in message_names(channel[verb]["message"])
        if "messageId" in doc["components"]["messages"][name]
    ]

    assert len(seen) == len(set(seen))
    assert set(seen) >= {t.value for t in MessageType}


# --- (c) every reference resolves; the payload schemas are the models' ------------------------------------


def test_every_ref_resolves_and_no_defs_are_left(doc: dict[str, Any]) -> None:
    refs = [node for path, node in walk(doc) if path.endswith("/$ref")]
    schema_refs = [r for r in refs if r.startswith("#/components/schemas/")]

    for ref in refs:
        resolve(doc, ref)
    assert len(schema_refs) > len(MessageType)
    assert not [path for path, _ in walk(doc) if path.endswith("/$defs")]
    assert set(doc["components"]["schemas"]) >= {"OperationRequest", "ErrorInfo", "ErrorCategory"}


def test_payload_schemas_accept_what_the_fleet_accepts_and_sends(doc: dict[str, Any]) -> None:
    request = OperationRequest.model_validate(SPEC_INSERT_REQUEST).with_defaults()
    envelope = OperationEnvelope(
        request=request, service_type="postgresql", connector_version=1, deadline=1.0
    )
    error = PermanentError("bad data", code=ErrorCode.INVALID_DATA)
    bodies = {
        "ServiceConnection": SPEC_CREATE_BODY,
        "OperationRequest": SPEC_INSERT_REQUEST,  # with the `connection_id` alias
        "OperationEnvelope": json.loads(envelope.model_dump_json()),
        "OperationResult": OperationResult.failed("op_1", error).model_dump(mode="json"),
        "FailedReply": FailedReply.of(error).model_dump(mode="json"),
    }

    for name, body in bodies.items():
        assert list(payload_validator(doc, name).iter_errors(body)) == [], name


def test_payload_schemas_refuse_what_the_fleet_refuses(doc: dict[str, Any]) -> None:
    validator = payload_validator(doc, "OperationRequest")

    assert not validator.is_valid({"operation": "query", "surprise": 1})
    assert not validator.is_valid({"operation": "Not An Operation"})
    assert not payload_validator(doc, "ServiceConnection").is_valid({**SPEC_CREATE_BODY, "service_type": "x"})


# --- the builder itself ----------------------------------------------------------------------------------


def test_build_is_pure_json_and_takes_its_version_and_server() -> None:
    first = build_asyncapi()
    custom = build_asyncapi("9.9.9", server_url="amqp://broker.example:5672/scf")

    assert json.loads(json.dumps(first)) == first == build_asyncapi()
    assert first["servers"]["rabbitmq"]["url"] == DEFAULT_SERVER_URL
    assert (first["servers"]["rabbitmq"]["protocol"], first["servers"]["rabbitmq"]["protocolVersion"]) == (
        "amqp",
        "0-9-1",
    )
    assert custom["info"]["version"] == "9.9.9"
    assert custom["servers"]["rabbitmq"]["url"] == "amqp://broker.example:5672/scf"


def test_merge_schema_hoists_nested_defs_and_rewrites_refs() -> None:
    components: dict[str, Any] = {}
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A"}},
        "$defs": {"A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/B"}}, "$defs": {"B": {}}}},
    }

    ref = merge_schema(components, "Top", schema)

    assert ref == {"$ref": "#/components/schemas/Top"}
    assert set(components) == {"Top", "A", "B"}
    assert components["Top"]["properties"]["a"] == {"$ref": "#/components/schemas/A"}
    assert components["A"]["properties"]["b"] == {"$ref": "#/components/schemas/B"}
    assert "$defs" in schema  # the caller's schema is left alone


def test_merge_schema_refuses_two_different_schemas_under_one_name() -> None:
    components: dict[str, Any] = {}
    merge_schema(components, "X", {"type": "string"})
    merge_schema(components, "X", {"type": "string"})  # the same one again is fine

    with pytest.raises(ValueError, match="'X'"):
        merge_schema(components, "X", {"type": "integer"})
