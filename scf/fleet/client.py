"""`FleetClient`: the factory's calls made remotely through the fleet (AMQP RPC).

    async with await FleetClient.connect() as fleet:
        connector = await fleet.create_connector(config)
        result = await fleet.execute_operation("analytics_db", request)

Replies keep the spec's shapes; a failed control-plane call raises the typed error it carried, a failed
operation is a `failed` OperationResult (as with the in-process factory).

The fast path: once the client knows a connector's type (`RouteCache`, learned from the control plane
after a first call through the dispatcher and kept fresh by `scf.events`), `operation.execute` goes
straight to `scf.ops` as the envelope the dispatcher would have forwarded; the worker makes every check
the dispatcher made. Anything the client cannot send that way goes through the dispatcher, unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import structlog
from pydantic import BaseModel

from scf.fleet import amqp
from scf.fleet.routes import MAX_JSON_DEPTH, RegistryWatch, Route, RouteCache, nests_deeper_than
from scf.fleet.rpc import ProgressCallback, RpcClient, reply_error
from scf.fleet.settings import MAX_REQUEST_BYTES
from scf.schemas import topology
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
    OperationEnvelope,
    OperationRequest,
    OperationResult,
    prepare_request,
)

log = structlog.get_logger(__name__)

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
#: How long a learned route is used before the control plane is asked again (a missed event, or a worker
#: pool that died, costs at most this long on the fast path).
ROUTE_TTL_SECONDS = 5.0
#: After the registry watch could not start, how long the client stays on the dispatcher path.
WATCH_RETRY_SECONDS = 30.0
#: Errors after which a name is not worth learning a route for (the dispatcher path answers them).
UNROUTABLE_CODES = frozenset({ErrorCode.CONNECTOR_NOT_FOUND, ErrorCode.CONNECTOR_PAUSED, ErrorCode.NO_WORKER})


class RemoteConnector:
    """What `FleetClient.create_connector` returns: a handle with the in-process connector's calls."""

    def __init__(self, client: FleetClient, created: ConnectorCreated) -> None:
        self._client = client
        self.created = created

    @property
    def service_name(self) -> str:
        return self.created.service_name

    async def test_connection(self) -> ConnectionTestResult:
        return await self._client.test_connection(self.service_name)

    async def execute_operation(self, request: OperationRequest | Mapping[str, Any]) -> OperationResult:
        return await self._client.execute_operation(self.service_name, request)


