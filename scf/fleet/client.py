"""`FleetClient`: the factory's calls made remotely through the fleet (AMQP RPC).

    async with await FleetClient.connect() as fleet:
        connector = await fleet.create_connector(config)
        result = await fleet.execute_operation("analytics_db", request)

Replies keep the spec's shapes; a failed control-plane call raises the typed error it carried, a failed
operation is a `failed` OperationResult (as with the in-process factory).

The fast path (`scf.fleet.fast_path`): once the client knows a connector's type, `operation.execute`
goes straight to `scf.ops` as the envelope the dispatcher would have forwarded; the worker makes every
check the dispatcher made. Anything the client cannot send that way goes through the dispatcher, unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from pydantic import BaseModel

from scf.fleet.fast_path import (
    ROUTE_TTL_SECONDS,
    UNROUTABLE_CODES,
    WATCH_RETRY_SECONDS,
    FastPath,
    PathCounts,
)
from scf.fleet.routes import RouteCache
from scf.fleet.rpc import ProgressCallback, ReplyQueueLost, RpcClient, RpcTimeoutError, reply_error
from scf.schemas.connection import ServiceConnection
from scf.schemas.control import (
    Acknowledged,
    CancelRequested,
    ConnectorCreated,
    ConnectorMetrics,
    ConnectorState,
    ConnectorStatus,
    FleetMetrics,
    MessageType,
)
from scf.schemas.dead_letters import DeadLetterOutcome, DeadLetterPage
from scf.schemas.errors import ConnectorError, ErrorCode
from scf.schemas.operation import (
    UNPARSED_OPERATION_ID,
    ConnectionTestResult,
    OperationRequest,
    OperationResult,
    prepare_request,
)

__all__ = [
    "DEFAULT_AMQP_URL",
    "ROUTE_TTL_SECONDS",
    "UNROUTABLE_CODES",
    "WATCH_RETRY_SECONDS",
    "FleetClient",
    "PathCounts",
    "RemoteConnector",
]

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

#: `result(wait=...)` asks again after 50 ms, doubling up to 1 s, while the answer is "not yet".
RESULT_POLL_FIRST = 0.05
RESULT_POLL_MAX = 1.0
RESULT_PENDING_CODES = frozenset({ErrorCode.IN_PROGRESS, ErrorCode.RESULT_NOT_FOUND})


class RemoteConnector:
    """What `FleetClient.create_connector` returns: a handle with the in-process connector's calls."""

    def __init__(self, client: FleetClient, created: ConnectorCreated) -> None:
        self._client = client
        self.created = created

    @property
    def service_name(self) -> str:
        """The connector's name in the fleet's registry."""
        return self.created.service_name

    async def test_connection(self) -> ConnectionTestResult:
        """Test the connection on a worker now (see `FleetClient.test_connection`)."""
        return await self._client.test_connection(self.service_name)

    async def execute_operation(self, request: OperationRequest | Mapping[str, Any]) -> OperationResult:
        """Run one operation on this connector (see `FleetClient.execute_operation`)."""
        return await self._client.execute_operation(self.service_name, request)


