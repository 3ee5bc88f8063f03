"""The client's fast path: `operation.execute` straight to `scf.ops` once a connector's type is known.

`FastPath` owns what the route needs: the `RouteCache` (learned from the control plane after a first
call through the dispatcher, kept fresh by `scf.events` through a `RegistryWatch`), the background
refreshes, and the publish of the envelope the dispatcher would have forwarded. The worker makes every
check the dispatcher made; anything not sent this way goes through the dispatcher, unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from scf.fleet import amqp
from scf.fleet.routes import MAX_JSON_DEPTH, RegistryWatch, Route, RouteCache, nests_deeper_than
from scf.fleet.rpc import ProgressCallback, ReplyQueueLost, RpcClient
from scf.fleet.settings import MAX_REQUEST_BYTES
from scf.schemas import topology
from scf.schemas.control import ConnectorStatus, MessageType
from scf.schemas.errors import ConnectorError, ErrorCode
from scf.schemas.operation import OperationEnvelope, OperationRequest, OperationResult

log = structlog.get_logger(__name__)

#: How long a learned route is used before the control plane is asked again (a missed event, or a worker
#: pool that died, costs at most this long on the fast path).
ROUTE_TTL_SECONDS = 5.0
#: After the registry watch could not start, how long the client stays on the dispatcher path.
WATCH_RETRY_SECONDS = 30.0
#: Errors after which a name is not worth learning a route for (the dispatcher path answers them).
UNROUTABLE_CODES = frozenset({ErrorCode.CONNECTOR_NOT_FOUND, ErrorCode.CONNECTOR_PAUSED, ErrorCode.NO_WORKER})

#: How the fast path asks the control plane for a connector's routing facts (`connector.status`).
StatusReader = Callable[[str], Awaitable[ConnectorStatus]]


@dataclass
class PathCounts:
    """How this client's `operation.execute` calls were sent (for tests and benchmarks)."""

    fast: int = 0
    dispatcher: int = 0
    fell_back: int = 0  # fast publishes the broker returned, sent again through the dispatcher


class FastPath:
    """Routes learned in the background and the direct publish to a type's queue.

    `enabled=False` never learns or uses a route.
    """

    def __init__(
        self,
        rpc: RpcClient,
        status_of: StatusReader,
        *,
        enabled: bool = True,
        route_ttl: float = ROUTE_TTL_SECONDS,
    ) -> None:
        self.rpc = rpc
        self.enabled = enabled
        self.routes = RouteCache(ttl=route_ttl)
        self.counts = PathCounts()
        self._status_of = status_of
        self._watch: RegistryWatch | None = None
        self._watch_failed_at: float | None = None
        self._watch_lock = asyncio.Lock()
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    async def close(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()
        self._refreshing.clear()
        if self._watch is not None:
            try:
                await self._watch.close()
            except Exception as exc:  # closing must not fail: the connection may be gone already
                log.info("registry_watch_close_failed", error=repr(exc))

    def route(self, service_name: str) -> Route | None:
        """The route of a name for the fast path, if known and the registry watch is listening."""
        if not self.enabled or self._watch is None or not self._watch.active:
            return None
        now = time.monotonic()
        route = self.routes.get(service_name, now)
        if route is not None and now >= route.refresh_at:
            self.learn(service_name)  # ahead of expiry: a busy name stays on the fast path
        return route

    def settled(self, service_name: str, result: OperationResult) -> None:
        """A call through the dispatcher answered: learn the name's route unless the answer says not to."""
        if self.enabled and (result.error is None or result.error.code not in UNROUTABLE_CODES):
            self.learn(service_name)

    def learn(self, service_name: str) -> None:
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
            status = await self._status_of(service_name)
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

    async def execute(
        self,
        request: OperationRequest,
        route: Route,
        *,
        timeout: float,
        wait: float,
        on_progress: ProgressCallback | None,
        started: float,
    ) -> OperationResult | None:
        """Publish the envelope the dispatcher would have forwarded straight to `scf.ops`. None: not sent
        (the dispatcher path answers instead, e.g. a body it would refuse, or a route the broker returned).
        `timeout`: the deadline of a request that gives none; `wait`: how long to wait for the reply."""
        assert request.operation_id is not None and request.service_name is not None
        now = time.time()
        envelope = OperationEnvelope(
            request=request,
            service_type=route.service_type,
            connector_version=route.version,
            deadline=now + (request.timeout if request.timeout is not None else timeout),
            accepted_at=now,
        )
        body = envelope_body(envelope)
        if body is None:
            return None
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
                recoverable=True,
            )
        except amqp.UnroutableError:
            # Returned by the broker, so never queued: safe to send again, through the dispatcher.
            self.routes.invalidate(request.service_name)
            self.counts.fell_back += 1
            return None
        except ReplyQueueLost:
            self.counts.fast += 1
            raise  # sent and confirmed: the caller fetches its stored result
        except ConnectorError as exc:  # queue full (as the dispatcher's forward would be), no reply in time
            self.counts.fast += 1
            return OperationResult.failed(request.operation_id, exc, time.perf_counter() - started)
        self.counts.fast += 1
        result = OperationResult.model_validate(reply)
        if result.error is not None and result.error.code in UNROUTABLE_CODES:
            self.routes.invalidate(request.service_name)  # the next call asks the dispatcher
        return result


def envelope_body(envelope: OperationEnvelope) -> bytes | None:
    """The encoded envelope; None for one the dispatcher would refuse (nested too deep or too large:
    LIMIT_EXCEEDED; unencodable: INVALID_REQUEST), so the caller gets that refusal through its path."""
    request = envelope.request
    if nests_deeper_than(request.data, MAX_JSON_DEPTH - 1) or nests_deeper_than(
        request.parameters, MAX_JSON_DEPTH - 1
    ):
        return None
    try:
        body = amqp.encode(envelope)
    except Exception:  # e.g. a lone surrogate
        return None
    return body if len(body) <= MAX_REQUEST_BYTES else None
