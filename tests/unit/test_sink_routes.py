"""A sink batch runs on the worker's own connector when it serves the target, else through the fleet."""

from __future__ import annotations

import time
from typing import Any

import pytest

from scf.connectors.sources import SinkTarget
from scf.schemas.control import MessageType
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationRequest, OperationResult
from scf.worker.sink import FleetSink

TARGET = SinkTarget(service_name="warehouse", table_name="events", batch_size=2)
RECORDS = [{"id": 1}, {"id": 2}]


class Fleet:
    """Stands in for the worker's RpcClient (our own class): records what went through the fleet."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, message_type: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.calls.append((message_type, body))
        return OperationResult(
            operation_id=body["operation_id"], status="success", records_affected=2
        ).model_dump()


async def test_a_batch_for_a_served_type_runs_locally_with_the_new_convention() -> None:
    fleet, seen = Fleet(), []

    async def local(request: OperationRequest, deadline: float) -> OperationResult | None:
        seen.append(request)
        return OperationResult(operation_id=request.operation_id or "", status="success", records_affected=2)

    written = await FleetSink(fleet, local=local).write(TARGET, RECORDS, "ingest-1:0", time.time() + 30)  # type: ignore[arg-type]

    assert written == 2 and fleet.calls == []
    (request,) = seen
    assert request.parameters["table"] == "events" and request.data == {"records": RECORDS}
    assert request.idempotency_key == "ingest-1:0" and request.service_name == "warehouse"


async def test_a_batch_not_served_here_goes_through_the_fleet() -> None:
    fleet = Fleet()

    async def elsewhere(request: OperationRequest, deadline: float) -> OperationResult | None:
        return None

    written = await FleetSink(fleet, local=elsewhere).write(TARGET, RECORDS, "ingest-1:1", time.time() + 30)  # type: ignore[arg-type]

    assert written == 2
    ((message_type, body),) = fleet.calls
    assert message_type == MessageType.OPERATION_EXECUTE and body["idempotency_key"] == "ingest-1:1"


async def test_a_local_failure_is_the_batchs_typed_error() -> None:
    async def refused(request: OperationRequest, deadline: float) -> OperationResult | None:
        error = PermanentError("no such table", code=ErrorCode.QUERY_FAILED)
        return OperationResult.failed(request.operation_id or "", error)

    with pytest.raises(PermanentError) as caught:
        await FleetSink(Fleet(), local=refused).write(TARGET, RECORDS, "k", time.time() + 30)  # type: ignore[arg-type]

    assert caught.value.code == ErrorCode.QUERY_FAILED
