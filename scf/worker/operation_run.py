"""One forwarded operation in a worker: read the envelope, claim the operation id, run it once.

Nothing (not even a refusal) may be recorded under someone else's operation id, and nothing with an
effect may run under it: a write (or a keyed request) waits for its claim; a read runs while it is
claimed, and its answer is dropped for OPERATION_ID_IN_USE if the claim was lost. Cancels heard as
events are kept here (`running`, `cancelled`); Redis is asked only about a redelivery or a suspect id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from scf.connectors.base import ServiceConnector
from scf.connectors.sources import CANCELLED, PROGRESS
from scf.factory import ServiceConnectorFactory
from scf.fleet import tracing
from scf.fleet.access import acting_for
from scf.fleet.metrics import OPERATION_SECONDS, REJECTED_TOTAL, Children
from scf.fleet.replies import failed_result
from scf.fleet.settings import MAX_REQUEST_BYTES
from scf.fleet.state import StateStore
from scf.schemas.access import Principal
from scf.schemas.errors import ConnectorError, ErrorCode, PermanentError, TransientError
from scf.schemas.operation import (
    OperationEnvelope,
    OperationResult,
    delivery_identity,
    operation_id_in_use,
    owned_identity,
)
from scf.worker.cache import ConnectorCache
from scf.worker.cancels import RecentCancels
from scf.worker.door import Door, shown_to
from scf.worker.keyed import KeyedRunner
from scf.worker.sink import ProgressPublisher

log = structlog.get_logger(__name__)
#: The duration histogram's children by (service type, operation, status), looked up once each.
_operation_seconds = Children(OPERATION_SECONDS)

#: (the connector's name to record the result under, None: record nothing; the result; seconds left)
Ran = tuple[str | None, OperationResult, float]


class OperationRun:
    """Runs the forwarded operations of one worker (its connectors, claims, cancels, keyed requests)."""

    def __init__(
        self,
        state: StateStore,
        factory: ServiceConnectorFactory,
        cache: ConnectorCache,
        keyed: KeyedRunner,
        cancels: RecentCancels,
        result_ttl: int,
        door: Door,
    ) -> None:
        self.state = state
        self.factory = factory
        self.cache = cache
        self.keyed = keyed
        self.cancels = cancels
        self.result_ttl = result_ttl
        self.channel: AbstractChannel | None = None  # progress is published here (set once started)
        self.running: dict[str, int] = {}  # operation ids in flight here (how many deliveries of each)
        self.cancelled: set[str] = set()  # ... of which the caller cancelled these
        self.door = door

    def heard_cancel(self, operation_id: str) -> bool:
        """A cancel event for `operation_id`: True if it runs here now (it is told to stop)."""
        if operation_id not in self.running:
            return False
        self.cancelled.add(operation_id)
        return True

    async def run(
        self, message: AbstractIncomingMessage, redelivered: bool, principal: Principal | None = None
    ) -> Ran:
        # A request may come straight from a client (the fast path): every bound the dispatcher sets is
        # set here again (size, a deadline within the timeout cap, an operation id).
        if len(message.body) > MAX_REQUEST_BYTES:
            REJECTED_TOTAL.labels(ErrorCode.REQUEST_TOO_LARGE).inc()
            large = PermanentError(
                f"the request is larger than {MAX_REQUEST_BYTES} bytes", code=ErrorCode.REQUEST_TOO_LARGE
            )
            return None, failed_result(message, large), 0.0
        try:
            envelope = OperationEnvelope.model_validate_json(message.body).capped(time.time())
        except ValueError:
            log.warning("poison_message", message_id=message.message_id)
            error = PermanentError(
                "the worker could not read the forwarded request", code=ErrorCode.INVALID_REQUEST
            )
            return None, failed_result(message, error), 0.0
        operation_id = envelope.request.operation_id
        if operation_id is None:
            unnamed = PermanentError(
                "the forwarded request has no operation_id", code=ErrorCode.INVALID_REQUEST
            )
            return None, failed_result(message, unnamed), 0.0
        self.running[operation_id] = self.running.get(operation_id, 0) + 1  # a cancel event now counts
        try:
            # every log line written while it runs (connectors' and libraries' too) names the operation
            with structlog.contextvars.bound_contextvars(
                operation_id=operation_id,
                service_name=envelope.request.service_name,
                service_type=envelope.service_type,
                principal=principal.name if principal is not None else None,
            ):
                return await self._claimed_run(message, envelope, redelivered, principal)
        finally:
            left = self.running.pop(operation_id, 1) - 1
            if left > 0:
                self.running[operation_id] = left
            else:
                self.cancelled.discard(operation_id)

    async def _claimed_run(
        self,
        message: AbstractIncomingMessage,
        envelope: OperationEnvelope,
        redelivered: bool,
        principal: Principal | None,
    ) -> Ran:
        request = original = envelope.request
        assert request.operation_id is not None and request.service_name is not None
        operation_id = request.operation_id
        try:
            self.door.may_execute(principal, request.service_name)  # before the name's existence shows
            connector = await self.cache.get(request.service_name, envelope.connector_version)
            request = await self.door.admit(principal, message, request, connector)
            envelope = envelope.model_copy(update={"request": request})
        except ConnectorError as exc:
            # Unknown or paused (what the dispatcher refuses): refused before anything exists, so nothing
            # is claimed or recorded, not even metrics under a name a raw publisher made up.
            REJECTED_TOTAL.labels(exc.code).inc()
            return None, OperationResult.failed(operation_id, exc), envelope.remaining()
        delivery = delivery_identity(message.reply_to, message.correlation_id, original)
        identity = owned_identity(principal.name if principal else None, delivery)
        read = request.idempotency_key is None and request.operation in connector.read_operations
        claim: asyncio.Task[bool] | None = None
        ours, cancelled = True, False  # a read's `ours` is decided by `claim` before anything is recorded
        if redelivered or self.cancels.suspect(operation_id, time.time()):
            ours, cancelled = await self._begin(operation_id, identity)  # claim and cancel mark at once
        elif read:
            claim = asyncio.create_task(self._claim(operation_id, identity))
        else:
            ours = await self._claim(operation_id, identity)
        if ours:
            with acting_for(principal):  # a sink batch or an object read it makes carries its principal
                result = await self._run_owned(message, envelope, connector, cancelled)
            shown = shown_to(principal, result.error)
            if shown is not result.error:
                result = result.model_copy(update={"error": shown})
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

    async def _run_owned(
        self,
        message: AbstractIncomingMessage,
        envelope: OperationEnvelope,
        connector: ServiceConnector,
        cancelled: bool,
    ) -> OperationResult:
        """Run a claimed operation, unless its deadline passed or it was cancelled before it ran."""
        operation_id = envelope.request.operation_id
        assert operation_id is not None
        if envelope.remaining() <= 0:
            late = TransientError(
                "the request's deadline passed before it could run", code=ErrorCode.DEADLINE_EXCEEDED
            )
            return OperationResult.failed(operation_id, late)
        if cancelled or operation_id in self.cancelled:
            stopped = PermanentError("the operation was cancelled before it ran", code=ErrorCode.CANCELLED)
            return OperationResult.failed(operation_id, stopped)
        return await self._execute(message, envelope, connector)

    async def _execute(
        self, message: AbstractIncomingMessage, envelope: OperationEnvelope, connector: ServiceConnector
    ) -> OperationResult:
        request = envelope.request
        assert request.operation_id is not None and request.service_name is not None
        operation_id, service_name = request.operation_id, request.service_name
        assert self.channel is not None
        progress = PROGRESS.set(ProgressPublisher(self.channel, message, operation_id))
        cancelled = CANCELLED.set(lambda: operation_id in self.cancelled)
        try:

            def run() -> Awaitable[OperationResult]:
                if tracing.active():
                    return self._traced(envelope, service_name, operation_id)
                return self.factory.execute_operation(service_name, request, deadline=envelope.deadline)

            async with self.door.slot(connector, envelope.deadline):
                return await self.keyed.run(request, envelope.deadline, connector.durable_idempotency, run)
        except ConnectorError as exc:
            return OperationResult.failed(operation_id, exc)
        finally:
            CANCELLED.reset(cancelled)
            PROGRESS.reset(progress)

    async def _traced(
        self, envelope: OperationEnvelope, service_name: str, operation_id: str
    ) -> OperationResult:
        """The connector's work as the span `scf.connector <type>.<operation>` (tracing on only)."""
        request = envelope.request
        with tracing.span(
            "scf.connector",
            f"{envelope.service_type}.{request.operation}",
            {"scf.service_name": service_name, "scf.operation_id": operation_id},
        ):
            return await self.factory.execute_operation(service_name, request, deadline=envelope.deadline)

    async def _begin(self, operation_id: str, identity: str) -> tuple[bool, bool]:
        """(the operation id is ours, it was cancelled), in one round trip. Both are advisory: Redis
        trouble must not stop the work."""
        try:
            return await self.state.begin_operation(operation_id, identity, self.result_ttl)
        except ConnectorError:
            return True, False

    async def _claim(self, operation_id: str, identity: str) -> bool:
        """Is the operation id ours (claimed now, or already by this same request)? Advisory, as above."""
        try:
            return await self.state.claim_operation(operation_id, identity, self.result_ttl)
        except ConnectorError:
            return True
        except Exception as exc:  # never a task's exception nobody awaits; the work goes on as above
            log.error("operation_claim_failed", operation_id=operation_id, error=type(exc).__name__)
            return True
