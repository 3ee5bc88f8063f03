"""The RabbitMQ connector's pure parts: request shapes, name guards, message bodies, ids and plans."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from scf.connectors.rabbitmq.messages import (
    check_data_format,
    check_size,
    decode_body,
    encode_body,
    jsonable,
    message_ids,
)
from scf.connectors.rabbitmq.names import is_fleet_name, refuse_fleet, refuse_reserved
from scf.connectors.rabbitmq.operations import Outgoing
from scf.connectors.rabbitmq.plans import Run, consume_token
from scf.connectors.rabbitmq.requests import (
    BindParameters,
    ConsumeParameters,
    DeclareQueueParameters,
    PublishData,
    PublishParameters,
)
from scf.connectors.rabbitmq.table import PLANNERS, RABBITMQ_OPERATIONS
from scf.schemas.configs.rabbitmq import RabbitMQConfig
from scf.schemas.errors import ConnectorError, PermanentError, SecurityError
from scf.schemas.operation import OperationRequest
from scf.schemas.validation import parse_model as parse


def config(**fields: Any) -> RabbitMQConfig:
    return RabbitMQConfig.model_validate(fields)


# --- request shapes ----------------------------------------------------------------------------------


def test_publish_takes_exactly_one_of_message_or_messages() -> None:
    assert parse(PublishData, {"message": None}).bodies == [None]
    assert parse(PublishData, {"messages": [1, {"a": [2]}]}).bodies == [1, {"a": [2]}]
    bad_bodies: list[dict[str, Any]] = [{}, {"message": 1, "messages": [2]}, {"messages": []}]
    for bad in bad_bodies:
        with pytest.raises(PermanentError, match="invalid request"):
            parse(PublishData, bad)


def test_a_misspelt_key_is_an_invalid_request_naming_the_field() -> None:
    with pytest.raises(PermanentError) as caught:
        parse(PublishParameters, {"routing_kye": "q"}, "parameters")

    assert caught.value.code == "INVALID_REQUEST"
    assert "routing_kye" in caught.value.message


def test_queue_arguments_are_an_allowlist_under_rabbitmq_names() -> None:
    params = (
        RABBITMQ_OPERATIONS["declare_queue"]
        .parse(
            request(
                "declare_queue", name="jobs", arguments={"x-queue-type": "quorum", "x-delivery-limit": 5}
            ),
            "rabbitmq",
        )
        .parameters
    )

    assert params.queue == "jobs"
    assert params.arguments.to_amqp() == {"x-queue-type": "quorum", "x-delivery-limit": 5}
    with pytest.raises(PermanentError, match="x-max-lenght"):
        parse(DeclareQueueParameters, {"queue": "q", "arguments": {"x-max-lenght": 1}})


@pytest.mark.parametrize("name", ["q" * 256, "é" * 128, "tab\there", "nul\x00"])
def test_names_over_255_bytes_or_with_control_characters_are_refused(name: str) -> None:
    with pytest.raises(PermanentError, match="queue"):
        parse(ConsumeParameters, {"queue": name})


def test_headers_and_binding_arguments_must_fit_amqp_tables() -> None:
    assert parse(PublishParameters, {"headers": {"n": 2**63 - 1, "nested": {"ok": [1, "a"]}}}).headers
    with pytest.raises(PermanentError, match="64-bit"):
        parse(PublishParameters, {"headers": {"n": 2**63}})
    with pytest.raises(PermanentError, match="64-bit"):
        parse(BindParameters, {"queue": "q", "exchange": "x", "arguments": {"deep": [{"n": -(2**64)}]}})


# --- names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fleet"),
    [
        ("scf", True),
        ("scf.requests", True),
        ("scf.ops.qdrant", True),
        ("scfx", False),
        ("my.scf.q", False),
        ("", False),
    ],
)
def test_fleet_names_are_the_scf_exchange_and_everything_under_scf_dot(name: str, fleet: bool) -> None:
    assert is_fleet_name(name) is fleet


def test_fleet_names_are_refused_as_security_unless_allowed() -> None:
    refuse_fleet("scf.requests", "parameters.queue", allowed=True)
    with pytest.raises(SecurityError) as caught:
        refuse_fleet("scf.requests", "parameters.queue", allowed=False)

    assert caught.value.code == "PERMISSION_DENIED"
    assert caught.value.to_info().message == "access denied"


def test_reserved_amq_names_are_a_naming_error() -> None:
    with pytest.raises(PermanentError) as caught:
        refuse_reserved("amq.gen-1", "parameters.queue")

    assert caught.value.code == "INVALID_IDENTIFIER"


# --- bodies, ids, headers --------------------------------------------------------------------------------


def test_bodies_encode_per_data_format() -> None:
    assert encode_body({"b": [1, "é"]}, "json", "m") == '{"b":[1,"é"]}'.encode()
    assert encode_body("plain text", "text", "m") == b"plain text"
    assert encode_body("AAEC/w==", "base64", "m") == b"\x00\x01\x02\xff"


@pytest.mark.parametrize(
    ("value", "data_format", "problem"),
    [
        (float("nan"), "json", "not a JSON value"),
        (1, "text", "must be a string"),
        ("*-*", "base64", "base64"),
    ],
)
def test_bodies_that_do_not_fit_their_format_are_invalid_data(
    value: Any, data_format: Any, problem: str
) -> None:
    with pytest.raises(PermanentError, match=problem) as caught:
        encode_body(value, data_format, "data.messages[3]")

    assert caught.value.code == "INVALID_DATA"
    assert "data.messages[3]" in caught.value.message


def test_unknown_data_formats_and_oversized_bodies_are_refused() -> None:
    assert check_data_format("base64") == "base64"
    with pytest.raises(PermanentError, match="data_format"):
        check_data_format("csv")
    with pytest.raises(PermanentError) as caught:
        check_size(b"x" * 11, 10, "data.message")
    assert caught.value.code == "LIMIT_EXCEEDED"


def test_message_ids_derive_from_the_key_and_position_else_are_random() -> None:
    first, again, other = message_ids("load-7", 3), message_ids("load-7", 3), message_ids("load-8", 3)

    assert first == again
    assert len(set(first)) == 3 and not set(first) & set(other)
    assert message_ids(None, 2) != message_ids(None, 2)


@pytest.mark.parametrize(
    ("body", "content_type", "decoded"),
    [
        (b'{"a":1}', "application/json", ({"a": 1}, "json")),
        (b'{"a":1}', "application/vnd.api+json; charset=utf-8", ({"a": 1}, "json")),
        (b"not json", "application/json", ("not json", "text")),
        ("héllo".encode(), "text/plain; charset=utf-8", ("héllo", "text")),
        (b"untyped", None, ("untyped", "text")),
        (b"\x00\xff", "application/octet-stream", ("AP8=", "base64")),
        (b"\xff\xfe", "text/plain", ("//4=", "base64")),
    ],
)
def test_consumed_bodies_decode_by_content_type(body: bytes, content_type: str | None, decoded: Any) -> None:
    assert decode_body(body, content_type) == decoded


def test_amqp_field_values_become_plain_json() -> None:
    stamp = dt.datetime(2026, 1, 2, 3, 4, 5)

    assert jsonable(
        {"b": b"txt", "raw": b"\xff", "t": stamp, "d": Decimal("1.50"), "l": [1.5, float("inf")], "n": None}
    ) == {
        "b": "txt",
        "raw": "/w==",
        "t": "2026-01-02T03:04:05+00:00",
        "d": "1.50",
        "l": [1.5, "inf"],
        "n": None,
    }


@pytest.mark.parametrize("expiration_ms", [0, 1, 1001, 1003, 86_400_001])
def test_a_per_message_ttl_reaches_the_broker_to_the_millisecond(expiration_ms: int) -> None:
    outgoing = Outgoing(
        exchange="",
        routing_key="q",
        bodies=[b"{}"],
        message_ids=["m"],
        content_type="application/json",
        persistent=True,
        mandatory=True,
        expiration_ms=expiration_ms,
    )

    assert outgoing.message(0).properties.expiration == str(expiration_ms)


# --- plans refuse before any I/O ---------------------------------------------------------------------------


def request(operation: str, data: dict[str, Any] | None = None, **parameters: Any) -> OperationRequest:
    return OperationRequest(operation=operation, data=data or {}, parameters=parameters)


def plan(req: OperationRequest, settings: RabbitMQConfig, budget: float) -> Run:
    """What the connector does before any I/O: parse against the operation's row, then plan."""
    call = RABBITMQ_OPERATIONS[req.operation].parse(req, "rabbitmq")
    return PLANNERS[req.operation](call, settings, budget)


