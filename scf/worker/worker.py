"""The worker: consumes `scf.ops.<type>` queues, runs each operation through the factory, replies, acks.

Order per message: decode -> claim the operation id -> check deadline -> execute (retries inside the
deadline) -> publish the reply (confirmed) and store the result (from the reply's bytes) -> ack once
both are done. A worker killed anywhere before the ack leaves the message with RabbitMQ, which delivers
it to another worker. Only the work waits on Redis where safety needs it: a read without an idempotency
key is claimed while it runs (its answer is dropped for OPERATION_ID_IN_USE if the claim is lost), a
write is claimed first; cancels are heard as events (Redis is asked only about a redelivery or an id a
cancel was heard for); metrics and breaker successes are flushed in the background (`books.py`).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from scf.connectors.base import ServiceConnector
from scf.connectors.sources import CANCELLED, PROGRESS
from scf.factory import ServiceConnectorFactory
from scf.fleet import amqp
from scf.fleet.audit import audit_operation, sample_operations, trust_forwarders
from scf.fleet.disposition import REPLY, Disposition, Kind, decide
from scf.fleet.health import HealthStore
from scf.fleet.lifecycle import FleetService, give_back
from scf.fleet.metrics import (
    OPERATION_SECONDS,
    ORPHAN_REPLIES,
    POOL_SIZE,
    REDELIVERED_TOTAL,
    REJECTED_TOTAL,
    RETRIES_TOTAL,
    Children,
)
from scf.fleet.rpc import RpcClient
from scf.fleet.settings import Settings
from scf.fleet.settle import Settler, delayed_retries
from scf.fleet.state import StateStore
from scf.schemas import topology
from scf.schemas.control import CheckEnvelope, FailedReply, MessageType
from scf.schemas.dead_letters import DeadReason
from scf.schemas.errors import ConnectorError, ErrorCode, ErrorInfo, PermanentError, TransientError
from scf.schemas.operation import (
    ConnectionTestResult,
    OperationEnvelope,
    OperationResult,
    delivery_identity,
    operation_id_in_use,
)
from scf.worker.books import Books, ResultWriter
from scf.worker.cache import ConnectorCache
from scf.worker.cancels import RecentCancels
from scf.worker.idempotency import IdempotencyStore
from scf.worker.keyed import KeyedRunner
from scf.worker.shared_breakers import RedisBreakerBoard
from scf.worker.shared_result_cache import RedisResultCache
from scf.worker.sink import FleetSink, ProgressPublisher

log = structlog.get_logger(__name__)
#: The duration histogram's children by (service type, operation, status), looked up once each.
_operation_seconds = Children(OPERATION_SECONDS)


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
        self._rpc = RpcClient(connection)
        breakers = RedisBreakerBoard(state.redis, self.worker_id, settings.breaker_policy)
        self.factory = ServiceConnectorFactory(
            default_timeout=settings.scf_default_timeout,
            retry_delay=settings.connection_retry_delay,
            on_retry=lambda connector, _error, _attempt: RETRIES_TOTAL.labels(connector.service_type).inc(),
            lookup=self._lookup,
            sink=FleetSink(self._rpc),
            cache=RedisResultCache(state.redis),
            breakers=breakers,
        )
        self.cache = ConnectorCache(self.factory, state)
        self.health = HealthStore(state.redis)
        self.keyed = KeyedRunner(IdempotencyStore(state.redis, settings.scf_idempotency_ttl), self.worker_id)
        self.books = Books(state, breakers, interval=settings.scf_metrics_flush_interval)
        self.results = ResultWriter(state, settings.scf_result_ttl)
        self.cancels = RecentCancels(settings.scf_cancel_memory)
        self._running: dict[str, int] = {}  # operation ids in flight here (how many deliveries of each)
        self._cancelled: set[str] = set()  # ... of which the caller cancelled these
        self._subscribed = False  # the cancel events reach us (else every id is checked in Redis)
        self._syncing: set[asyncio.Task[None]] = set()
        self._settler: Settler | None = None
        self._channel: AbstractChannel | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._channel = await amqp.open_channel(self.connection, prefetch=self.concurrency)
        await amqp.declare_topology(self._channel, self.settings.queue_limits)
        self._settler = Settler(self._channel)
        await self._rpc.start()
        await self._subscribe_events()
        self._watch_events()
        await self._sync_cancels()
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
            if cancelled in self._running:
                self._cancelled.add(cancelled)
                log.info("operation_cancel_requested", operation_id=cancelled)
            return
        action, name = topology.connector_action_of_event(key)
        if name:
            await self.cache.on_event(action, name)

    # --- cancel events: what was missed is read from Redis ------------------------------------------

    def _watch_events(self) -> None:
        """Events published while the subscription is down are lost: suspect every id until re-synced."""
        assert self._channel is not None
        self._subscribed = True
        self.connection.close_callbacks.add(self._events_lost)
        self.connection.reconnect_callbacks.add(self._events_back)
        self._channel.close_callbacks.add(self._events_lost)
        reopened = getattr(self._channel, "reopen_callbacks", None)
        if reopened is not None:
            reopened.add(self._events_back)

    def _events_lost(self, *_: Any) -> None:
        self._subscribed = False
        self.cancels.missed_events()

    def _events_back(self, *_: Any) -> None:
        self._subscribed = True
        task = asyncio.get_running_loop().create_task(self._sync_cancels(), name="cancel-sync")
        self._syncing.add(task)
        task.add_done_callback(self._syncing.discard)

    async def _sync_cancels(self) -> None:
        """Remember every cancel mark in Redis (set before we heard events); then events suffice."""
        generation = self.cancels.begin_sync()
        limit = self.settings.scf_cancel_memory
        try:
            marks = await self.state.cancel_marks(limit)
        except ConnectorError as exc:
            log.warning("cancel_sync_failed", code=exc.code)
            self.cancels.give_up_sync(time.time())
            return
        if len(marks) >= limit:  # more than we may remember: keep asking Redis about every id
            log.warning("cancel_sync_overflow", marks=len(marks))
            self.cancels.give_up_sync(time.time())
            return
        self.cancels.synced(marks, time.time(), generation)

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
        """Another connector by name (e.g. the object store a CSV is read from), opened."""
        connector = await self.cache.latest(service_name)
        await connector.open()
        return connector

    # --- heartbeat -----------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.scf_heartbeat_interval)
            try:
                await self._beat()
            except ConnectorError as exc:
                log.warning("heartbeat_failed", code=exc.code, detail=exc.detail)
            if self._subscribed and self.cancels.needs_sync:
                await self._sync_cancels()

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
        started = time.perf_counter()
        redelivered = bool(message.redelivered) or amqp.delivery_count(message) > 0
        if redelivered:
            REDELIVERED_TOTAL.inc()
            log.info("redelivered", message_id=message.message_id, deliveries=amqp.delivery_count(message))
        service_name, result, remaining = None, None, 0.0
        try:
            if message.type == MessageType.CONNECTOR_TEST:
                body = await self._run_test(message)
            else:
                service_name, result, remaining = await self._run_operation(message, redelivered)
                body = amqp.encode(result)
        except Exception:
            # A bug must cost one typed reply, never the worker or a message stuck unacked.
            log.exception("worker_internal_error", message_id=message.message_id, type=message.type)
            body = _internal_error_reply(message)
        disposition = REPLY
        if result is not None:
            disposition = decide(
                result.error,
                delayed_retries=delayed_retries(message),
                max_delayed_retries=self.settings.scf_delayed_retries,
                remaining=remaining,
                has_reply_to=bool(message.reply_to),
            )
        unheard = _failure_of(body) if result is None and not message.reply_to else None
        if disposition.kind is not Kind.REPLY and result is not None and result.error is not None:
            settled = await self._move(message, disposition, result.error)
        elif unheard is not None:  # a failed connection test (or a bug) nobody will hear about: keep it
            settled = await self._move(message, UNHEARD, unheard)
        elif service_name is not None and result is not None:
            # The reply goes out first; the result is stored from its bytes meanwhile (coalesced with
            # other stores). The ack waits for both: a worker dying before the store loses nothing (the
            # message is delivered again), and a caller gone before its reply still finds the result.
            record = asyncio.ensure_future(self._record(service_name, result, body))
            settled = await self._reply(message, body)
            await record
        else:
            settled = await self._reply(message, body)
        if settled:
            await message.ack()
        else:
            await give_back(message)
        if result is not None:
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

    async def _move(
        self, message: AbstractIncomingMessage, disposition: Disposition, error: ErrorInfo
    ) -> bool:
        """To a delayed-retry queue or the dead letters (confirmed); False leaves it unacked."""
        assert self._settler is not None
        try:
            if disposition.kind is Kind.RETRY_LATER and disposition.tier is not None:
                await self._settler.retry_later(message, disposition.tier)
            elif disposition.reason is not None:
                await self._settler.dead_letter(message, disposition.reason, error)
        except Exception as exc:
            log.warning("settle_failed", message_id=message.message_id, error=repr(exc))
            return False
        log.info("operation_moved", message_id=message.message_id, to=disposition.kind.value, code=error.code)
        return True

    async def _reply(self, message: AbstractIncomingMessage, body: bytes) -> bool:
        """Publish the reply (confirmed). False when the broker failed us: the message must stay unacked."""
        assert self._channel is not None
        try:
            await amqp.reply(self._channel, message, body)
        except amqp.UnroutableError:
            ORPHAN_REPLIES.inc()
            log.info("reply_orphaned", message_id=message.message_id)
        except Exception as exc:
            log.warning("reply_failed", message_id=message.message_id, error=repr(exc))
            return False
        return True

    async def _run_operation(
        self, message: AbstractIncomingMessage, redelivered: bool
    ) -> tuple[str | None, OperationResult, float]:
        """Run a forwarded operation: its connector's name (None: record nothing), result, time left."""
        try:
            envelope = OperationEnvelope.model_validate_json(message.body)
        except ValueError:
            log.warning("poison_message", message_id=message.message_id)
            error = PermanentError(
                "the worker could not read the forwarded request", code=ErrorCode.INVALID_REQUEST
            )
            return None, OperationResult.failed(message.message_id or "op_unknown", error), 0.0
        request = envelope.request
        assert request.operation_id is not None and request.service_name is not None
        operation_id = request.operation_id
        self._running[operation_id] = self._running.get(operation_id, 0) + 1  # a cancel event now counts
        try:
            return await self._claimed_run(message, envelope, redelivered)
        finally:
            left = self._running.pop(operation_id, 1) - 1
            if left > 0:
                self._running[operation_id] = left
            else:
                self._cancelled.discard(operation_id)

    async def _claimed_run(
        self, message: AbstractIncomingMessage, envelope: OperationEnvelope, redelivered: bool
    ) -> tuple[str | None, OperationResult, float]:
        """Nothing (not even a refusal) may be recorded under someone else's operation id, and nothing
        with an effect may run under it: a write (or a keyed request) waits for its claim; a read runs
        while it is claimed, and its answer is dropped if the claim was lost."""
        request = envelope.request
        assert request.operation_id is not None and request.service_name is not None
        operation_id = request.operation_id
        identity = delivery_identity(message.reply_to, message.correlation_id, request)
        connector: ServiceConnector | None = None
        unavailable: ConnectorError | None = None
        try:
            connector = await self.cache.get(request.service_name, envelope.connector_version)
        except ConnectorError as exc:
            unavailable = exc
        if unavailable is not None:
            # Unknown or paused (what the dispatcher refuses): refused before anything exists, so nothing
            # is claimed or recorded, not even metrics under a name a raw publisher made up.
            REJECTED_TOTAL.labels(unavailable.code).inc()
            return None, OperationResult.failed(operation_id, unavailable), envelope.remaining()
        read = (
            connector is not None
            and request.idempotency_key is None
            and request.operation in connector.read_operations
        )
        claim: asyncio.Task[bool] | None = None
        cancelled = False
        if redelivered or self.cancels.suspect(operation_id, time.time()):
            ours, cancelled = await self._begin(operation_id, identity)  # claim and cancel mark at once
        elif read:
            claim = asyncio.create_task(self._claim(operation_id, identity))
            ours = True  # decided by `claim` before anything is recorded
        else:
            ours = await self._claim(operation_id, identity)
        if ours:
            if envelope.remaining() <= 0:
                late = TransientError(
                    "the request's deadline passed before it could run", code=ErrorCode.DEADLINE_EXCEEDED
                )
                result = OperationResult.failed(operation_id, late)
            elif cancelled or operation_id in self._cancelled:
                stopped = PermanentError(
                    "the operation was cancelled before it ran", code=ErrorCode.CANCELLED
                )
                result = OperationResult.failed(operation_id, stopped)
            else:
                assert connector is not None  # an unavailable one was refused above
                result = await self._execute(message, envelope, connector)
            if claim is not None:
                ours = await claim
        if not ours:
            # Not recorded (service_name None): the stored result under this id is its owner's.
            REJECTED_TOTAL.labels(ErrorCode.OPERATION_ID_IN_USE).inc()
            log.info("operation_id_in_use", operation_id=operation_id)
            taken = operation_id_in_use(operation_id)
            return None, OperationResult.failed(operation_id, taken), envelope.remaining()
        _operation_seconds(envelope.service_type, request.operation, result.status).observe(
            result.execution_time
        )
        return request.service_name, result, envelope.remaining()

    async def _execute(
        self, message: AbstractIncomingMessage, envelope: OperationEnvelope, connector: ServiceConnector
    ) -> OperationResult:
        request = envelope.request
        assert request.operation_id is not None and request.service_name is not None
        operation_id, service_name = request.operation_id, request.service_name
        assert self._channel is not None
        progress = PROGRESS.set(ProgressPublisher(self._channel, message, operation_id))
        cancelled = CANCELLED.set(lambda: operation_id in self._cancelled)
        try:

            def run() -> Awaitable[OperationResult]:
                return self.factory.execute_operation(service_name, request, deadline=envelope.deadline)

            return await self.keyed.run(request, envelope.deadline, connector.durable_idempotency, run)
        except ConnectorError as exc:
            return OperationResult.failed(operation_id, exc)
        finally:
            CANCELLED.reset(cancelled)
            PROGRESS.reset(progress)

    async def _begin(self, operation_id: str, identity: str) -> tuple[bool, bool]:
        """(the operation id is ours, it was cancelled), in one round trip. Both are advisory: Redis
        trouble must not stop the work."""
        try:
            return await self.state.begin_operation(operation_id, identity, self.settings.scf_result_ttl)
        except ConnectorError:
            return True, False

    async def _claim(self, operation_id: str, identity: str) -> bool:
        """Is the operation id ours (claimed now, or already by this same request)? Advisory, as above."""
        try:
            return await self.state.claim_operation(operation_id, identity, self.settings.scf_result_ttl)
        except ConnectorError:
            return True
        except Exception as exc:  # never a task's exception nobody awaits; the work goes on as above
            log.error("operation_claim_failed", operation_id=operation_id, error=type(exc).__name__)
            return True

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

    async def _run_test(self, message: AbstractIncomingMessage) -> bytes:
        try:
            envelope = CheckEnvelope.model_validate_json(message.body)
            connector = await self.cache.get(
                envelope.service_name, envelope.connector_version, allow_paused=True
            )
            async with asyncio.timeout(max(0.1, envelope.deadline - time.time())):
                result = await connector.check()
        except TimeoutError:
            error = TransientError("the connection test did not finish in time", code=ErrorCode.TIMEOUT)
            return amqp.encode(FailedReply.of(error))
        except ValueError:
            return amqp.encode(
                FailedReply.of(PermanentError("unreadable test request", code=ErrorCode.INVALID_REQUEST))
            )
        except ConnectorError as exc:
            return amqp.encode(FailedReply.of(exc))
        try:
            await self.health.record(result)
        except ConnectorError as exc:
            log.warning("record_failed", service_name=result.service_name, code=exc.code)
        return _dump_test(result)


#: A failure without a caller to tell is kept as a dead letter, never dropped (docs/resilience.md).
UNHEARD = Disposition(Kind.DEAD_LETTER, reason=DeadReason.FAILED_WITHOUT_REPLY)


def _failure_of(body: bytes) -> ErrorInfo | None:
    """The error of a failed reply body (`{"status": "failed", "error": {...}}`), else None."""
    answer = json.loads(body)
    error = answer.get("error") if isinstance(answer, dict) and answer.get("status") == "failed" else None
    return ErrorInfo.model_validate(error) if isinstance(error, dict) else None


def _dump_test(result: ConnectionTestResult) -> bytes:
    body: dict[str, Any] = result.model_dump(mode="json", exclude_none=True)
    return json.dumps(body).encode()


def _internal_error_reply(message: AbstractIncomingMessage) -> bytes:
    error = PermanentError(
        "internal worker error; the fleet's logs have the details", code=ErrorCode.INTERNAL
    )
    if message.type == MessageType.CONNECTOR_TEST:
        return amqp.encode(FailedReply.of(error))
    return amqp.encode(OperationResult.failed(message.message_id or "op_unknown", error))
