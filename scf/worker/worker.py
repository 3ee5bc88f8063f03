"""The worker: consumes `scf.ops.<type>` queues, runs each operation through the factory, replies, acks.

Order per message: decode -> claim the operation id -> check deadline -> execute (retries inside the
deadline) -> publish the reply (confirmed) and store the result (from the reply's bytes) -> ack once
both are done. A worker killed anywhere before the ack leaves the message with RabbitMQ, which delivers
it to another worker. Only the work waits on Redis where safety needs it: a read without an idempotency
key is claimed while it runs (its answer is dropped for OPERATION_ID_IN_USE if the claim is lost), a
write is claimed first; cancels are heard as events (Redis is asked only about a redelivery or an id a
cancel was heard for); metrics and breaker successes are flushed in the background (`books.py`).
Claiming and running an operation is `operation_run.py`, a connection test `checks.py`, the memory of
cancels `cancel_feed.py`; every ack, give-back and move goes through `scf.fleet.settle.settle`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Awaitable

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from scf.connectors import egress
from scf.connectors.base import ServiceConnector
from scf.connectors.egress import EgressPolicy
from scf.factory import ServiceConnectorFactory
from scf.fleet import amqp, tracing
from scf.fleet.access import AccessControl
from scf.fleet.access_store import AccessStore
from scf.fleet.audit import audit_operation, sample_operations, trust_forwarders
from scf.fleet.disposition import Disposition, Kind, answer_once, decide
from scf.fleet.health import HealthStore
from scf.fleet.lifecycle import FleetService
from scf.fleet.metrics import POOL_SIZE, QUEUE_WAIT_SECONDS, REDELIVERED_TOTAL, RETRIES_TOTAL, Children
from scf.fleet.quotas import ConcurrencyLimiter, RateLimiter
from scf.fleet.replies import failure_of, failure_reply
from scf.fleet.rpc import RpcClient
from scf.fleet.settings import Settings
from scf.fleet.settle import Settler, delayed_retries, settle
from scf.fleet.state import StateStore
from scf.schemas import topology
from scf.schemas.access import Permission
from scf.schemas.control import MessageType
from scf.schemas.errors import ConnectorError, ErrorCode, PermanentError
from scf.schemas.operation import OperationRequest, OperationResult
from scf.worker.books import Books, ResultWriter
from scf.worker.cache import ConnectorCache
from scf.worker.cancel_feed import CancelFeed
from scf.worker.cancels import RecentCancels
from scf.worker.checks import run_check
from scf.worker.door import Door
from scf.worker.idempotency import IdempotencyStore
from scf.worker.keyed import KeyedRunner
from scf.worker.operation_run import OperationRun
from scf.worker.shared_breakers import RedisBreakerBoard
from scf.worker.shared_result_cache import RedisResultCache
from scf.worker.sink import FleetSink

log = structlog.get_logger(__name__)

#: A queue wait past a day is a clock or a hostile header, not a measurement.
MAX_QUEUE_WAIT_SEEN = 86_400.0
_queue_wait = Children(QUEUE_WAIT_SECONDS, limit=64)


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker(FleetService):
    role = "worker"

    def __init__(
        self,
        settings: Settings,
        state: StateStore,
        connection: AbstractRobustConnection,
        service_types: list[str],
        concurrency: int,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.state = state
        self.connection = connection
        self.service_types = sorted(service_types)
        self.concurrency = concurrency
        self.worker_id = new_worker_id()
        trust_forwarders(settings.trusted_forwarders)
        sample_operations(settings.scf_audit_sample)
        egress.install(EgressPolicy.from_settings(settings))  # every connect, and the SSRF guard
        self.access = AccessControl(settings, AccessStore(state))
        self.door = Door(self.access, RateLimiter(state).charge, ConcurrencyLimiter(state))
        # its own calls (a sink batch for another worker) go out under its login, for their principal
        self._rpc = RpcClient(connection, user_id=self.access.own_login)
        breakers = RedisBreakerBoard(state, self.worker_id, settings.breaker_policy)
        self.factory = ServiceConnectorFactory(
            default_timeout=settings.scf_default_timeout,
            retry_delay=settings.connection_retry_delay,
            on_retry=lambda connector, _error, _attempt: RETRIES_TOTAL.labels(connector.service_type).inc(),
            lookup=self._lookup,
            sink=FleetSink(self._rpc, local=self._run_sink_batch),
            cache=RedisResultCache(state),
            breakers=breakers,
        )
        self.cache = ConnectorCache(self.factory, state)
        self.health = HealthStore(state)
        self.keyed = KeyedRunner(IdempotencyStore(state, settings.scf_idempotency_ttl), self.worker_id)
        self.books = Books(state, breakers, interval=settings.scf_metrics_flush_interval)
        self.results = ResultWriter(state, settings.scf_result_ttl)
        self.cancels = RecentCancels(settings.scf_cancel_memory)
        self.feed = CancelFeed(state, self.cancels, settings.scf_cancel_memory)
        self.operations = OperationRun(
            state, self.factory, self.cache, self.keyed, self.cancels, settings.scf_result_ttl, self.door
        )
        self._settler: Settler | None = None
        self._channel: AbstractChannel | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._channel = await amqp.open_channel(self.connection, prefetch=self.concurrency)
        await amqp.declare_topology(self._channel, self.settings.queue_limits)
        self._settler = Settler(self._channel)
        self.operations.channel = self._channel
        await self._rpc.start()
        await self._subscribe_events()
        self.feed.watch(self.connection, self._channel)
        await self.feed.sync()
        self.books.start()
        for service_type in self.service_types:
            queue = await self._channel.get_queue(topology.work_queue(service_type))
            await self.consume(queue, self._on_message)
        await self._beat()
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="worker-heartbeat")
        self._ready = True
        log.info(
            "worker_started", worker_id=self.worker_id, types=self.service_types, concurrency=self.concurrency
        )

    async def _subscribe_events(self) -> None:
        assert self._channel is not None
        events = await self._channel.get_exchange(topology.EVENTS_EXCHANGE)
        queue = await self._channel.declare_queue("", exclusive=True, auto_delete=True)
        # Every registry change (created|updated|deleted|paused|resumed): requests may come straight from
        # clients (the fast path), so the worker keeps its own view of each connector current.
        await queue.bind(events, "connector.#")
        await queue.bind(events, topology.cancel_event("*"))
        await queue.consume(self._on_event, no_ack=True)

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        key = message.routing_key or ""
        cancelled = topology.operation_of_cancel_event(key)
        if cancelled:
            self.cancels.heard(cancelled, time.time())  # for a delivery of it that has not started yet
            if self.operations.heard_cancel(cancelled):
                log.info("operation_cancel_requested", operation_id=cancelled)
            return
        action, name = topology.connector_action_of_event(key)
        if name:
            await self.cache.on_event(action, name)

    async def _close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        await self.books.close()  # drained: what was counted goes to Redis before we let go of it
        try:
            await self.state.retire_worker(self.worker_id, self.service_types)
        except ConnectorError as exc:
            log.warning("retire_failed", code=exc.code)
        await self.factory.close()
        await self._rpc.close()
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _lookup(self, service_name: str) -> ServiceConnector:
        """Another connector by name (e.g. the object store a CSV is read from), opened: the caller
        needs `execute:read` on it too."""
        self.door.may_use(service_name, Permission.EXECUTE_READ)
        connector = await self.cache.latest(service_name)
        await connector.open()
        return connector

    async def _run_sink_batch(self, request: OperationRequest, deadline: float) -> OperationResult | None:
        """A sink batch for a connector of a type this worker serves runs here, as a message would (the
        registry's current entry, its idempotency key, the breaker and retries, counted in its metrics).
        None: not served here, or not runnable here (unknown, paused): the fleet answers it."""
        assert request.service_name is not None
        self.door.may_use(request.service_name, Permission.EXECUTE_WRITE)  # the sink's target
        try:
            connector = await self.cache.get(request.service_name, 0)
        except ConnectorError:
            return None
        if connector.service_type not in self.service_types:
            return None
        name = request.service_name

        def run() -> Awaitable[OperationResult]:
            return self.factory.execute_operation(name, request, deadline=deadline)

        result = await self.keyed.run(request, deadline, connector.durable_idempotency, run)
        self.books.count(name, result)
        return result

    # --- heartbeat -----------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.scf_heartbeat_interval)
            try:
                await self._beat()
            except ConnectorError as exc:
                log.warning("heartbeat_failed", code=exc.code, detail=exc.detail)
            if self.feed.needs_sync:
                await self.feed.sync()

    async def _beat(self) -> None:
        info = {"pid": os.getpid(), "concurrency": self.concurrency, "in_flight": len(self._tasks)}
        await self.state.heartbeat(self.worker_id, self.service_types, self.settings.worker_ttl, info)
        pools: dict[str, dict[str, int]] = {}
        for name in self.cache.loaded():
            stats = self.factory.get_connector(name).pool_stats()
            pools[name] = {"size": stats.size, "in_use": stats.in_use, "opened_total": stats.opened_total}
            POOL_SIZE.labels(name, "open").set(stats.size)
            POOL_SIZE.labels(name, "in_use").set(stats.in_use)
        if pools:
            await self.state.report_pools(self.worker_id, pools, self.settings.worker_ttl)

    # --- one message ---------------------------------------------------------------------------------

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        with tracing.consumed("scf.worker", message.type, message.headers):
            await self._handle(message)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        sent = amqp.forwarded_at(message)
        if sent is not None and 0 <= (waited := time.time() - sent) < MAX_QUEUE_WAIT_SEEN:
            _queue_wait(message.routing_key or "unknown").observe(waited)
        redelivered = bool(message.redelivered) or amqp.delivery_count(message) > 0
        if redelivered:
            REDELIVERED_TOTAL.inc()
            log.info("redelivered", message_id=message.message_id, deliveries=amqp.delivery_count(message))
        service_name, result, remaining = None, None, 0.0
        try:
            principal = await self.access.principal_of(message)
            if message.type == MessageType.CONNECTOR_TEST:
                self.access.require(principal, Permission.CONNECTORS_READ)
                body = await run_check(message, self.cache, self.health, principal)
            else:
                service_name, result, remaining = await self.operations.run(message, redelivered, principal)
                body = amqp.encode(result)
        except ConnectorError as exc:  # refused at the door: who sent it, or what they may do
            body = failure_reply(message, exc)
        except Exception:
            # A bug must cost one typed reply, never the worker or a message stuck unacked.
            log.exception("worker_internal_error", message_id=message.message_id, type=message.type)
            body = failure_reply(message, _internal_error())
        if result is None:  # a connection test (or a bug): answered once, kept if nobody hears a failure
            error = failure_of(body) if not message.reply_to else None
            disposition = answer_once(error, has_reply_to=bool(message.reply_to))
        else:
            error = result.error
            disposition = decide(
                error,
                delayed_retries=delayed_retries(message),
                max_delayed_retries=self.settings.scf_delayed_retries,
                remaining=remaining,
                has_reply_to=bool(message.reply_to),
            )
        # The reply goes out first; the result is stored from its bytes meanwhile (coalesced with other
        # stores). The ack waits for both: a worker dying before the store loses nothing (the message is
        # delivered again), and a caller gone before its reply still finds the result.
        record = None
        if disposition.kind is Kind.REPLY and service_name is not None and result is not None:
            record = asyncio.ensure_future(self._record(service_name, result, body))
        assert self._settler is not None
        await settle(message, disposition, self._settler, body=body, error=error, alongside=record)
        if result is not None:
            _audit(message, started, service_name, result, disposition)

    async def _record(self, service_name: str, result: OperationResult, body: bytes) -> None:
        """Count the result and store it from the reply's bytes; Redis trouble must not cost the caller
        its reply (the counts wait for the next flush; the store is logged)."""
        self.books.count(service_name, result)
        try:
            await self.results.store(result.operation_id, body)
        except ConnectorError as exc:
            log.warning("record_failed", operation_id=result.operation_id, code=exc.code)
        except Exception as exc:
            log.error("record_failed", operation_id=result.operation_id, error=type(exc).__name__)


def _internal_error() -> ConnectorError:
    return PermanentError("internal worker error; the fleet's logs have the details", code=ErrorCode.INTERNAL)


def _audit(
    message: AbstractIncomingMessage,
    started: float,
    service_name: str | None,
    result: OperationResult,
    disposition: Disposition,
) -> None:
    outcome = result.status if result.error is None else f"failed:{result.error.code}"
    if disposition.kind is not Kind.REPLY:
        outcome += f":{disposition.kind.value}"
    audit_operation(
        message,
        started,
        failed=result.error is not None,
        service_name=service_name,
        operation_id=result.operation_id,
        outcome=outcome,
    )
