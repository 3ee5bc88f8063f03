"""Reading a dead-lettered message (pure): why, where from, which error, with secrets redacted."""

from __future__ import annotations

import json
from typing import Any

from scf.dispatcher.dead_letter_store import MAX_SHOWN_BODY, describe
from scf.schemas import topology
from scf.schemas.dead_letters import DeadReason
from scf.schemas.errors import ErrorCode, TransientError

ENVELOPE = {
    "request": {
        "service_name": "db",
        "operation": "insert",
        "operation_id": "op_1",
        "data": {"password": "hunter2", "records": []},
    },
    "service_type": "postgresql",
    "deadline": 1.0,
}


def letter(body: Any, headers: dict[str, Any], limit: int = 5) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return describe(raw, headers, "operation.execute", "msg_1", 100.0, limit)


def test_a_worker_dead_letter_carries_its_reason_error_and_origin() -> None:
    error = TransientError("cannot reach the service", code=ErrorCode.CONNECTION_FAILED).to_info()
    found = letter(
        ENVELOPE,
        {
            topology.DEAD_REASON_HEADER: "retries_exhausted",
            topology.DEAD_ERROR_HEADER: error.model_dump_json(),
            topology.ATTEMPTS_HEADER: 4,
            topology.ORIGIN_EXCHANGE_HEADER: "scf.ops",
            topology.ORIGIN_ROUTING_KEY_HEADER: "postgresql",
            "authorization": "Bearer secret-token",
        },
    )
    assert found.reason is DeadReason.RETRIES_EXHAUSTED
    assert (found.error.code, found.attempts) == ("CONNECTION_FAILED", 4)
    assert (found.exchange, found.routing_key) == ("scf.ops", "postgresql")
    assert (found.service_name, found.service_type, found.operation_id) == ("db", "postgresql", "op_1")
    dumped = found.model_dump_json()
    assert "hunter2" not in dumped and "secret-token" not in dumped


def test_a_broker_dead_letter_is_read_from_x_death() -> None:
    death = {"reason": "delivery_limit", "exchange": "scf.ops", "routing-keys": ["csv"], "count": 1}
    found = letter(ENVELOPE, {"x-death": [death]}, limit=5)
    assert found.reason is DeadReason.DELIVERY_LIMIT
    assert found.error.code == "DEAD_LETTERED" and not found.error.retryable
    assert found.attempts == 6
    assert (found.exchange, found.routing_key) == ("scf.ops", "csv")
    assert "x-death" not in found.headers


def test_an_expired_request_is_a_deadline_error() -> None:
    found = letter(
        ENVELOPE, {"x-death": [{"reason": "expired", "exchange": "scf.ops", "routing-keys": [b"csv"]}]}
    )
    assert (found.reason, found.error.code) == (DeadReason.EXPIRED, "DEADLINE_EXCEEDED")
    assert found.routing_key == "csv"


def test_a_raw_request_and_unknown_reasons_and_junk_bodies_are_still_described() -> None:
    raw = letter(
        {"service_name": "db", "operation": "query", "operation_id": "op_2"}, {"x-death": [{"reason": "odd"}]}
    )
    assert (raw.reason, raw.operation_id) == (DeadReason.REJECTED, "op_2")
    junk = letter(b"\xff\xfe not json", {})
    assert junk.operation_id == "msg_1" and isinstance(junk.body, str)
    huge = letter({"request": {"data": "x" * (MAX_SHOWN_BODY * 2)}}, {})
    assert huge.body == {"truncated": True, "bytes": MAX_SHOWN_BODY * 2 + len('{"request": {"data": ""}}')}


def test_a_malformed_error_header_falls_back_to_the_reason() -> None:
    found = letter(
        ENVELOPE, {topology.DEAD_ERROR_HEADER: "{not json", topology.DEAD_REASON_HEADER: "nonsense"}
    )
    assert (found.reason, found.error.code) == (DeadReason.REJECTED, "DEAD_LETTERED")


def test_only_ids_the_store_gives_out_can_be_selected() -> None:
    from pydantic import ValidationError

    from scf.schemas.dead_letters import DeadLetterSelection

    DeadLetterSelection(ids=["dl_" + "0" * 32])
    for bad in ("dl_abc:sealed", "scf:dead", "dl_" + "g" * 32):
        try:
            DeadLetterSelection(ids=[bad])
        except ValidationError:
            continue
        raise AssertionError(f"{bad!r} was accepted as a dead letter id")
