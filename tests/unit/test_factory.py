"""The in-process factory: retries inside the deadline, reports retries, never raises for a failure."""

from __future__ import annotations

from typing import ClassVar

import pytest

import scf.factory as factory_module
from scf.connectors.base import ServiceConnector
from scf.factory import ServiceConnectorFactory
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import TransientError
from scf.schemas.operation import OperationOutcome, OperationRequest, TestVerdict


class FakeFlakyConnector(ServiceConnector):
    """Fails its first `failures` calls with a transient error, then answers."""

    service_type = "csv"
    operations = frozenset({"preview"})
    failures: ClassVar[int] = 2
    calls: ClassVar[int] = 0

    async def _open(self) -> None:
        pass

    async def _close(self) -> None:
        pass

    async def _check(self) -> dict[str, TestVerdict]:
        return {"connection_test": "passed"}

    async def _execute(self, request: OperationRequest) -> OperationOutcome:
        type(self).calls += 1
        if type(self).calls <= self.failures:
            raise TransientError("blip")
        return OperationOutcome(records_processed=1, result_data="ok")


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> type[FakeFlakyConnector]:
    """The factory builds FakeFlakyConnector for every connector in the test."""
    FakeFlakyConnector.calls = 0
    monkeypatch.setattr(factory_module, "connector_class", lambda _type: FakeFlakyConnector)
    return FakeFlakyConnector


async def test_transient_failures_are_retried_and_reported(flaky: type[FakeFlakyConnector]) -> None:
    retried: list[tuple[str, str, int]] = []
    factory = ServiceConnectorFactory(
        retry_delay=0.01,
        on_retry=lambda connector, error, attempt: retried.append(
            (connector.service_name, error.code, attempt)
        ),
    )
    await factory.create_connector(
        ServiceConnection(service_type="csv", service_name="flaky", retry_attempts=3)
    )

    result = await factory.execute_operation("flaky", {"operation": "preview"})

    assert result.status == "success", result.error
    assert retried == [("flaky", "CONNECTION_FAILED", 1), ("flaky", "CONNECTION_FAILED", 2)]
    assert flaky.calls == 3


async def test_retries_stop_at_the_connectors_retry_attempts(flaky: type[FakeFlakyConnector]) -> None:
    flaky.calls = -100  # fails on every call of this test
    factory = ServiceConnectorFactory(retry_delay=0.001)
    await factory.create_connector(
        ServiceConnection(service_type="csv", service_name="down", retry_attempts=2)
    )

    result = await factory.execute_operation("down", {"operation": "preview"})

    assert result.status == "failed"
    assert result.error is not None and result.error.retryable
    assert flaky.calls == -100 + 3  # the first try and two retries


async def test_a_permanent_error_is_not_retried(flaky: type[FakeFlakyConnector]) -> None:
    factory = ServiceConnectorFactory(retry_delay=0.001)
    await factory.create_connector(
        ServiceConnection(service_type="csv", service_name="strict", retry_attempts=5)
    )

    result = await factory.execute_operation("strict", {"operation": "teleport"})

    assert result.error is not None and result.error.code == "UNKNOWN_OPERATION"
    assert flaky.calls == 0


async def test_an_unknown_connector_is_a_failed_result_not_an_exception() -> None:
    result = await ServiceConnectorFactory().execute_operation("ghost", {"operation": "query"})

    assert result.error is not None and result.error.code == "CONNECTOR_NOT_FOUND"