@pytest.mark.parametrize(
    ("req", "code"),
    [
        (request("publish", {"messages": [1, 2, 3]}, routing_key="q"), "LIMIT_EXCEEDED"),
        (request("publish", {"messages": [1, 2]}, routing_key="q", message_id="m"), "INVALID_REQUEST"),
        (request("publish", {"message": 1}, routing_key="scf.requests"), "PERMISSION_DENIED"),
        (request("publish", {"message": 1}, exchange="scf", routing_key="requests"), "PERMISSION_DENIED"),
        (request("publish", {"message": 1}, routing_key="amq.gen-Xy12"), "PERMISSION_DENIED"),
        (request("consume", queue="q", max_messages=4), "LIMIT_EXCEEDED"),
        (request("consume", queue="q", page_size=4), "LIMIT_EXCEEDED"),
        (request("consume", queue="q", page_size=2, max_messages=2), "INVALID_REQUEST"),
        (request("consume", {"queue": "q"}), "INVALID_REQUEST"),
        (
            request("declare_queue", queue="q", arguments={"x-dead-letter-exchange": "scf.dlx"}),
            "PERMISSION_DENIED",
        ),
        (request("declare_exchange", exchange="amq.mine"), "INVALID_IDENTIFIER"),
        (request("delete_queue", queue="scf.dead"), "PERMISSION_DENIED"),
        (request("enqueue", {"jobs": [1]}, queue="scf.ops.pdf"), "PERMISSION_DENIED"),
        (request("bind", queue="q", exchange="scf.events"), "PERMISSION_DENIED"),
    ],
)
def test_plans_refuse_bad_requests_before_any_io(req: OperationRequest, code: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        plan(req, config(max_batch=2, max_consume=3), budget=10)

    assert caught.value.code == code


MINIMAL = {
    "publish": request("publish", {"message": 1}, routing_key="q"),
    "enqueue": request("enqueue", {"jobs": [1]}, queue="jobs"),
    "consume": request("consume", queue="q"),
    "declare_queue": request("declare_queue", queue="q"),
    "declare_exchange": request("declare_exchange", exchange="x"),
    "delete_exchange": request("delete_exchange", exchange="x"),
    "bind": request("bind", queue="q", exchange="x"),
    "unbind": request("unbind", queue="q", exchange="x"),
    "delete_queue": request("delete_queue", queue="q"),
    "purge_queue": request("purge_queue", queue="q"),
    "queue_stats": request("queue_stats", queue="scf.requests"),  # read-only: fleet queues may be watched
}


def test_every_operation_plans_from_a_minimal_request() -> None:
    assert set(MINIMAL) == set(RABBITMQ_OPERATIONS) == set(PLANNERS)
    for req in MINIMAL.values():
        assert callable(plan(req, config(), budget=10))


def test_old_names_are_deprecated_aliases_of_the_convention() -> None:
    rows = RABBITMQ_OPERATIONS
    old = rows["consume"].parse(request("consume", name="q", max_messages=3), "rabbitmq")
    new = rows["consume"].parse(request("consume", queue="q", page_size=3), "rabbitmq")
    exchange = rows["declare_exchange"].parse(request("declare_exchange", name="x"), "rabbitmq")

    assert old.parameters == new.parameters
    assert exchange.parameters.exchange == "x"


def test_a_consume_page_token_names_its_queue() -> None:
    token = consume_token("q")

    assert token == consume_token("q") != consume_token("r")
    assert callable(
        plan(request("consume", queue="q").model_copy(update={"page_token": token}), config(), 10)
    )
    with pytest.raises(PermanentError) as caught:
        plan(request("consume", queue="r").model_copy(update={"page_token": token}), config(), 10)
    assert caught.value.code == "INVALID_REQUEST"
    with pytest.raises(PermanentError):
        plan(request("queue_stats", queue="q").model_copy(update={"page_token": token}), config(), 10)