@dataclass
class PathCounts:
    """How this client's `operation.execute` calls were sent (for tests and benchmarks)."""

    fast: int = 0
    dispatcher: int = 0
    fell_back: int = 0  # fast publishes the broker returned, sent again through the dispatcher


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
        self.fast_path = fast_path
        self.routes = RouteCache(ttl=route_ttl)
        self.counts = PathCounts()
        self._watch: RegistryWatch | None = None
        self._watch_failed_at: float | None = None
        self._watch_lock = asyncio.Lock()
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    @classmethod
    async def connect(
        cls, amqp_url: str = DEFAULT_AMQP_URL, *, timeout: float = 30.0, fast_path: bool = True
    ) -> FleetClient:
        rpc = await RpcClient.connect(amqp_url, "scf-fleet-client")
        return cls(rpc, timeout=timeout, fast_path=fast_path)

    async def close(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()
        self._refreshing.clear()
        if self._watch is not None:
            try:
                await self._watch.close()
            except Exception as exc:  # closing must not fail: the connection may be gone already
                log.info("registry_watch_close_failed", error=repr(exc))
        await self.rpc.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- control plane -------------------------------------------------------------------------------

    async def create_connector(self, config: ServiceConnection | Mapping[str, Any]) -> RemoteConnector:
        body = _connection_body(config)
        reply = await self._changing(body.get("service_name"), MessageType.CONNECTOR_CREATE, body)
        return RemoteConnector(self, ConnectorCreated.model_validate(reply))

    async def update_connector(self, config: ServiceConnection | Mapping[str, Any]) -> ConnectorCreated:
        body = _connection_body(config)
        reply = await self._changing(body.get("service_name"), MessageType.CONNECTOR_UPDATE, body)
        return ConnectorCreated.model_validate(reply)

    async def get_connector(self, service_name: str) -> ConnectorState:
        reply = await self._control(MessageType.CONNECTOR_GET, {"service_name": service_name})
        return ConnectorState.model_validate(reply)

    async def list_connectors(self, service_type: str | None = None) -> list[ConnectorState]:
        body = {} if service_type is None else {"service_type": service_type}
        reply = await self._control(MessageType.CONNECTOR_LIST, body)
        return [ConnectorState.model_validate(c) for c in reply["connectors"]]

    async def delete_connector(self, service_name: str) -> Acknowledged:
        return await self._ack(MessageType.CONNECTOR_DELETE, service_name)

    async def pause_connector(self, service_name: str) -> Acknowledged:
        return await self._ack(MessageType.CONNECTOR_PAUSE, service_name)

    async def resume_connector(self, service_name: str) -> Acknowledged:
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
        reply = await self._control(MessageType.CONNECTOR_STATUS, {"service_name": service_name})
        return ConnectorStatus.model_validate(reply)

    async def test_connection(self, service_name: str) -> ConnectionTestResult:
        reply = await self._control(MessageType.CONNECTOR_TEST, {"service_name": service_name})
        return ConnectionTestResult.model_validate(reply)

    async def get_metrics(self, service_name: str) -> ConnectorMetrics:
        reply = await self._control(MessageType.CONNECTOR_METRICS, {"service_name": service_name})
        return ConnectorMetrics.model_validate(reply)

    async def fleet_metrics(self) -> FleetMetrics:
        return FleetMetrics.model_validate(await self._control(MessageType.FLEET_METRICS, {}))

    async def get_result(self, operation_id: str) -> OperationResult:
        reply = await self.rpc.call(
            MessageType.OPERATION_RESULT, {"operation_id": operation_id}, timeout=self.timeout
        )
        if "operation_id" not in reply:
            raise reply_error(reply)
        return OperationResult.model_validate(reply)

    async def cancel_operation(self, operation_id: str) -> CancelRequested:
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
        route = None if chosen else self._route(service_name)
        if route is not None:
            fast = await self._execute_fast(parsed, route, wait, on_progress, started)
            if fast is not None:
                return fast
        self.counts.dispatcher += 1
        try:
            reply = await self.rpc.call(
                MessageType.OPERATION_EXECUTE,
                parsed.model_dump(exclude_none=True),
                timeout=wait,
                message_id=parsed.operation_id,
                on_progress=on_progress,
            )
        except ConnectorError as exc:
            return OperationResult.failed(parsed.operation_id, exc, time.perf_counter() - started)
        result = OperationResult.model_validate(reply)
        if self.fast_path and (result.error is None or result.error.code not in UNROUTABLE_CODES):
            self._learn(service_name)
        return result

    async def _execute_fast(
        self,
        request: OperationRequest,
        route: Route,
        wait: float,
        on_progress: ProgressCallback | None,
        started: float,
    ) -> OperationResult | None:
        """Publish the envelope the dispatcher would have forwarded straight to `scf.ops`. None: not sent
        (the dispatcher path answers instead, e.g. a body it would refuse, or a route the broker returned)."""
        assert request.operation_id is not None and request.service_name is not None
        if nests_deeper_than(request.data, MAX_JSON_DEPTH - 1) or nests_deeper_than(
            request.parameters, MAX_JSON_DEPTH - 1
        ):
            return None  # the dispatcher refuses it (LIMIT_EXCEEDED): let the caller get that reply
        now = time.time()
        envelope = OperationEnvelope(
            request=request,
            service_type=route.service_type,
            connector_version=route.version,
            deadline=now + (request.timeout if request.timeout is not None else self.timeout),
            accepted_at=now,
        )
        try:
            body = amqp.encode(envelope)
        except Exception:  # e.g. a lone surrogate: the dispatcher refuses it (INVALID_REQUEST), let it say so
            return None
        if len(body) > MAX_REQUEST_BYTES:
            return None  # over the dispatcher's size limit: it answers LIMIT_EXCEEDED
        try:
            reply = await self.rpc.call_raw(
                MessageType.OPERATION_EXECUTE,
                body,
                timeout=wait,
                exchange=topology.OPS_EXCHANGE,
                routing_key=route.service_type,
                message_id=request.operation_id,
                headers={amqp.FORWARDED_AT_HEADER: amqp.forwarded_at_value(now)},
                expiration=envelope.deadline - now,
                on_progress=on_progress,
            )
        except amqp.UnroutableError:
            # Returned by the broker, so never queued: safe to send again, through the dispatcher.
            self.routes.invalidate(request.service_name)
            self.counts.fell_back += 1
            return None
        except ConnectorError as exc:  # queue full (as the dispatcher's forward would be), no reply in time
            self.counts.fast += 1
            return OperationResult.failed(request.operation_id, exc, time.perf_counter() - started)
        self.counts.fast += 1
        result = OperationResult.model_validate(reply)
        if result.error is not None and result.error.code in UNROUTABLE_CODES:
            self.routes.invalidate(request.service_name)  # the next call asks the dispatcher
        return result

    # --- routes --------------------------------------------------------------------------------------

    def _route(self, service_name: str) -> Route | None:
        """The route of a name for the fast path, if known and the registry watch is listening."""
        if not self.fast_path or self._watch is None or not self._watch.active:
            return None
        now = time.monotonic()
        route = self.routes.get(service_name, now)
        if route is not None and now >= route.refresh_at:
            self._learn(service_name)  # ahead of expiry: a busy name stays on the fast path
        return route

    def _learn(self, service_name: str) -> None:
        """Read the name's route from the control plane in the background (one call at a time per name)."""
        if service_name in self._refreshing or not self.rpc.connected:
            return
        task = asyncio.create_task(self._refresh(service_name), name=f"route-{service_name[:64]}")
        self._refreshing[service_name] = task
        task.add_done_callback(lambda _: self._refreshing.pop(service_name, None))

    async def _refresh(self, service_name: str) -> None:
        try:
            if not await self.watch_registry():
                return
            generation = self.routes.generation
            status = await self.connector_status(service_name)
            self.routes.put(
                service_name,
                status.service_type,
                status.version,
                paused=status.paused,
                live_workers=status.live_workers,
                generation=generation,
                now=time.monotonic(),
            )
        except ConnectorError as exc:
            log.info("route_refresh_failed", code=exc.code)
        except Exception as exc:  # a background refresh must never surface; the dispatcher path still works
            log.warning("route_refresh_failed", error=repr(exc))

    async def watch_registry(self) -> bool:
        """Start listening to registry events, which the fast path needs (done on the first route learned;
        again after a failure, at most every WATCH_RETRY_SECONDS). False: the fast path stays off."""
        if self._watch is not None and self._watch.active:
            return True
        async with self._watch_lock:
            if self._watch is not None and self._watch.active:
                return True
            failed = self._watch_failed_at
            if failed is not None and time.monotonic() - failed < WATCH_RETRY_SECONDS:
                return False
            if self._watch is not None:
                await self._watch.close()
            watch = RegistryWatch(self.rpc.connection, self.routes)
            try:
                await watch.start()
            except Exception as exc:
                self._watch_failed_at = time.monotonic()
                log.warning("registry_watch_failed", error=repr(exc))
                return False
            self._watch, self._watch_failed_at = watch, None
            return True

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