class FleetClient:
    """`timeout`: the default deadline of an operation (as the dispatcher's `SCF_DEFAULT_TIMEOUT`) and
    the wait for a control-plane reply. `fast_path=False` sends every call through the dispatcher."""

    def __init__(
        self,
        rpc: RpcClient,
        *,
        timeout: float = 30.0,
        fast_path: bool = True,
        route_ttl: float = ROUTE_TTL_SECONDS,
    ) -> None:
        self.rpc = rpc
        self.timeout = timeout
        self.fast = FastPath(rpc, self.connector_status, enabled=fast_path, route_ttl=route_ttl)

    @classmethod
    async def connect(
        cls, amqp_url: str = DEFAULT_AMQP_URL, *, timeout: float = 30.0, fast_path: bool = True
    ) -> FleetClient:
        """Open a client on the broker at `amqp_url` (its login is the caller's identity).

        Raises the broker client's connection errors (refused, wrong login, unknown vhost)."""
        rpc = await RpcClient.connect(amqp_url, "scf-fleet-client")
        return cls(rpc, timeout=timeout, fast_path=fast_path)

    @property
    def fast_path(self) -> bool:
        """Whether data operations may skip the dispatcher (`fast_path=` at construction)."""
        return self.fast.enabled

    @fast_path.setter
    def fast_path(self, enabled: bool) -> None:
        self.fast.enabled = enabled

    @property
    def routes(self) -> RouteCache:
        """The fast path's cache of connector -> type routes."""
        return self.fast.routes

    @property
    def counts(self) -> PathCounts:
        """How many calls went by the fast path and how many through the dispatcher."""
        return self.fast.counts

    async def watch_registry(self) -> bool:
        """Start listening to registry events, which the fast path needs. False: the fast path stays off."""
        return await self.fast.watch_registry()

    async def close(self) -> None:
        """Close the client; calls still waiting fail with a TransientError. Safe to call twice."""
        await self.fast.close()
        await self.rpc.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- control plane -------------------------------------------------------------------------------

    async def create_connector(self, config: ServiceConnection | Mapping[str, Any]) -> RemoteConnector:
        """Register a connector (the spec's POST /connectors body); a worker tests its connection.

        Raises CONNECTOR_EXISTS, INVALID_CONFIG, FORBIDDEN, RpcTimeoutError."""
        body = _connection_body(config)
        reply = await self._changing(body.get("service_name"), MessageType.CONNECTOR_CREATE, body)
        return RemoteConnector(self, ConnectorCreated.model_validate(reply))

    async def update_connector(self, config: ServiceConnection | Mapping[str, Any]) -> ConnectorCreated:
        """Replace a connector's configuration. Raises CONNECTOR_NOT_FOUND, INVALID_CONFIG, FORBIDDEN."""
        body = _connection_body(config)
        reply = await self._changing(body.get("service_name"), MessageType.CONNECTOR_UPDATE, body)
        return ConnectorCreated.model_validate(reply)

    async def get_connector(self, service_name: str) -> ConnectorState:
        """A connector's configuration (secrets masked) and state. Raises CONNECTOR_NOT_FOUND."""
        reply = await self._control(MessageType.CONNECTOR_GET, {"service_name": service_name})
        return ConnectorState.model_validate(reply)

    async def list_connectors(self, service_type: str | None = None) -> list[ConnectorState]:
        """Every registered connector the caller may read (optionally of one type)."""
        body = {} if service_type is None else {"service_type": service_type}
        reply = await self._control(MessageType.CONNECTOR_LIST, body)
        return [ConnectorState.model_validate(c) for c in reply["connectors"]]

    async def delete_connector(self, service_name: str) -> Acknowledged:
        """Remove a connector; every worker closes its pools. Raises CONNECTOR_NOT_FOUND, FORBIDDEN."""
        return await self._ack(MessageType.CONNECTOR_DELETE, service_name)

    async def pause_connector(self, service_name: str) -> Acknowledged:
        """Refuse the connector's operations (CONNECTOR_PAUSED) until resumed. Raises CONNECTOR_NOT_FOUND."""
        return await self._ack(MessageType.CONNECTOR_PAUSE, service_name)

    async def resume_connector(self, service_name: str) -> Acknowledged:
        """Take the connector's operations again. Raises CONNECTOR_NOT_FOUND."""
        return await self._ack(MessageType.CONNECTOR_RESUME, service_name)

    async def _ack(self, message_type: MessageType, service_name: str) -> Acknowledged:
        reply = await self._changing(service_name, message_type, {"service_name": service_name})
        return Acknowledged.model_validate(reply)

    async def _changing(self, name: Any, message_type: MessageType, body: dict[str, Any]) -> dict[str, Any]:
        """A registry change made by this client: its route is dropped before the call and again once
        the change is acknowledged (or failed), so the next call after the acknowledgement goes through
        the dispatcher, which stamps the new version, and no route read before the change comes back."""
        name = name if isinstance(name, str) else None
        if name is not None:
            self.routes.invalidate(name)
        try:
            return await self._control(message_type, body)
        finally:
            if name is not None:
                self.routes.invalidate(name)

    async def connector_status(self, service_name: str) -> ConnectorStatus:
        """Health, breaker and pause state. Raises CONNECTOR_NOT_FOUND."""
        reply = await self._control(MessageType.CONNECTOR_STATUS, {"service_name": service_name})
        return ConnectorStatus.model_validate(reply)

    async def test_connection(self, service_name: str) -> ConnectionTestResult:
        """Test the connection on a worker now; a failed test is a result (`ok` False), not an error."""
        reply = await self._control(MessageType.CONNECTOR_TEST, {"service_name": service_name})
        return ConnectionTestResult.model_validate(reply)

    async def get_metrics(self, service_name: str) -> ConnectorMetrics:
        """The spec's performance metrics of one connector. Raises CONNECTOR_NOT_FOUND."""
        reply = await self._control(MessageType.CONNECTOR_METRICS, {"service_name": service_name})
        return ConnectorMetrics.model_validate(reply)

    async def fleet_metrics(self) -> FleetMetrics:
        """Workers, queues and connectors of the whole fleet. Raises FORBIDDEN without metrics:read."""
        return FleetMetrics.model_validate(await self._control(MessageType.FLEET_METRICS, {}))

    async def get_result(self, operation_id: str) -> OperationResult:
        """The stored result of one of the caller's operations (kept SCF_RESULT_TTL seconds).

        Raises RESULT_NOT_FOUND (unknown, expired or another caller's) or IN_PROGRESS (no result yet)."""
        reply = await self.rpc.call(
            MessageType.OPERATION_RESULT, {"operation_id": operation_id}, timeout=self.timeout
        )
        if "operation_id" not in reply:
            raise reply_error(reply)
        return OperationResult.model_validate(reply)

    async def cancel_operation(self, operation_id: str) -> CancelRequested:
        """Cancel: a queued operation never runs, a running one stops at its next batch; `status` is
        `already_finished` when there was nothing left to stop. Raises NOT_FOUND for an unknown id."""
        reply = await self._control(MessageType.OPERATION_CANCEL, {"operation_id": operation_id})
        return CancelRequested.model_validate(reply)

    # --- dead letters --------------------------------------------------------------------------------

    async def dead_letters(self, **query: Any) -> DeadLetterPage:
        """`dlq.list`: newest first; filters `service_name`, `reason`; paging `limit`, `offset`."""
        return DeadLetterPage.model_validate(await self._control(MessageType.DLQ_LIST, query))

    async def replay_dead_letters(self, ids: list[str] | None = None, **selection: Any) -> DeadLetterOutcome:
        """`dlq.replay`: by `ids`, or `all=True` narrowed by `service_name` / `reason`."""
        body = {"ids": ids, **selection} if ids else selection
        return DeadLetterOutcome.model_validate(await self._control(MessageType.DLQ_REPLAY, body))

    async def purge_dead_letters(self, ids: list[str] | None = None, **selection: Any) -> DeadLetterOutcome:
        """`dlq.purge`: delete for good, by `ids` or `all=True` narrowed by `service_name` / `reason`."""
        body = {"ids": ids, **selection} if ids else selection
        return DeadLetterOutcome.model_validate(await self._control(MessageType.DLQ_PURGE, body))

    # --- data plane ----------------------------------------------------------------------------------

    async def execute_operation(
        self,
        service_name: str,
        request: OperationRequest | Mapping[str, Any],
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> OperationResult:
        """Run one operation through the fleet. Never raises for a failed operation: see `result.error`."""
        started = time.perf_counter()
        try:
            parsed = prepare_request(request, service_name)
        except ConnectorError as exc:
            return OperationResult.failed(UNPARSED_OPERATION_ID, exc)
        assert parsed.operation_id is not None
        # The caller waits a little longer than the fleet's own deadline so the typed reply can arrive.
        wait = (timeout or parsed.timeout or self.timeout) + 5.0
        # A caller-chosen operation id goes through the dispatcher, which claims it while the request is
        # queued: it can be cancelled before it starts, and a second use is refused before it is queued.
        chosen = _chosen_operation_id(request)
        route = None if chosen else self.fast.route(service_name)
        try:
            if route is not None:
                fast = await self.fast.execute(
                    parsed, route, timeout=self.timeout, wait=wait, on_progress=on_progress, started=started
                )
                if fast is not None:
                    return fast
            self.counts.dispatcher += 1
            reply = await self.rpc.call(
                MessageType.OPERATION_EXECUTE,
                parsed.model_dump(exclude_none=True),
                timeout=wait,
                message_id=parsed.operation_id,
                on_progress=on_progress,
                recoverable=True,
            )
        except ReplyQueueLost:
            return await self._stored_result(parsed.operation_id, started, wait)
        except ConnectorError as exc:
            return OperationResult.failed(parsed.operation_id, exc, time.perf_counter() - started)
        result = OperationResult.model_validate(reply)
        self.fast.settled(service_name, result)
        return result

    async def submit(self, service_name: str, request: OperationRequest | Mapping[str, Any]) -> str:
        """Queue one operation and return its operation id at once (like Celery's `.delay()`).

        Returns once the broker has confirmed the request; the fleet runs it and stores its result for
        `result(operation_id, wait=...)`. A request the fleet refuses is kept as a dead letter, with a
        failed result stored under the same id. Raises INVALID_REQUEST for a request that cannot be
        sent, and the broker's publish errors."""
        parsed = prepare_request(request, service_name)
        assert parsed.operation_id is not None
        await self.rpc.send(
            MessageType.OPERATION_EXECUTE,
            parsed.model_dump(exclude_none=True),
            message_id=parsed.operation_id,
        )
        return parsed.operation_id

    async def result(self, operation_id: str, *, wait: float = 0.0) -> OperationResult:
        """The result of an operation, waiting up to `wait` seconds for it to finish.

        Raises IN_PROGRESS when it has not finished by then, RESULT_NOT_FOUND for an id the fleet does
        not know (or that is another caller's, or expired)."""
        deadline = time.monotonic() + max(0.0, wait)
        pause = RESULT_POLL_FIRST
        while True:
            try:
                return await self.get_result(operation_id)
            except ConnectorError as exc:
                # A submitted request may not be claimed yet for a moment: unknown is worth one more look
                # while waiting; `IN_PROGRESS` is worth looking again until the wait is over.
                left = deadline - time.monotonic()
                if exc.code not in RESULT_PENDING_CODES or left <= 0:
                    raise
                await asyncio.sleep(min(pause, left))
                pause = min(pause * 2, RESULT_POLL_MAX)

    async def _stored_result(self, operation_id: str, started: float, wait: float) -> OperationResult:
        """The answer of a call whose reply queue was lost with a broker connection: its stored result,
        polled until the call's own wait is over (then a TIMEOUT that says where to look later)."""
        left = wait - (time.perf_counter() - started)
        try:
            return await self.result(operation_id, wait=max(0.0, left))
        except ConnectorError as exc:
            if exc.code not in RESULT_PENDING_CODES:
                return OperationResult.failed(operation_id, exc, time.perf_counter() - started)
        timeout = RpcTimeoutError(
            "the broker connection was lost while waiting and no result was stored in time; the "
            f"operation may still finish: fetch it with result({operation_id!r})",
            code=ErrorCode.TIMEOUT,
        )
        return OperationResult.failed(operation_id, timeout, time.perf_counter() - started)

    async def _control(self, message_type: MessageType, body: BaseModel | dict[str, Any]) -> dict[str, Any]:
        """Raises the typed error of a failed reply; RpcTimeoutError when none arrived in time."""
        reply = await self.rpc.call(message_type, body, timeout=self.timeout)
        # A connection test that ran and failed is a result (it names its service); any other failure raises.
        if reply.get("status") == "failed" and "service_name" not in reply:
            raise reply_error(reply)
        return reply


def _chosen_operation_id(request: OperationRequest | Mapping[str, Any]) -> bool:
    if isinstance(request, OperationRequest):
        return request.operation_id is not None
    return request.get("operation_id") is not None


def _connection_body(config: ServiceConnection | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(config, ServiceConnection):
        return config.sealed_payload()
    return dict(config)
