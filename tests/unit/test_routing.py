"""Pure routing decisions of the dispatcher: every bad envelope is a typed error, never a crash."""

from __future__ import annotations

import json

import pytest

from scf.dispatcher.routing import MAX_JSON_DEPTH, _depth, deadline_for, decode
from scf.schemas import topology
from scf.schemas.control import MessageType
from scf.schemas.errors import PermanentError


def test_a_valid_execute_request_is_decoded() -> None:
    decoded = decode("operation.execute", "application/json", b'{"operation": "query"}', 1024)

    assert decoded.message_type is MessageType.OPERATION_EXECUTE
    assert decoded.body == {"operation": "query"}


def test_control_calls_and_tests_are_decoded_with_their_type() -> None:
    assert decode("connector.list", None, b"{}", 1024).message_type is MessageType.CONNECTOR_LIST
    assert decode("connector.test", None, b"{}", 1024).message_type is MessageType.CONNECTOR_TEST


@pytest.mark.parametrize(
    ("message_type", "content_type", "body", "code"),
    [
        ("operation.execute", "application/json", b'{"operation": ', "INVALID_JSON"),
        ("operation.execute", "application/json", b"\xff\xfe", "INVALID_JSON"),
        ("operation.execute", "application/json", b"[1, 2]", "INVALID_REQUEST"),
        ("operation.execute", "text/plain", b"{}", "INVALID_REQUEST"),
        ("operation.explode", "application/json", b"{}", "UNKNOWN_MESSAGE_TYPE"),
        (None, "application/json", b"{}", "UNKNOWN_MESSAGE_TYPE"),
        (
            "operation.execute",
            "application/json",
            b"{" + b'"a":' * 1 + b'"' + b"x" * 2048 + b'"}',
            "LIMIT_EXCEEDED",
        ),
    ],
)
def test_bad_envelopes_are_typed_permanent_errors(
    message_type: str | None, content_type: str, body: bytes, code: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        decode(message_type, content_type, body, 1024)

    assert caught.value.code == code


def test_deep_nesting_is_refused_without_exhausting_the_stack() -> None:
    body = ("[" * (MAX_JSON_DEPTH + 5)) + ("]" * (MAX_JSON_DEPTH + 5))
    wrapped = json.dumps({"data": "x"})[:-1] + ', "deep": ' + body + "}"

    with pytest.raises(PermanentError) as caught:
        decode("operation.execute", None, wrapped.encode(), 1 << 20)

    assert caught.value.code == "LIMIT_EXCEEDED"


def test_deadline_uses_the_request_timeout_or_the_default() -> None:
    assert deadline_for(5.0, 30.0, now=1000.0) == 1005.0
    assert deadline_for(None, 30.0, now=1000.0) == 1030.0


def test_queue_names_and_arguments() -> None:
    args = topology.work_queue_arguments(topology.QueueLimits(delivery_limit=7, max_length=10))

    assert topology.work_queue("postgresql") == "scf.ops.postgresql"
    assert args["x-queue-type"] == "quorum"
    assert args["x-delivery-limit"] == 7
    assert args["x-dead-letter-exchange"] == topology.DEAD_LETTER_EXCHANGE
    assert args["x-dead-letter-strategy"] == "at-least-once"
    assert args["x-overflow"] == "reject-publish"
    assert topology.connector_event("updated", "db.main") == "connector.updated.db.main"


@pytest.mark.parametrize(
    ("routing_key", "name"),
    [("connector.updated.db", "db"), ("connector.deleted.db.main", "db.main"), ("health.db", ""), ("x", "")],
)
def test_the_connector_is_read_back_from_an_event_key(routing_key: str, name: str) -> None:
    assert topology.connector_of_event(routing_key) == name


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON", None, ""])
def test_json_media_types_with_parameters_are_accepted(content_type: str | None) -> None:
    assert decode("operation.execute", content_type, b"{}", 1024).body == {}


def test_depth_counts_scalars_as_a_level_and_stops_past_the_limit() -> None:
    nested: list[object] = []
    inner = nested
    for _ in range(200):
        deeper: list[object] = []
        inner.append(deeper)
        inner = deeper
    assert _depth({"a": 1}) == 2
    assert _depth({"records": [{"id": 1}]}) == 4
    assert _depth({"a": {"b": []}}) == 3
    assert _depth({"a": nested}) == MAX_JSON_DEPTH + 1
