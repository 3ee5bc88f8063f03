"""The dispatcher's request handler on in-memory doubles: routing, refusals and exactly one settlement.

`Dispatcher._on_request` runs as it does in the fleet, but its channel, exchanges and state are the
doubles of tests/support (no broker, no Redis), so a change to routing or settlement is checked in
milliseconds. The same behaviour against the real broker is tests/integration's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from scf.dispatcher.dispatcher import Dispatcher
from scf.fleet.settings import Settings
from scf.fleet.settle import Settler
from scf.schemas import topology
from scf.schemas.errors import ErrorCode
from scf.schemas.operation import OperationEnvelope, OperationResult
from tests.support.memory_broker import MemoryBroker, MemoryExchange, MemoryMessage
from tests.support.memory_state import MemoryState

EXECUTE = "operation.execute"


@pytest.fixture
def state() -> MemoryState:
    registry = MemoryState()
    registry.add("orders_db", "postgresql")
    registry.add("paused_db", "postgresql", paused=True)
    registry.add("lonely", "qdrant")
    registry.workers["qdrant"] = 0
    return registry


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def dispatcher(state: MemoryState, broker: MemoryBroker) -> Dispatcher:
    handler = Dispatcher(Settings(), state, connection=None)  # type: ignore[arg-type]
    handler._settler = Settler(broker.channel(), origin=topology.REQUEST_EXCHANGE)  # type: ignore[arg-type]
    handler._ops = MemoryExchange(topology.OPS_EXCHANGE, broker)  # type: ignore[assignment]
    return handler


def request(body: Any, *, message_type: str = EXECUTE, **properties: Any) -> MemoryMessage:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return MemoryMessage(raw, type=message_type, **properties)


def only_reply(broker: MemoryBroker) -> dict[str, Any]:
    (reply,) = broker.replies()
    answer: dict[str, Any] = json.loads(reply.body)
    return answer


async def test_an_operation_is_forwarded_to_its_types_queue_then_acked(
    dispatcher: Dispatcher, broker: MemoryBroker
) -> None:
    message = request(
        {"service_name": "orders_db", "operation": "query", "parameters": {"query": "SELECT 1"}}
    )

    await dispatcher._on_request(message)  # type: ignore[arg-type]

    (forwarded,) = broker.to(topology.OPS_EXCHANGE, "postgresql")
    envelope = OperationEnvelope.model_validate_json(forwarded.body)
    assert envelope.service_type == "postgresql" and envelope.connector_version == 1
    assert envelope.request.parameters == {"query": "SELECT 1"}
    assert forwarded.message.reply_to == "amq.gen-caller" and forwarded.message.correlation_id == "corr-1"
    assert forwarded.message.expiration is not None  # the deadline travels as the message's TTL
    assert broker.replies() == []  # the worker answers, not the dispatcher
    assert message.settlement == "ack"


async def test_with_no_live_worker_an_operation_waits_in_its_types_queue_instead_of_failing(
    dispatcher: Dispatcher, broker: MemoryBroker
) -> None:
    message = request({"service_name": "lonely", "operation": "search", "timeout": 7})

    await dispatcher._on_request(message)  # type: ignore[arg-type]

    (forwarded,) = broker.to(topology.OPS_EXCHANGE, "qdrant")
    assert OperationEnvelope.model_validate_json(forwarded.body).request.service_name == "lonely"
    expiration = forwarded.message.expiration
    assert isinstance(expiration, int | float) and 0 < expiration <= 7  # the deadline as its TTL
    assert broker.replies() == []
    assert message.settlement == "ack"


async def test_the_fleet_may_choose_to_fail_fast_when_no_worker_is_alive(
    state: MemoryState, broker: MemoryBroker
) -> None:
    handler = Dispatcher(Settings(scf_no_worker="fail"), state, connection=None)  # type: ignore[arg-type]
    handler._settler = Settler(broker.channel(), origin=topology.REQUEST_EXCHANGE)  # type: ignore[arg-type]
    handler._ops = MemoryExchange(topology.OPS_EXCHANGE, broker)  # type: ignore[assignment]
    refused, waiting = (
        request({"service_name": "lonely", "operation": "search"}),
        request({"service_name": "lonely", "operation": "search", "no_worker": "wait"}),
    )

    await handler._on_request(refused)  # type: ignore[arg-type]
    await handler._on_request(waiting)  # type: ignore[arg-type]

    assert only_reply(broker)["error"]["code"] == ErrorCode.NO_WORKER
    assert len(broker.to(topology.OPS_EXCHANGE, "qdrant")) == 1  # the request's own choice wins
    assert refused.settlement == waiting.settlement == "ack"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"service_name": "nobody", "operation": "query"}, ErrorCode.CONNECTOR_NOT_FOUND),
        ({"service_name": "paused_db", "operation": "query"}, ErrorCode.CONNECTOR_PAUSED),
        ({"service_name": "lonely", "operation": "search", "no_worker": "fail"}, ErrorCode.NO_WORKER),
        ({"service_name": "orders_db", "operation": "Bad Name"}, ErrorCode.INVALID_REQUEST),
        ({"operation": "query"}, ErrorCode.INVALID_REQUEST),
        (b"{not json", ErrorCode.INVALID_JSON),
    ],
)
async def test_a_refused_operation_gets_one_typed_reply_and_is_acked(
    dispatcher: Dispatcher, broker: MemoryBroker, body: Any, code: ErrorCode
) -> None:
    message = request(body)

    await dispatcher._on_request(message)  # type: ignore[arg-type]

    answer = only_reply(broker)
    assert answer["status"] == "failed" and answer["error"]["code"] == code
    assert broker.to(topology.OPS_EXCHANGE) == []
    assert message.settlement == "ack"


async def test_an_unknown_message_type_is_refused_not_dropped(
    dispatcher: Dispatcher, broker: MemoryBroker
) -> None:
    message = request({}, message_type="operation.explode")

    await dispatcher._on_request(message)  # type: ignore[arg-type]

    assert only_reply(broker)["error"]["code"] == ErrorCode.UNKNOWN_MESSAGE_TYPE
    assert broker.replies()[0].type == "operation.explode.reply"
    assert message.settlement == "ack"


async def test_a_refusal_nobody_waits_for_becomes_a_dead_letter(
    dispatcher: Dispatcher, broker: MemoryBroker
) -> None:
    message = request({"service_name": "nobody", "operation": "query"}, reply_to=None)

    await dispatcher._on_request(message)  # type: ignore[arg-type]

    (dead,) = broker.to(topology.DEAD_LETTER_EXCHANGE)
    assert dead.message.headers[topology.DEAD_REASON_HEADER]
    assert ErrorCode.CONNECTOR_NOT_FOUND in str(dead.message.headers[topology.DEAD_ERROR_HEADER])
    assert broker.replies() == [] and message.settlement == "ack"


async def test_a_chosen_operation_id_is_claimed_and_a_second_caller_refused(
    dispatcher: Dispatcher, broker: MemoryBroker, state: MemoryState
) -> None:
    body = {"service_name": "orders_db", "operation": "query", "operation_id": "op-chosen-1"}
    first, second = request(body, correlation_id="a"), request(body, correlation_id="b")

    await dispatcher._on_request(first)  # type: ignore[arg-type]
    await dispatcher._on_request(second)  # type: ignore[arg-type]

    assert "op-chosen-1" in state.claims
    assert len(broker.to(topology.OPS_EXCHANGE)) == 1
    assert only_reply(broker)["error"]["code"] == ErrorCode.OPERATION_ID_IN_USE
    assert first.settlement == second.settlement == "ack"


async def test_a_broker_failing_mid_forward_gives_the_request_back(
    dispatcher: Dispatcher, broker: MemoryBroker
) -> None:
    broker.failure = RuntimeError("channel closed under us")
    message = request({"service_name": "orders_db", "operation": "query"})

    await dispatcher._on_request(message)  # type: ignore[arg-type]

    assert message.settlement == "requeue"  # redelivered later: nothing is lost


async def test_redis_away_with_no_route_seen_is_a_transient_reply(
    dispatcher: Dispatcher, broker: MemoryBroker, state: MemoryState
) -> None:
    state.down = True
    message = request({"service_name": "orders_db", "operation": "query"})

    await dispatcher._on_request(message)  # type: ignore[arg-type]

    answer = only_reply(broker)
    assert (
        answer["error"]["code"] == ErrorCode.STATE_UNAVAILABLE and answer["error"]["category"] == "transient"
    )
    assert message.settlement == "ack"


async def test_a_route_seen_before_survives_redis_going_away(
    dispatcher: Dispatcher, broker: MemoryBroker, state: MemoryState
) -> None:
    body = {"service_name": "orders_db", "operation": "query"}
    await dispatcher._on_request(request(body))  # type: ignore[arg-type]
    state.down = True
    route = dispatcher._routes._routes["orders_db"]
    dispatcher._routes._routes["orders_db"] = replace(
        route, expires=route.expires - 2
    )  # expired, not yet stale

    message = request(body)
    await dispatcher._on_request(message)  # type: ignore[arg-type]

    assert len(broker.to(topology.OPS_EXCHANGE, "postgresql")) == 2
    assert message.settlement == "ack"


async def test_a_control_call_is_answered_by_the_dispatcher(
    dispatcher: Dispatcher, broker: MemoryBroker, state: MemoryState
) -> None:
    state.results["op-1"] = OperationResult(operation_id="op-1", status="success", records_processed=3)
    found = request({"operation_id": "op-1"}, message_type="operation.result")
    missing = request({"operation_id": "op-2"}, message_type="operation.result")

    await dispatcher._on_request(found)  # type: ignore[arg-type]
    await dispatcher._on_request(missing)  # type: ignore[arg-type]

    first, second = (json.loads(r.body) for r in broker.replies())
    assert first["records_processed"] == 3 and first["status"] == "success"
    assert second["error"]["code"] == ErrorCode.RESULT_NOT_FOUND
    assert found.settlement == missing.settlement == "ack"
