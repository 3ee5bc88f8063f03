"""The dispatcher: consumes `scf.requests`, answers control-plane calls, routes data operations.

Every request gets exactly one settlement: forwarded to `scf.ops` (ack after the broker confirmed the
republish), or answered with a reply (ack after the reply was confirmed). A lost broker connection leaves
the request unacked, so RabbitMQ delivers it again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from scf.dispatcher.control import ControlPlane, parse
from scf.dispatcher.dead_letter_desk import DeadLetterDesk
from scf.dispatcher.dead_letter_store import DeadLetterStore
from scf.dispatcher.health_monitor import HealthMonitor
from scf.dispatcher.routing import Decoded, deadline_for, decode
from scf.dispatcher.routing_cache import RoutingCache
from scf.fleet import amqp
from scf.fleet.audit import audit, trust_forwarders
from scf.fleet.lifecycle import FleetService, give_back
from scf.fleet.metrics import DROPPED_TOTAL, ORPHAN_REPLIES, QUEUE_DEPTH, REJECTED_TOTAL, REQUESTS_TOTAL
from scf.fleet.rpc import RpcClient
from scf.fleet.settings import Settings
from scf.fleet.settle import Settler
from scf.fleet.state import StateStore
from scf.schemas import topology
from scf.schemas.control import CheckEnvelope, ConnectorRef, FailedReply, MessageType
from scf.schemas.dead_letters import DeadReason
from scf.schemas.errors import (
    ConfigurationError,
    ConnectorError,
    ErrorCode,
    ErrorInfo,
    PermanentError,
    ResourceError,
)
from scf.schemas.operation import (
    OperationEnvelope,
    OperationRequest,
    OperationResult,
    delivery_identity,
    operation_id_in_use,
)
from scf.schemas.plugins import known_types

log = structlog.get_logger(__name__)

MAX_REQUEST_BYTES = 16 * 1024 * 1024
DEAD_LETTER_PREFETCH = 16


@dataclass(frozen=True)
class Claim:
    """A caller-chosen operation id this dispatcher claimed for one request (`identity`)."""

    operation_id: str
    identity: str


class Forward:
    """Settlement: republish to the work queue of `service_type`."""

    def __init__(
        self,
        service_type: str,
        body: bytes,
        message_id: str | None,
        expires_in: float | None = None,
        claim: Claim | None = None,
    ) -> None:
        self.service_type = service_type
        self.body = body
        self.message_id = message_id
        self.expires_in = expires_in  # the request's remaining budget: it dies in the queue after that
        self.claim = claim  # released if the broker refuses the forward


class Dispatcher(FleetService):
    role = "dispatcher"

    def __init__(self, settings: Settings, state: StateStore, connection: AbstractRobustConnection) -> None:
        super().__init__()
        self.settings = settings
        self.state = state
        self.connection = connection
        self._channel: AbstractChannel | None = None
        self._ops: AbstractExchange | None = None
        self._events: AbstractExchange | None = None
        self._rpc = RpcClient(connection)
        trust_forwarders(settings.trusted_forwarders)
        # A connector's type rarely changes: guessing it lets one Redis round trip fetch the entry and
        # the live-worker count together (a wrong guess costs one more round trip, never a wrong route).
        self._type_hints: dict[str, str] = {}
        self._routes = RoutingCache(ttl=settings.scf_routing_cache_ttl)
        self._background: list[asyncio.Task[None]] = []
        self.control = ControlPlane(
            state,
            self._rpc,
            self._publish_event,
            test_timeout=min(10.0, settings.connection_timeout),
            health_threshold=settings.service_timeout_threshold,
        )

    async def start(self) -> None:
        self._channel = await amqp.open_channel(
            self.connection, prefetch=self.settings.scf_prefetch_dispatcher
        )
        await amqp.declare_topology(self._channel, self.settings.queue_limits)
        self._ops = await self._channel.get_exchange(topology.OPS_EXCHANGE)
        self._events = await self._channel.get_exchange(topology.EVENTS_EXCHANGE)
        await self._rpc.start()
        await self._listen_for_registry_changes()
        await self._open_dead_letter_desk()
        queue = await self._channel.get_queue(topology.REQUEST_QUEUE)
        await self.consume(queue, self._on_request)
        self._background = [asyncio.create_task(self._sample_queues(), name="queue-sampler")]
        if self.settings.scf_health_monitor:
            monitor = HealthMonitor(
                self.state,
                self._rpc,
                self._publish_event,
                interval=self.settings.health_check_interval,
                threshold=self.settings.service_timeout_threshold,
                webhook=self.settings.scf_alert_webhook,
            )
            self._background.append(asyncio.create_task(monitor.run(), name="health-monitor"))
        self._ready = True
        log.info("dispatcher_started")

    async def _open_dead_letter_desk(self) -> None:
        """`scf.dead` on a channel of its own, so a pause there never holds up requests."""
        channel = await amqp.open_channel(self.connection, prefetch=DEAD_LETTER_PREFETCH)
        store = DeadLetterStore(
            self.state.redis,
            self.state.box,
            ttl=self.settings.scf_dead_letter_ttl,
            max_entries=self.settings.scf_dead_letter_max,
        )
        self.desk = DeadLetterDesk(
            channel,
            store,
            self.state,
            result_ttl=self.settings.scf_result_ttl,
            default_timeout=self.settings.scf_default_timeout,
            delivery_limit=self.settings.scf_delivery_limit,
        )
        self.control.handlers.update(self.desk.handlers)
        dead = await channel.get_queue(topology.DEAD_LETTER_QUEUE)
        await self.consume(dead, self.desk.on_dead, dead_letters_on_reject=False)

    async def _listen_for_registry_changes(self) -> None:
        """Drop cached routes when any dispatcher changes the registry (another replica, say)."""
        assert self._channel is not None and self._events is not None
        queue = await self._channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.bind(self._events, "connector.#")

        async def on_event(message: AbstractIncomingMessage) -> None:
            self._routes.invalidate(topology.connector_of_event(message.routing_key or ""))

        await queue.consume(on_event, no_ack=True)

    async def _sample_queues(self) -> None:
        """Export the depth of every fleet queue (work queues and the dead letters) to Prometheus."""
        assert self._channel is not None
        names = [topology.REQUEST_QUEUE, topology.DEAD_LETTER_QUEUE]
        names += [topology.work_queue(t) for t in known_types()]
        while True:
            for name in names:
                try:
                    declared = await self._channel.declare_queue(name, passive=True)
                    QUEUE_DEPTH.labels(name).set(declared.declaration_result.message_count or 0)
                except Exception as exc:
                    log.info("queue_sample_failed", queue=name, error=repr(exc))
                    break
            await asyncio.sleep(self.settings.scf_queue_sample_interval)

    async def _close(self) -> None:
        for task in self._background:
            task.cancel()
        await self._rpc.close()
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _publish_event(self, routing_key: str, body: dict[str, Any]) -> None:
        assert self._events is not None
        self._routes.invalidate(topology.connector_of_event(routing_key))
        message = amqp.build_message(
            amqp.encode(body), message_type="event", correlation_id=None, reply_to=None, persistent=False
        )
        await self._events.publish(message, routing_key, mandatory=False)

    # --- one request ---------------------------------------------------------------------------------

    async def _on_request(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        if self.settings.scf_unsafe_early_ack:  # the fault suite's negative control, never in production
            await message.ack()
        decision = await self._decide(message)
        try:
            reply = await self._forward(message, decision) if isinstance(decision, Forward) else decision
            if reply is not None and not message.reply_to:
                await self._keep_if_failed(message, reply)
            elif reply is not None:
                await self._reply(message, reply)
        except ConnectorError as exc:
            # The broker failed us mid-settlement: hand the request back at once (never hold it unacked;
            # the queue's delivery limit bounds the repeats, then the dead letters have it).
            log.warning("settle_failed", type=message.type, code=exc.code, detail=exc.detail)
            await give_back(message)
            return
        except Exception as exc:
            log.warning("settle_failed", type=message.type, error=repr(exc))
            await give_back(message)
            return
        if not self.settings.scf_unsafe_early_ack:
            await message.ack()
        if message.type not in AUDIT_QUIET:
            audit(message, started, outcome=_outcome_of(decision), service_name=_service_name_of(message))

    async def _decide(self, message: AbstractIncomingMessage) -> Forward | bytes:
        """Decide the settlement without side effects on the broker: a forward or a reply body."""
        operation_id: str | None = None
        try:
            decoded = decode(message.type, message.content_type, message.body, MAX_REQUEST_BYTES)
            if decoded.message_type is MessageType.OPERATION_EXECUTE:
                parsed = parse(OperationRequest, decoded.body)  # the one validation of this hop
                request = parsed.with_defaults()
                operation_id = request.operation_id
                chosen = parsed.operation_id is not None
                forward = await self._route_operation(request, message if chosen else None)
            elif decoded.message_type is MessageType.CONNECTOR_TEST:
                forward = await self._route_test(decoded)
            else:
                reply = await self.control.handlers[decoded.message_type](decoded.body)
                REQUESTS_TOTAL.labels(decoded.message_type.value, "answered").inc()
                return amqp.encode(reply)
        except ConnectorError as exc:
            REJECTED_TOTAL.labels(exc.code).inc()
            REQUESTS_TOTAL.labels(message.type or "none", "failed").inc()
            log.info(
                "request_refused", type=message.type, code=exc.code, message=exc.message, detail=exc.detail
            )
            if message.type == MessageType.OPERATION_EXECUTE:
                return amqp.encode(OperationResult.failed(operation_id or _fallback_id(message), exc))
            return amqp.encode(FailedReply.of(exc))
        except Exception:
            log.exception("dispatcher_internal_error", type=message.type)
            internal = PermanentError("internal dispatcher error", code=ErrorCode.INTERNAL)
            if message.type == MessageType.OPERATION_EXECUTE:
                return amqp.encode(OperationResult.failed(operation_id or _fallback_id(message), internal))
            return amqp.encode(FailedReply.of(internal))
        REQUESTS_TOTAL.labels(decoded.message_type.value, "forwarded").inc()
        return forward

    async def _route_operation(
        self, request: OperationRequest, claim_for: AbstractIncomingMessage | None
    ) -> Forward:
        """`claim_for`: the message whose caller chose the operation id; the id is claimed for it, at the
        same time as the route is looked up (a fresh id of our own needs no claim here)."""
        if request.service_name is None:
            raise PermanentError(
                "service_name (or connection_id) is required", code=ErrorCode.INVALID_REQUEST
            )
        claim: Claim | None = None
        cached = self._routes.get(request.service_name, time.time())
        if claim_for is None:
            entry = await self._routable_entry(request.service_name)
        elif cached is not None:
            # A cached route is routable (only those are cached) and costs no round trip: no need to
            # run the claim beside the lookup (two tasks per request), and nothing to release after.
            entry = await self._routable_entry(request.service_name)
            claim = await self._claim(request, claim_for)
        else:
            both: tuple[Any, Any] = await asyncio.gather(
                self._routable_entry(request.service_name),
                self._claim(request, claim_for),
                return_exceptions=True,
            )
            routed, claimed = both
            claim = claimed if isinstance(claimed, Claim) else None
            if isinstance(routed, BaseException):
                await self._release(claim)  # refused before it existed: the caller may use the id again
                raise routed
            if isinstance(claimed, BaseException):
                raise claimed
            entry = routed
        now = time.time()
        # Not `model_construct`: pydantic's constructor validates in Rust and is faster than it (3.6 against
        # 6.1 us); the validated request inside is kept as it is, not validated again.
        envelope = OperationEnvelope(
            request=request,
            service_type=entry.service_type,
            connector_version=entry.version,
            deadline=deadline_for(request.timeout, self.settings.scf_default_timeout, now),
            accepted_at=now,
        )
        return Forward(
            entry.service_type,
            amqp.encode(envelope),
            request.operation_id,
            expires_in=envelope.deadline - now,
            claim=claim,
        )

    async def _claim(self, request: OperationRequest, message: AbstractIncomingMessage) -> Claim | None:
        """Claim a caller-chosen operation id, so the operation exists (can be cancelled) while queued
        and a second request with the same id is refused before it is forwarded. None: Redis is away
        (the worker claims it again anyway)."""
        assert request.operation_id is not None
        identity = delivery_identity(message.reply_to, message.correlation_id, request)
        try:
            ours = await self.state.claim_operation(
                request.operation_id, identity, self.settings.scf_result_ttl
            )
        except ConnectorError as exc:
            log.info("operation_claim_skipped", code=exc.code)
            return None
        if not ours:
            raise operation_id_in_use(request.operation_id)
        return Claim(request.operation_id, identity)

    async def _release(self, claim: Claim | None) -> None:
        if claim is None:
            return
        try:
            await self.state.release_operation(claim.operation_id, claim.identity)
        except ConnectorError as exc:
            log.info("operation_release_failed", code=exc.code)

    async def _route_test(self, decoded: Decoded) -> Forward:
        name = parse(ConnectorRef, decoded.body).service_name
        entry = await self._routable_entry(name, allow_paused=True)
        envelope = CheckEnvelope(
            service_name=name,
            service_type=entry.service_type,
            connector_version=entry.version,
            deadline=time.time() + self.settings.connection_timeout,
        )
        return Forward(entry.service_type, amqp.encode(envelope), None)

    async def _routable_entry(self, name: str, *, allow_paused: bool = False) -> Any:
        now = time.time()
        cached = self._routes.get(name, now)
        if cached is not None:
            entry, live = cached.entry, cached.live_workers
        else:
            try:
                entry, live = await self.state.routing_entry(name, self._type_hints.get(name))
            except ConnectorError as exc:
                stale = self._routes.stale(name, now)
                if exc.code != ErrorCode.STATE_UNAVAILABLE or stale is None:
                    raise
                log.info("routing_from_stale_cache", service_name=name)  # Redis is away: route as last seen
                return stale.entry
            self._type_hints[name] = entry.service_type
            self._routes.put(entry, live, now)
        if entry.paused and not allow_paused:
            raise ConfigurationError(f"connector {name!r} is paused", code=ErrorCode.CONNECTOR_PAUSED)
        if live == 0:
            raise ResourceError(
                f"no live worker serves service type {entry.service_type!r}",
                code=ErrorCode.NO_WORKER,
                retry_after=self.settings.scf_heartbeat_interval,
            )
        return entry

    # --- settlement ----------------------------------------------------------------------------------

    async def _forward(self, message: AbstractIncomingMessage, forward: Forward) -> bytes | None:
        """Republish to `scf.ops` (confirmed). Returns a reply body when the broker refused it."""
        assert self._ops is not None
        outgoing = amqp.build_message(
            forward.body,
            message_type=message.type or "",
            correlation_id=message.correlation_id,
            reply_to=message.reply_to,
            message_id=forward.message_id or message.message_id,
            headers={amqp.FORWARDED_AT_HEADER: amqp.forwarded_at_value(time.time())},
            expiration=forward.expires_in,
        )
        try:
            await amqp.publish(self._ops, outgoing, forward.service_type)
        except (amqp.UnroutableError, amqp.BrokerRefusedError) as exc:
            log.warning("forward_refused", service_type=forward.service_type, code=exc.code)
            await self._release(forward.claim)
            if message.type == MessageType.OPERATION_EXECUTE:
                return amqp.encode(OperationResult.failed(forward.message_id or _fallback_id(message), exc))
            return amqp.encode(FailedReply.of(exc))
        return None

    async def _keep_if_failed(self, message: AbstractIncomingMessage, reply: bytes) -> None:
        """A refused request nobody waits for (no reply_to) is kept as a dead letter, not dropped."""
        answer = amqp.decode(reply)
        if answer.get("status") != "failed" or not isinstance(answer.get("error"), dict):
            return
        error = ErrorInfo.model_validate(answer["error"])
        if error.code == ErrorCode.OPERATION_ID_IN_USE:
            # A dead letter would record its failure under the id's owner: a counted drop instead.
            DROPPED_TOTAL.labels(ErrorCode.OPERATION_ID_IN_USE.value).inc()
            return
        await Settler(self._channel_or_fail()).dead_letter(
            message, DeadReason.FAILED_WITHOUT_REPLY, error, origin=topology.REQUEST_EXCHANGE
        )

    async def _reply(self, message: AbstractIncomingMessage, body: bytes) -> None:
        try:
            await amqp.reply(self._channel_or_fail(), message, body)
        except amqp.UnroutableError:
            ORPHAN_REPLIES.inc()
            log.info("reply_orphaned", type=message.type, correlation_id=message.correlation_id)

    def _channel_or_fail(self) -> AbstractChannel:
        assert self._channel is not None
        return self._channel


#: Reads that would drown the audit trail; operations are audited by the worker that runs them.
AUDIT_QUIET = frozenset(
    {
        MessageType.OPERATION_EXECUTE,
        MessageType.CONNECTOR_LIST,
        MessageType.CONNECTOR_METRICS,
        MessageType.FLEET_METRICS,
        MessageType.OPERATION_RESULT,
        MessageType.CONNECTOR_STATUS,
    }
)


def _outcome_of(decision: Forward | bytes) -> str:
    if isinstance(decision, Forward):
        return "forwarded"
    return "failed" if b'"status":"failed"' in decision[:64] else "ok"


def _service_name_of(message: AbstractIncomingMessage) -> str | None:
    try:
        body = amqp.decode(message.body)
    except (ValueError, RecursionError):
        return None
    name = body.get("service_name") if isinstance(body, dict) else None
    return name if isinstance(name, str) else None


def _fallback_id(message: AbstractIncomingMessage) -> str:
    return message.message_id or message.correlation_id or "op_unknown"


__all__ = ["Dispatcher", "ValidationError"]
