"""The worker: consumes `scf.ops.<type>` queues, runs each operation through the factory, replies, acks.

Order per message: decode -> check deadline -> execute (retries inside the deadline) -> store result and
metrics in Redis -> publish the reply (confirmed) -> ack. A worker killed anywhere before the ack leaves
the message with RabbitMQ, which delivers it to another worker.
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
from scf.fleet.audit import audit, trust_forwarders
from scf.fleet.breakers import RedisBreakerBoard
from scf.fleet.disposition import REPLY, Disposition, Kind, decide
from scf.fleet.health import HealthStore
from scf.fleet.idempotency import IdempotencyStore
from scf.fleet.metrics import (
    OPERATION_SECONDS,
    ORPHAN_REPLIES,
    POOL_SIZE,
    REDELIVERED_TOTAL,
    REJECTED_TOTAL,
    RETRIES_TOTAL,
)
from scf.fleet.rpc import RpcClient
from scf.fleet.service import FleetService, give_back
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
    OperationRequest,
    OperationResult,
    delivery_identity,
    operation_id_in_use,
)
from scf.worker.cache import ConnectorCache
from scf.worker.keyed import KeyedRunner
from scf.worker.result_cache import RedisResultCache
from scf.worker.sink import FleetSink, ProgressPublisher

log = structlog.get_logger(__name__)


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
        self._rpc = RpcClient(connection)
        self.factory = ServiceConnectorFactory(
            default_timeout=settings.scf_default_timeout,
            retry_delay=settings.connection_retry_delay,
            on_retry=lambda connector, _error, _attempt: RETRIES_TOTAL.labels(connector.service_type).inc(),
            lookup=self._lookup,
            sink=FleetSink(self._rpc),
            cache=RedisResultCache(state.redis),
            breakers=RedisBreakerBoard(state.redis, self.worker_id, settings.breaker_policy),
        )
        self.cache = ConnectorCache(self.factory, state)
        self.health = HealthStore(state.redis)
        self.keyed = KeyedRunner(IdempotencyStore(state.redis, settings.scf_idempotency_ttl), self.worker_id)
        self._running: set[str] = set()  # operation ids in flight here
        self._cancelled: set[str] = set()  # ... of which the caller cancelled these
        self._settler: Settler | None = None
        self._channel: AbstractChannel | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._channel = await amqp.open_channel(self.connection, prefetch=self.concurrency)
        await amqp.declare_topology(self._channel, self.settings.queue_limits)
        self._settler = Settler(self._channel)
        await self._rpc.start()
        await self._subscribe_events()
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
            if cancelled in self._running:
                self._cancelled.add(cancelled)
                log.info("operation_cancel_requested", operation_id=cancelled)
            return
        action, name = topology.connector_action_of_event(key)
        if name:
            await self.cache.on_event(action, name)

    async def _close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
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
        if message.redelivered or amqp.delivery_count(message) > 0:
            REDELIVERED_TOTAL.inc()
            log.info("redelivered", message_id=message.message_id, deliveries=amqp.delivery_count(message))
        service_name, result, remaining = None, None, 0.0
        try:
            if message.type == MessageType.CONNECTOR_TEST:
                body = await self._run_test(message)
            else:
                service_name, result, remaining = await self._run_operation(message)
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
            # Storing the result and replying are independent: do both at once, ack when both are done.
            settled, _ = await asyncio.gather(self._reply(message, body), self._record(service_name, result))
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
            audit(
                message, started, service_name=service_name, operation_id=result.operation_id, outcome=outcome
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
        self, message: AbstractIncomingMessage
    ) -> tuple[str | None, OperationResult, float]:
        """Run a forwarded operation: its connector's name (None if unreadable), result, time left."""
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
        # The claim comes first: nothing (not even a refusal) may be recorded under someone else's id.
        ours, cancelled = await self._begin(message, request)
        if not ours:
            # Not recorded (service_name None): the stored result under this id is its owner's.
            REJECTED_TOTAL.labels(ErrorCode.OPERATION_ID_IN_USE).inc()
            log.info("operation_id_in_use", operation_id=request.operation_id)
            taken = operation_id_in_use(request.operation_id)
            return None, OperationResult.failed(request.operation_id, taken), envelope.remaining()
        if envelope.remaining() <= 0:
            late = TransientError(
                "the request's deadline passed before it could run", code=ErrorCode.DEADLINE_EXCEEDED
            )
            result = OperationResult.failed(request.operation_id, late)
        elif cancelled:
            stopped = PermanentError("the operation was cancelled before it ran", code=ErrorCode.CANCELLED)
            result = OperationResult.failed(request.operation_id, stopped)
        else:
            result = await self._execute(message, envelope)
        OPERATION_SECONDS.labels(envelope.service_type, request.operation, result.status).observe(
            result.execution_time
        )
        return request.service_name, result, envelope.remaining()

    async def _execute(
        self, message: AbstractIncomingMessage, envelope: OperationEnvelope
    ) -> OperationResult:
        request = envelope.request
        assert request.operation_id is not None and request.service_name is not None
        operation_id, service_name = request.operation_id, request.service_name
        assert self._channel is not None
        progress = PROGRESS.set(ProgressPublisher(self._channel, message, operation_id))
        cancelled = CANCELLED.set(lambda: operation_id in self._cancelled)
        self._running.add(operation_id)
        try:
            connector = await self.cache.get(service_name, envelope.connector_version)

            def run() -> Awaitable[OperationResult]:
                return self.factory.execute_operation(service_name, request, deadline=envelope.deadline)

            return await self.keyed.run(request, envelope.deadline, connector.durable_idempotency, run)
        except ConnectorError as exc:
            return OperationResult.failed(operation_id, exc)
        finally:
            self._running.discard(operation_id)
            self._cancelled.discard(operation_id)
            CANCELLED.reset(cancelled)
            PROGRESS.reset(progress)

    async def _begin(self, message: AbstractIncomingMessage, request: OperationRequest) -> tuple[bool, bool]:
        """(the operation id is ours, it was cancelled): one Redis round trip, the one the cancel check
        always cost. Both are advisory: Redis trouble must not stop the work."""
        assert request.operation_id is not None
        identity = delivery_identity(message.reply_to, message.correlation_id, request)
        try:
            return await self.state.begin_operation(
                request.operation_id, identity, self.settings.scf_result_ttl
            )
        except ConnectorError:
            return True, False

    async def _record(self, service_name: str, result: OperationResult) -> None:
        """Store the result and count it; Redis trouble must not cost the caller its reply."""
        try:
            await self.state.finish_operation(
                service_name, result, self.settings.scf_result_ttl, claimed=True
            )
        except ConnectorError as exc:
            log.warning("record_failed", operation_id=result.operation_id, code=exc.code)
        except Exception as exc:  # e.g. a result that cannot be encoded: the reply still goes out
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


#: A failure without a caller to tell is kept as a dead letter, never dropped (DESIGN.md §4).
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
