"""The spec's in-process `ServiceConnectorFactory`: create connectors, execute operations, test, metrics.

Used directly it is the embedded mode of the library (no broker); a worker wraps the very same object.
`FleetClient` offers the same calls over AMQP, so code moves to the fleet by swapping one object.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import structlog

from scf.connectors.base import ServiceConnector
from scf.connectors.circuit import BreakerBoard, LocalBreakerBoard
from scf.connectors.execution import Endpoint, Execution, endpoints_of
from scf.connectors.registry import connector_class
from scf.connectors.result_cache import MemoryResultCache, ResultCache
from scf.connectors.retry import RetryPolicy
from scf.connectors.sources import BatchSink, Bindings, ConnectorLookup, SinkTarget
from scf.schemas.connection import ServiceConnection
from scf.schemas.control import ConnectorMetrics
from scf.schemas.errors import (
    ConfigurationError,
    ConnectorError,
    ErrorCode,
    error_from_info,
)
from scf.schemas.operation import (
    UNPARSED_OPERATION_ID,
    ConnectionTestResult,
    OperationRequest,
    OperationResult,
    prepare_request,
)

log = structlog.get_logger(__name__)


@dataclass
class _Counters:
    total: int = 0
    ok: int = 0
    seconds: float = 0.0
    tests: int = 0
    tests_ok: int = 0


@dataclass
class _Slot:
    connector: ServiceConnector
    endpoints: list[Endpoint]
    counters: _Counters = field(default_factory=_Counters)

    async def close(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.connector.close()


class ServiceConnectorFactory:
    """Builds one connector per service name and runs operations through it with retries and a deadline."""

    def __init__(
        self,
        *,
        default_timeout: float = 30.0,
        retry_delay: float = 1.0,
        max_retry_delay: float = 30.0,
        on_retry: Callable[[ServiceConnector, ConnectorError, int], None] | None = None,
        lookup: ConnectorLookup | None = None,
        sink: BatchSink | None = None,
        cache: ResultCache | None = None,
        breakers: BreakerBoard | None = None,
    ) -> None:
        """`lookup` and `sink` let connectors read other connectors' objects and write records out;
        by default both use this factory's own connectors (the worker binds fleet-wide ones). `cache`
        keeps cached read results and `breakers` the circuit breakers (default: in this process's memory;
        the worker lends fleet-wide ones)."""
        self.on_retry = on_retry
        self.bindings = Bindings(
            lookup=lookup or self._open_connector,
            sink=sink or LocalSink(self),
            cache=cache or MemoryResultCache(),
        )
        self.breakers: BreakerBoard = breakers or LocalBreakerBoard()
        self._execution = Execution(self.breakers, self._retry_policy)
        self.default_timeout = default_timeout
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self._slots: dict[str, _Slot] = {}
        self._policies: dict[tuple[int, float, float], RetryPolicy] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- connectors ----------------------------------------------------------------------------------

    async def create_connector(
        self, config: ServiceConnection | Mapping[str, Any], *, connect: bool = True
    ) -> ServiceConnector:
        """Build (or return the identical existing) connector for `config.service_name`.

        Raises `configuration` for a bad config or unknown type, and what `open()` raises when `connect`.
        """
        connection = config if isinstance(config, ServiceConnection) else ServiceConnection.parse(config)
        name = connection.service_name
        async with self._locks.setdefault(name, asyncio.Lock()):
            slot = self._slots.get(name)
            if slot is not None and slot.connector.connection == connection:
                connector = slot.connector
            else:
                primary, *backups = (self._build(c) for c in connection.endpoints())
                connector = primary
                if slot is not None:
                    await slot.close()
                counters = slot.counters if slot else _Counters()
                self._slots[name] = _Slot(connector, endpoints_of(primary, backups), counters)
        if connect:
            await connector.open()
        return connector

    def _build(self, connection: ServiceConnection) -> ServiceConnector:
        connector = connector_class(connection.service_type)(connection)
        connector.bindings = self.bindings
        return connector

    def get_connector(self, service_name: str) -> ServiceConnector:
        return self._slot(service_name).connector

    async def _open_connector(self, service_name: str) -> ServiceConnector:
        connector = self.get_connector(service_name)
        await connector.open()
        return connector

    def _slot(self, service_name: str) -> _Slot:
        slot = self._slots.get(service_name)
        if slot is None:
            raise ConfigurationError(
                f"no connector named {service_name!r}", code=ErrorCode.CONNECTOR_NOT_FOUND
            )
        return slot

    def list_connectors(self) -> list[str]:
        return sorted(self._slots)

    async def remove_connector(self, service_name: str) -> bool:
        async with self._locks.setdefault(service_name, asyncio.Lock()):
            slot = self._slots.pop(service_name, None)
        if slot is None:
            return False
        await slot.close()
        return True

    async def close(self) -> None:
        for name in list(self._slots):
            await self.remove_connector(name)

    # --- operations ----------------------------------------------------------------------------------

    async def execute_operation(
        self,
        service_name: str,
        request: OperationRequest | Mapping[str, Any],
        *,
        deadline: float | None = None,
    ) -> OperationResult:
        """Run one operation with retries inside its deadline. Never raises: failures are `failed` results."""
        started = time.perf_counter()
        try:
            parsed = prepare_request(request, service_name)
        except ConnectorError as exc:
            return OperationResult.failed(UNPARSED_OPERATION_ID, exc)
        assert parsed.operation_id is not None
        if deadline is None:
            deadline = time.time() + (parsed.timeout or self.default_timeout)
        slot = self._slots.get(service_name)
        try:
            endpoints = self._slot(service_name).endpoints
            outcome = await self._execution.run(endpoints, parsed, deadline, self.on_retry)
        except ConnectorError as exc:
            result = OperationResult.failed(parsed.operation_id, exc, time.perf_counter() - started)
            log.info(
                "operation_failed",
                service_name=service_name,
                operation=parsed.operation,
                operation_id=parsed.operation_id,
                category=exc.category.value,
                code=exc.code,
                detail=exc.detail,
            )
        else:
            result = OperationResult.succeeded(parsed.operation_id, outcome, time.perf_counter() - started)
        if slot is not None:
            slot.counters.total += 1
            slot.counters.ok += int(result.ok)
            slot.counters.seconds += result.execution_time
        return result

    def _retry_policy(self, connector: ServiceConnector) -> RetryPolicy:
        """The connector's policy, built once per distinct setting (not per call; at most 21 of them
        for the factory's delays: `retry_attempts` is 0..20)."""
        key = (connector.connection.retry_attempts, self.retry_delay, self.max_retry_delay)
        policy = self._policies.get(key)
        if policy is None:
            if len(self._policies) >= 64:  # the delays were changed on a live factory: start afresh
                self._policies.clear()
            policy = RetryPolicy(attempts=key[0], base_delay=key[1], max_delay=key[2])
            self._policies[key] = policy
        return policy

    async def test_connection(self, service_name: str) -> ConnectionTestResult:
        slot = self._slot(service_name)
        result = await slot.connector.check()
        slot.counters.tests += 1
        slot.counters.tests_ok += int(result.status == "success")
        return result

    # --- metrics -------------------------------------------------------------------------------------

    def get_metrics(self, service_name: str) -> ConnectorMetrics:
        slot = self._slot(service_name)
        c, stats = slot.counters, slot.connector.pool_stats()
        return ConnectorMetrics(
            service_name=service_name,
            total_connections=stats.opened_total,
            active_connections=stats.in_use,
            total_operations=c.total,
            successful_operations=c.ok,
            failed_operations=c.total - c.ok,
            average_response_time=round(c.seconds / c.total, 6) if c.total else 0.0,
            uptime_percentage=round(100.0 * c.tests_ok / c.tests, 2) if c.tests else None,
            error_count=c.total - c.ok,
        )

    def get_all_metrics(self) -> list[ConnectorMetrics]:
        return [self.get_metrics(name) for name in self.list_connectors()]


class LocalSink:
    """Writes a batch through one of the factory's own connectors (embedded mode)."""

    def __init__(self, factory: ServiceConnectorFactory) -> None:
        self.factory = factory

    async def write(
        self, target: SinkTarget, records: list[dict[str, Any]], idempotency_key: str, deadline: float
    ) -> int:
        data, parameters = target.request_body(records)
        request = OperationRequest(
            operation=target.operation, data=data, parameters=parameters, idempotency_key=idempotency_key
        )
        result = await self.factory.execute_operation(target.service_name, request, deadline=deadline)
        if result.error is not None:
            raise error_from_info(result.error)
        return result.records_affected
